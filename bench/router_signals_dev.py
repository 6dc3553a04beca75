"""More router signals for issue 22's in-distribution goals, measured on the development split only.

The reported folds of ``hybridgate bench router`` never see these numbers; a signal is carried
into the bench only if it helps here. Each variant: 5-fold CV grouped by normalised prompt hash
inside the development split (3,490 MMLU rows, 339 GSM8K rows), repeated over fold shuffles,
strong share at 95% of the strong model's quality (lower is better); the learned router uses the
regularisation ``bench router`` chose on the same split.

Signals:
- ``knn``: the mean gain (strong - weak outcome) of the k most similar training prompts (cosine
  over the WordLlama prompt embedding), alone, as an extra column of the learned router
  (training rows get leave-one-out values), and rank-averaged with the learned score;
- ``tfidf_blend``: the learned router's and the word TF-IDF router's scores, rank-averaged;
- ``word_problem_stats`` (GSM8K): counts of operation words, distinct numbers, question sentences
  and numbers per sentence, as extra statistics columns.
- ``all_outcomes`` (MMLU): the learned router trained on every other in-distribution row (the
  reported rows included, the test fold never): how far more labelled rows of the same data go.

Run from the repo root (prints JSON)::

    python -m bench.router_signals_dev --data ../shared/data/routellm --workers 2
"""

from __future__ import annotations

import argparse
import json
import re
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.router.features import Features
from hybridgate.router.model import Regularization, RouterModel
from hybridgate.training.quality import curve
from hybridgate.training.train import n_stats, take
from hybridgate_bench.router import Bench, Task, parallel
from hybridgate_bench.router_data import load_routellm
from hybridgate_bench.router_split import group_fold_ids
from hybridgate_bench.router_tfidf import TfidfRouter

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
K = (10, 30, 100)
OPERATION = re.compile(
    r"\b(?:each|per|every|times|twice|half|double|triple|percent|total|altogether|remain\w*|left|"
    r"more|less|fewer|than|share|split|average|rate|discount|profit|cost\w*|spend\w*|"
    r"minutes?|hours?|days?|weeks?)\b",
    re.IGNORECASE,
)
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def word_problem_stats(prompt: str) -> list[float]:
    numbers = NUMBER.findall(prompt)
    sentences = max(1, len(re.findall(r"[.!?](?:\s|$)", prompt)))
    return [
        float(np.log1p(len(OPERATION.findall(prompt)))),
        float(np.log1p(len(set(numbers)))),
        float(np.log1p(prompt.count("?"))),
        len(numbers) / sentences,
    ]


def unit(x: Floats) -> Floats:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))


def knn_gain(emb_test: Floats, emb_train: Floats, gain_train: Floats, k: int, leave_one_out: bool) -> Floats:
    sims = emb_test @ emb_train.T
    if leave_one_out:
        np.fill_diagonal(sims, -np.inf)
    top = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
    return np.asarray(gain_train[top].mean(axis=1))


def ranks(x: Floats) -> Floats:
    return np.asarray(np.argsort(np.argsort(x, kind="stable"), kind="stable") / max(1, len(x) - 1))


def fold_scores(
    task: Task, rows: Ints, folds: Ints, k_fold: int, reg: Regularization, c: float, extra: Floats | None
) -> dict[str, Floats]:
    """Every variant's scores on one fold's test rows."""
    out = task.outcomes
    test, train = rows[folds == k_fold], rows[folds != k_fold]
    weak, strong = out.weak, out.strong
    stats = n_stats(task.spec)

    def fit(features: Features, extra_cols: int) -> RouterModel:
        return RouterModel.fit(take(features, train), weak[train], strong[train], stats + extra_cols, reg)

    base = fit(task.features, 0).predict(take(task.features, test)).gain
    result = {"learned": base}
    tfidf = TfidfRouter.fit(task.counts.take(train), weak[train], strong[train], c).gain(
        task.counts.take(test)
    )
    result["tfidf"] = tfidf
    result["tfidf_blend"] = ranks(base) + ranks(tfidf)
    emb = unit(task.features.dense[:, :256])
    gain = strong - weak
    for k in K:
        result[f"knn{k}"] = knn_gain(emb[test], emb[train], gain[train], k, False)
    k = 30
    col_train = knn_gain(emb[train], emb[train], gain[train], k, True)[:, None]
    col_test = result["knn30"][:, None]
    dense = np.zeros((len(out), task.features.dense.shape[1] + 1))
    dense[:, :-1] = task.features.dense
    dense[train, -1:] = col_train
    dense[test, -1:] = col_test
    with_knn = Features(dense, task.features.tokens)
    result["learned+knn30_column"] = fit(with_knn, 1).predict(take(with_knn, test)).gain
    result["learned_knn30_blend"] = ranks(base) + ranks(result["knn30"])
    result["learned_knn30_tfidf_blend"] = ranks(base) + ranks(result["knn30"]) + ranks(tfidf)
    if extra is not None:
        more = Features(np.hstack([task.features.dense, extra]), task.features.tokens)
        result["learned+word_problem_stats"] = fit(more, extra.shape[1]).predict(take(more, test)).gain
    return result


def all_outcomes_fold(task: Task, folds: Ints, k_fold: int, reg: Regularization) -> Floats:
    """Test fold = a fold of the development rows; training = every other clean row (reported too)."""
    out = task.outcomes
    dev = task.dev
    test = dev[folds == k_fold]
    train = np.concatenate([dev[folds != k_fold], task.rows])
    model = RouterModel.fit(
        take(task.features, train), out.weak[train], out.strong[train], n_stats(task.spec), reg
    )
    return model.predict(take(task.features, test)).gain


def run(bench: Bench, key: str, shuffles: int, workers: int) -> dict[str, Any]:
    started = time.perf_counter()
    task = bench.task(key)
    choice = bench.choose(key)
    reg, c = Regularization(**choice["regularization"]), choice["tfidf_c"]
    dev = task.dev
    extra = None
    if key.startswith("gsm8k"):
        extra = np.asarray([word_problem_stats(p) for p in task.outcomes.prompts])
    jobs: list[Any] = []
    fold_sets = [group_fold_ids(task.groups[dev], 5, seed) for seed in range(shuffles)]
    for folds in fold_sets:
        jobs += [partial(fold_scores, task, dev, folds, k, reg, c, extra) for k in range(5)]
    if key == "mmlu":
        jobs += [partial(all_outcomes_fold, task, fold_sets[0], k, reg) for k in range(5)]
    results = parallel(jobs, workers)
    weak, strong = task.outcomes.weak[dev], task.outcomes.strong[dev]
    variants = list(results[0])
    at95: dict[str, list[float]] = {v: [] for v in variants}
    for j, folds in enumerate(fold_sets):
        for v in variants:
            scores = np.zeros(len(dev))
            for k in range(5):
                scores[folds == k] = results[j * 5 + k][v]
            at95[v].append(curve(scores, weak, strong).share_for_quality(0.95))
    report: dict[str, Any] = {
        "development_rows": len(dev),
        "shuffles": shuffles,
        "regularization": reg.to_json(),
        "tfidf_c": c,
        "strong_share_at_95": {v: round(float(np.mean(s)), 4) for v, s in at95.items()},
        "per_shuffle": {v: [round(x, 4) for x in s] for v, s in at95.items()},
    }
    if key == "mmlu":
        scores = np.zeros(len(dev))
        for k in range(5):
            scores[fold_sets[0] == k] = results[len(fold_sets) * 5 + k]
        report["all_outcomes_first_shuffle"] = round(curve(scores, weak, strong).share_for_quality(0.95), 4)
        report["learned_first_shuffle"] = round(at95["learned"][0], 4)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--tasks", default="gsm8k,gsm8k_cascade,mmlu")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    bench = Bench(load_routellm(args.data), latency_rows=1, workers=args.workers)
    shuffles = {"gsm8k": 5, "gsm8k_cascade": 5, "mmlu": 2}
    report = {key: run(bench, key, shuffles[key], args.workers) for key in args.tasks.split(",")}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
