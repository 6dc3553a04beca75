"""RouteLLM's outcome files, read for the router benchmark (``hybridgate bench router``).

Layout (see ../shared/README.md): ``mmlu/mmlu_<subject>.csv`` (57 subjects, 14,042 prompts) and
``gsm8k/gsm8k_responses.csv`` (1,319 problems, with each model's full answer), each folder with a
``contaminated_prompts.jsonl`` whose ``eval_prompt`` rows RouteLLM leaves out of evaluation, and
so do we. The data is read in place and never copied. Offline only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hybridgate.errors import DataFileError
from hybridgate.training.dataset import Outcomes, outcome_column, read_rows

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


@dataclass(frozen=True)
class BenchData:
    mmlu: Outcomes
    mmlu_subjects: np.ndarray  # subject number of every MMLU row
    mmlu_eval: np.ndarray  # False for contaminated rows
    gsm8k: Outcomes  # answers = the weak model's responses
    gsm8k_eval: np.ndarray


def load_routellm(root: Path) -> BenchData:
    mmlu_dir, gsm_dir = root / "mmlu", root / "gsm8k"
    files = sorted(mmlu_dir.glob("mmlu_*.csv"))
    if not files:
        raise DataFileError(f"{mmlu_dir}: no mmlu_*.csv files; --data names the folder with mmlu/ and gsm8k/")
    prompts: list[str] = []
    weak, strong, subjects = [], [], []
    for number, file in enumerate(files):
        rows = read_rows(file)
        prompts += [str(r["prompt"]) for r in rows]
        weak.append(outcome_column(file, rows, WEAK))
        strong.append(outcome_column(file, rows, STRONG))
        subjects += [number] * len(rows)
    mmlu = Outcomes(str(mmlu_dir), prompts, WEAK, STRONG, np.concatenate(weak), np.concatenate(strong))
    gsm_file = gsm_dir / "gsm8k_responses.csv"
    rows = read_rows(gsm_file)
    gsm8k = Outcomes(
        str(gsm_file),
        [str(r["prompt"]) for r in rows],
        WEAK,
        STRONG,
        outcome_column(gsm_file, rows, WEAK),
        outcome_column(gsm_file, rows, STRONG),
        answers=[str(r.get(f"{WEAK}_response") or "") for r in rows],
    )
    return BenchData(
        mmlu=mmlu,
        mmlu_subjects=np.asarray(subjects, dtype=np.int64),
        mmlu_eval=_clean(mmlu.prompts, mmlu_dir / "contaminated_prompts.jsonl"),
        gsm8k=gsm8k,
        gsm8k_eval=_clean(gsm8k.prompts, gsm_dir / "contaminated_prompts.jsonl"),
    )


def _clean(prompts: list[str], contaminated: Path) -> np.ndarray:
    """True for rows that may be evaluated (not listed as contaminated)."""
    if not contaminated.exists():
        raise DataFileError(f"{contaminated}: missing; the benchmark must leave contaminated prompts out")
    bad = set()
    for line in contaminated.read_text(encoding="utf-8").splitlines():
        if line.strip():
            bad.add(json.loads(line)["eval_prompt"])
    return np.array([p not in bad for p in prompts])
