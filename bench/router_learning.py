"""Does the router get better as the deployment's own outcomes accumulate? A replay on RouteLLM's data.

A stream of requests arrives one at a time: the clean MMLU and GSM8K prompts (shared data, read in
place), shuffled into one mixed stream. A fixed test set (a fifth of the prompt groups, grouped by
normalised prompt hash, so no copy of a test question is ever in the stream) is held out. Each
streamed request's outcome (both tiers' correctness) becomes known with probability ``--sample``
(5%: outcome sampling), and every ``--every`` requests the router is retrained on the outcomes known
so far with the training API as it is (``hybridgate.training.train.fit``, default
regularisation). After each retraining the strong-call share needed for 95% of the strong tier's
quality is measured on the test set (full resolution), overall and per task; before the first
outcome the router knows nothing (the random line). Several stream orders, averaged.

Offline; run from the repo root::

    .venv/bin/python -m bench.router_learning --data ../shared/data/routellm --svg docs/router_learning.svg

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.features import Features, FeatureSpec, Featurizer
from hybridgate.router.model import Regularization
from hybridgate.router.sparse import SparseRows
from hybridgate.training.quality import curve, random_share_for_quality
from hybridgate.training.train import fit, take
from hybridgate_bench.router_data import load_routellm
from hybridgate_bench.router_split import group_fold_ids, prompt_groups


def stack(a: Features, b: Features) -> Features:
    tokens = SparseRows(
        np.concatenate([a.tokens.indptr, b.tokens.indptr[1:] + a.tokens.indptr[-1]]),
        np.concatenate([a.tokens.indices, b.tokens.indices]),
        np.concatenate([a.tokens.data, b.tokens.data]),
        a.tokens.n_cols,
    )
    return Features(np.vstack([a.dense, b.dense]), tokens)


def at95(scores: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> float:
    return round(curve(scores, weak, strong).share_for_quality(0.95), 4)


def simulate(data_dir: Path, sample: float, every: int, seeds: int) -> dict[str, Any]:
    started = time.perf_counter()
    data = load_routellm(data_dir)
    featurizer = Featurizer(FeatureSpec(), WordLlamaEmbedder())
    mmlu_rows = np.nonzero(data.mmlu_eval)[0]
    gsm_rows = np.nonzero(data.gsm8k_eval)[0]
    prompts = [data.mmlu.prompts[i] for i in mmlu_rows] + [data.gsm8k.prompts[i] for i in gsm_rows]
    task = np.array(["mmlu"] * len(mmlu_rows) + ["gsm8k"] * len(gsm_rows))
    outcomes = replace(
        data.mmlu,
        source="routellm mmlu + gsm8k",
        prompts=prompts,
        weak=np.concatenate([data.mmlu.weak[mmlu_rows], data.gsm8k.weak[gsm_rows]]),
        strong=np.concatenate([data.mmlu.strong[mmlu_rows], data.gsm8k.strong[gsm_rows]]),
        answers=None,
    )
    features = stack(
        featurizer.many([data.mmlu.prompts[i] for i in mmlu_rows]),
        featurizer.many([data.gsm8k.prompts[i] for i in gsm_rows]),
    )
    featurised = time.perf_counter() - started
    test = np.nonzero(group_fold_ids(prompt_groups(prompts), 5, 12345) == 0)[0]
    stream_rows = np.setdiff1d(np.arange(len(prompts)), test)
    weak, strong = outcomes.weak[test], outcomes.strong[test]
    parts = {
        "all": np.arange(len(test)),
        "mmlu": np.nonzero(task[test] == "mmlu")[0],
        "gsm8k": np.nonzero(task[test] == "gsm8k")[0],
    }
    reg, spec = Regularization(), featurizer.spec

    def measure(scores: np.ndarray) -> dict[str, float]:
        return {name: at95(scores[i], weak[i], strong[i]) for name, i in parts.items()}

    runs: list[list[dict[str, Any]]] = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(stream_rows)
        graded = rng.random(len(order)) < sample
        points: list[dict[str, Any]] = [
            {"requests": 0, "outcomes": 0, "strong_share_at_95": measure(np.zeros(len(test)))}
        ]
        for end in range(every, len(order) + 1, every):
            known = order[:end][graded[:end]]
            if len(known) < 10:
                continue
            model = fit(features, outcomes, known, spec, reg)
            scores = model.predict(take(features, test)).gain
            points.append({"requests": end, "outcomes": len(known), "strong_share_at_95": measure(scores)})
        runs.append(points)
    # Ceiling: every streamed request's outcome known (a 100% sample).
    full = fit(features, outcomes, stream_rows, spec, reg)
    ceiling = measure(full.predict(take(features, test)).gain)
    steps = [
        {
            "requests": runs[0][i]["requests"],
            "outcomes_mean": round(float(np.mean([r[i]["outcomes"] for r in runs])), 1),
            "strong_share_at_95": {
                name: round(float(np.mean([r[i]["strong_share_at_95"][name] for r in runs])), 4)
                for name in parts
            },
            "strong_share_at_95_per_seed": [r[i]["strong_share_at_95"]["all"] for r in runs],
        }
        for i in range(min(len(r) for r in runs))
    ]
    oracle = measure(strong - weak)
    random_line = {
        name: round(random_share_for_quality(float(weak[i].mean()), float(strong[i].mean())), 4)
        for name, i in parts.items()
    }
    return {
        "stream_requests": len(stream_rows),
        "test_rows": len(test),
        "test_rows_per_task": {name: len(i) for name, i in parts.items() if name != "all"},
        "sample": sample,
        "retrain_every": every,
        "seeds": seeds,
        "steps": steps,
        "all_outcomes_known": ceiling,
        "random": random_line,
        "oracle": oracle,
        "featurise_seconds": round(featurised, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
    }


def svg(report: dict[str, Any], width: int = 640, height: int = 360, margin: int = 56) -> str:
    """Strong share at 95% (test set) against requests seen: one line per task, references dashed."""
    steps = report["steps"]
    x_max = max(s["requests"] for s in steps) or 1
    colors = {"all": "#1f77b4", "mmlu": "#2ca02c", "gsm8k": "#ff7f0e"}
    w, h = width - 2 * margin, height - 2 * margin

    def xy(requests: float, share: float) -> str:
        return f"{margin + requests / x_max * w:.1f},{margin + (1 - share) * h:.1f}"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<rect x="{margin}" y="{margin}" width="{w}" height="{h}" fill="none" stroke="#999"/>',
        f'<text x="{margin}" y="{margin - 24}" font-size="13" font-weight="bold">'
        f"Strong-call share at 95% quality as outcomes accumulate ({report['sample']:.0%} sampled, "
        f"retrain every {report['retrain_every']})</text>",
    ]
    for i, name in enumerate(colors):
        pts = " ".join(xy(s["requests"], s["strong_share_at_95"][name]) for s in steps)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colors[name]}" stroke-width="2"/>')
        for ref, dash in (("random", "6 3"), ("all_outcomes_known", "2 2")):
            y = report[ref][name]
            out.append(
                f'<polyline points="{xy(0, y)} {xy(x_max, y)}" fill="none" stroke="{colors[name]}" '
                f'stroke-dasharray="{dash}" stroke-opacity="0.6"/>'
            )
        out.append(
            f'<text x="{width - margin + 4}" y="{margin + 14 * i + 10}" fill="{colors[name]}">'
            f"{escape(name)}</text>"
        )
    out += [
        f'<text x="{margin}" y="{height - 14}">0</text>',
        f'<text x="{margin + w}" y="{height - 14}" text-anchor="end">{x_max} requests '
        f"(~{steps[-1]['outcomes_mean']:.0f} outcomes)</text>",
        f'<text x="{margin - 4}" y="{margin + 4}" text-anchor="end">1.0</text>',
        f'<text x="{margin - 4}" y="{margin + h}" text-anchor="end">0</text>',
        f'<text x="{margin + w / 2}" y="{height - 14}" text-anchor="middle">requests seen; dashed: random, '
        "dotted: every outcome known</text>",
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/routellm"))
    parser.add_argument(
        "--sample", type=float, default=0.05, help="share of requests whose outcome is graded"
    )
    parser.add_argument("--every", type=int, default=1000, help="retrain after this many requests")
    parser.add_argument("--seeds", type=int, default=3, help="stream orders, averaged")
    parser.add_argument("--svg", type=Path, default=None)
    args = parser.parse_args()
    report = simulate(args.data, args.sample, args.every, args.seeds)
    if args.svg is not None:
        args.svg.write_text(svg(report), encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
