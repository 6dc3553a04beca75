"""``hybridgate bench router``: the learned router on RouteLLM's own MMLU and GSM8K outcome data.

Weak = Mixtral-8x7B-Instruct, strong = GPT-4 (1106). RouteLLM's ``contaminated_prompts.jsonl``
rows are left out of everything. Honest by construction (``bench_split``, ``bench_metrics``):

- a fixed development split (a quarter of the prompt groups, by hash) chooses the learned
  router's regularisation and the TF-IDF baseline's ``C``; the reported folds never see it;
- the reported folds are grouped by normalised prompt hash, so duplicates stay in one fold;
- in every setting the learned router, a word TF-IDF + logistic-regression router, a random
  router and the oracle are measured on the same rows and folds in the same run;
- every router is scored two ways: full resolution (every distinct score a threshold) and as
  RouteLLM computes it (10 score-decile thresholds joined by straight lines);
- GSM8K rows carry $ costs (token counts from the prompt and each model's answer, list prices
  from genai-prices); the cascade pays the cheap call on every request and both on escalated ones,
  and its added latency (the whole cheap call before the strong one starts) is reported.

Settings: ``mmlu`` (grouped 5-fold), ``mmlu_subjects`` (5-fold over subjects), ``gsm8k`` (grouped
5-fold, prompt only, 3 shuffles), ``gsm8k_cascade`` (same folds, the router also reads the weak
model's answer), ``cross`` (trained on MMLU, tested on GSM8K). Offline only.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.features import Features, FeatureSpec, Featurizer
from hybridgate.router.learned import LearnedRouter
from hybridgate.router.model import Regularization, RouterModel
from hybridgate.router.sparse import SparseRows
from hybridgate.training.calibration import Target, achieved, threshold_for
from hybridgate.training.dataset import Outcomes, read_rows
from hybridgate.training.evaluation import decision_latency_ms, load_average
from hybridgate.training.quality import Curve, curve, random_share_for_quality
from hybridgate.training.train import n_stats, take
from hybridgate_bench.router_data import STRONG, WEAK, BenchData, load_routellm
from hybridgate_bench.router_gated import choose_skip_share, gated_at95, gated_bootstrap, gated_curve
from hybridgate_bench.router_metrics import (
    full_summary,
    paired_bootstrap,
    random_scores_summary,
    routellm_summary,
)
from hybridgate_bench.router_split import development_rows, group_fold_ids, prompt_groups
from hybridgate_bench.router_tfidf import TfidfRouter, tf_rows

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
SETTINGS = ("mmlu", "mmlu_subjects", "gsm8k", "gsm8k_cascade", "gsm8k_gated", "cross")
FOLDS = 5
SHUFFLES = {"gsm8k": 3, "gsm8k_cascade": 3, "gsm8k_gated": 3}  # 1.3k rows make one shuffle noisy; MMLU: one
# RouteLLM's best routers at 95% of GPT-4's quality, as published (arXiv 2406.18665, LMSYS blog
# 2024-07-01): trained on Chatbot Arena preferences, not on these rows or folds.
PUBLISHED = {
    "mmlu": 0.55,
    "mmlu_subjects": 0.55,
    "gsm8k": 0.65,
    "gsm8k_cascade": 0.65,
    "gsm8k_gated": 0.65,
    "cross": 0.65,
}
GOALS = {"mmlu": 0.35, "gsm8k": 0.55, "gsm8k_cascade": 0.45}
DECISION_P99_GOAL_MS = 2.0
# Chosen among on the development split (5-fold CV there, by strong share at 95%).
REGULARISATIONS = (
    Regularization(),  # embedding 3000, stats 10, tokens 3: the shipped default
    Regularization(embedding=1000.0),
    Regularization(tokens=10.0),
    Regularization(embedding=1e9),  # in effect no embedding block
)
TFIDF_C = (1.0, 3.0, 10.0)
PRICED = {
    WEAK: ("mistralai/Mixtral-8x7B-Instruct-v0.1", "together"),
    STRONG: ("gpt-4-1106-preview", "openai"),
}


@dataclass(frozen=True)
class Task:
    """One data set's rows, split: ``dev`` for choices, ``rows`` for the reported folds."""

    outcomes: Outcomes
    groups: Ints
    dev: Ints
    rows: Ints
    features: Features
    counts: SparseRows  # raw word n-gram counts for the TF-IDF baseline
    spec: FeatureSpec
    extra_stats: int = 0  # columns appended after the statistics (the per-task intercepts)


def subset(outcomes: Outcomes, rows: Ints) -> Outcomes:
    answers = [outcomes.answers[i] for i in rows] if outcomes.answers is not None else None
    return replace(
        outcomes,
        prompts=[outcomes.prompts[i] for i in rows],
        weak=outcomes.weak[rows],
        strong=outcomes.strong[rows],
        weak_cost=None if outcomes.weak_cost is None else outcomes.weak_cost[rows],
        strong_cost=None if outcomes.strong_cost is None else outcomes.strong_cost[rows],
        answers=answers,
    )


@dataclass(frozen=True)
class CrossValidation:
    """One cross-validation to run: a job per fold, each returning its test rows' scores."""

    folds: Ints  # per row of the evaluated rows
    jobs: list[Callable[[], Floats]]  # in the order of np.unique(folds)


def learned_cv(task: Task, rows: Ints, folds: Ints, reg: Regularization) -> CrossValidation:
    """Held-out gain of every row in ``rows`` (folds numbered per row of ``rows``)."""
    return CrossValidation(
        folds, [partial(_learned_fold, task, rows, folds, k, reg) for k in np.unique(folds)]
    )


def _learned_fold(task: Task, rows: Ints, folds: Ints, k: int, reg: Regularization) -> Floats:
    test, train = rows[folds == k], rows[folds != k]
    out = task.outcomes
    model = RouterModel.fit(
        take(task.features, train),
        out.weak[train],
        out.strong[train],
        n_stats(task.spec) + task.extra_stats,
        reg,
    )
    return model.predict(take(task.features, test)).gain


def tfidf_cv(task: Task, rows: Ints, folds: Ints, c: float) -> CrossValidation:
    return CrossValidation(folds, [partial(_tfidf_fold, task, rows, folds, k, c) for k in np.unique(folds)])


def _tfidf_fold(task: Task, rows: Ints, folds: Ints, k: int, c: float) -> Floats:
    test, train = rows[folds == k], rows[folds != k]
    model = TfidfRouter.fit(
        task.counts.take(train), task.outcomes.weak[train], task.outcomes.strong[train], c
    )
    return model.gain(task.counts.take(test))


def run_all(
    cvs: list[CrossValidation], workers: int, extra: list[Callable[[], Any]] | None = None
) -> tuple[list[Floats], list[Any]]:
    """Every fold of every cross-validation (and ``extra`` jobs), on ``workers`` processes."""
    jobs: list[Callable[[], Any]] = [job for cv in cvs for job in cv.jobs] + list(extra or [])
    results = parallel(jobs, workers)
    scores, i = [], 0
    for cv in cvs:
        out = np.zeros(len(cv.folds))
        for k in np.unique(cv.folds):
            out[cv.folds == k] = results[i]
            i += 1
        scores.append(out)
    return scores, results[i:]


# The jobs of the pool running now. Workers are forked, so they inherit the jobs (and the
# features they close over) instead of receiving pickles; only results travel back.
_FORKED_JOBS: list[Callable[[], Any]] = []


def _run_forked(i: int) -> Any:
    return _FORKED_JOBS[i]()


def parallel(jobs: list[Callable[[], Any]], workers: int) -> list[Any]:
    if workers <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    _FORKED_JOBS[:] = jobs
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            return list(pool.map(_run_forked, range(len(jobs))))
    finally:
        _FORKED_JOBS.clear()


def at95(scores: Floats, weak: Floats, strong: Floats) -> float:
    return curve(scores, weak, strong).share_for_quality(0.95)


class Bench:
    """Features are computed once per data set and shared by the settings that use them."""

    def __init__(self, data: BenchData, latency_rows: int, workers: int = 1) -> None:
        self.data = data
        self.workers = workers
        self.latency_rows = latency_rows
        self.embedder = WordLlamaEmbedder()
        self.prices = prices()
        self._tasks: dict[str, Task] = {}
        self._choices: dict[str, dict[str, Any]] = {}

    def task(self, key: str) -> Task:
        if key not in self._tasks:
            cascade = key == "gsm8k_cascade"
            outcomes, clean = (
                (self.data.mmlu, self.data.mmlu_eval)
                if key == "mmlu"
                else (self.data.gsm8k, self.data.gsm8k_eval)
            )
            if key != "mmlu":
                outcomes = with_costs(outcomes, self.prices, cascade)
            spec = FeatureSpec(answer=cascade)
            answers = outcomes.answers if cascade else None
            dev = development_rows(outcomes.prompts)
            self._tasks[key] = Task(
                outcomes=outcomes,
                groups=prompt_groups(outcomes.prompts),
                dev=np.nonzero(dev & clean)[0],
                rows=np.nonzero(~dev & clean)[0],
                features=Featurizer(spec, self.embedder).many(outcomes.prompts, answers),
                counts=tf_rows(outcomes.prompts, answers),
                spec=spec,
            )
        return self._tasks[key]

    def choose(self, key: str) -> dict[str, Any]:
        """Regularisation and TF-IDF ``C`` chosen by 5-fold CV on the development split only."""
        if key not in self._choices:
            task = self.task(key)
            dev, weak, strong = task.dev, task.outcomes.weak[task.dev], task.outcomes.strong[task.dev]
            folds = group_fold_ids(task.groups[dev], FOLDS, 0)
            cvs = [learned_cv(task, dev, folds, reg) for reg in REGULARISATIONS]
            cvs += [tfidf_cv(task, dev, folds, c) for c in TFIDF_C]
            scores, _ = run_all(cvs, self.workers)
            learned = [at95(s, weak, strong) for s in scores[: len(REGULARISATIONS)]]
            tfidf = [at95(s, weak, strong) for s in scores[len(REGULARISATIONS) :]]
            best_reg, best_c = int(np.argmin(learned)), int(np.argmin(tfidf))
            self._choices[key] = {
                "development_rows": len(dev),
                "regularization": REGULARISATIONS[best_reg].to_json(),
                "tfidf_c": TFIDF_C[best_c],
                "tried_at_95": {
                    "learned": [
                        {"regularization": r.to_json(), "strong_share_at_95": round(s, 4)}
                        for r, s in zip(REGULARISATIONS, learned, strict=True)
                    ],
                    "tfidf_lr": [
                        {"c": c, "strong_share_at_95": round(s, 4)}
                        for c, s in zip(TFIDF_C, tfidf, strict=True)
                    ],
                },
            }
        return self._choices[key]

    def run(self, setting: str) -> tuple[dict[str, Any], Curve]:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting '{setting}'; settings: {', '.join(SETTINGS)}")
        if setting == "gsm8k_gated":
            return self._gated()
        started = time.perf_counter()
        key = {"mmlu_subjects": "mmlu", "cross": "gsm8k"}.get(setting, setting)
        task = self.task(key)
        choice = self.choose("mmlu" if setting in ("mmlu_subjects", "cross") else key)
        reg = Regularization(**choice["regularization"])
        rows = task.rows
        weak, strong = task.outcomes.weak[rows], task.outcomes.strong[rows]
        if setting == "cross":
            learned, tfidf, router = self._cross(reg, choice["tfidf_c"], rows)
            with_task = []
            folds_note = "trained on every clean MMLU row, tested on GSM8K's reported rows"
        else:
            shuffles = [self._folds(setting, task, seed) for seed in range(SHUFFLES.get(setting, 1))]
            cvs = [learned_cv(task, rows, f, reg) for f in shuffles]
            cvs += [tfidf_cv(task, rows, f, choice["tfidf_c"]) for f in shuffles]
            # Latency is timed on a model of the same shape, trained on the first fold's training rows.
            train = rows[shuffles[0] != 0]
            if setting == "mmlu":
                cvs += [learned_cv(self.with_subjects(task), rows, f, reg) for f in shuffles]
            scores, fitted = run_all(cvs, self.workers, [partial(self._fit, task, train, reg)])
            learned, tfidf = scores[: len(shuffles)], scores[len(shuffles) : 2 * len(shuffles)]
            with_task = scores[2 * len(shuffles) :]
            router = self._router(task.spec, fitted[0])
            folds_note = (
                "5 folds over subjects (no subject in two folds)"
                if setting == "mmlu_subjects"
                else "5 folds grouped by normalised prompt hash (duplicates in one fold)"
            )
        oracle = strong - weak
        report: dict[str, Any] = {
            "rows_evaluated": len(rows),
            "development_rows_excluded": len(task.dev),
            "contaminated_excluded": int(len(task.outcomes) - len(rows) - len(task.dev)),
            "folds": folds_note,
            "shuffles": len(learned),
            "chosen_on_development_split": choice,
            "weak_quality": round(float(weak.mean()), 4),
            "strong_quality": round(float(strong.mean()), 4),
            "routers": {
                "learned": self._router_report(learned, task, rows),
                "tfidf_lr": self._router_report(tfidf, task, rows),
                "random": random_scores_summary(weak, strong),
                "random_line": {
                    "strong_share_at_95": round(random_share_for_quality(weak.mean(), strong.mean()), 4)
                },
                "oracle": self._router_report([oracle], task, rows),
            },
            "learned_minus_tfidf_at_95": paired_bootstrap(learned[0], tfidf[0], weak, strong),
            "calibrated_95": calibration_check(learned[0], weak, strong),
            "published": {
                "routellm_best_at_95": PUBLISHED[setting],
                "note": "as published (arXiv 2406.18665): routers trained on other data, not measured here",
            },
        }
        if with_task:
            # Per-task calibration: one intercept per MMLU subject beside the usual features (a
            # deployment's task is its feature attribution); kept because it helped on the
            # development split (bench/router_signals.py). The gateway's router does not take a
            # task yet, so the goal is judged on "learned", and this row is reported beside it.
            report["routers"]["learned_with_task"] = self._router_report(with_task, task, rows)
            report["learned_with_task_minus_learned_at_95"] = paired_bootstrap(
                with_task[0], learned[0], weak, strong
            )
        if setting in ("mmlu", "gsm8k"):
            # The learned and TF-IDF scores, rank-averaged: the one signal that helped on the
            # development split (bench/router_signals_dev.py); a candidate, reported beside them.
            blend = [rank_blend(a, b) for a, b in zip(learned, tfidf, strict=True)]
            report["routers"]["learned_tfidf_blend"] = self._router_report(blend, task, rows)
            report["blend_minus_learned_at_95"] = paired_bootstrap(blend[0], learned[0], weak, strong)
        if setting in GOALS:
            report["goal"] = goal_report(setting, report["routers"]["learned"])
        latency_rows = rows
        answers = task.outcomes.answers if task.spec.answer else None
        report.update(
            decision_latency_ms(
                router,
                [task.outcomes.prompts[i] for i in latency_rows],
                [answers[i] for i in latency_rows] if answers else None,
                self.latency_rows,
            )
        )
        report["seconds"] = round(time.perf_counter() - started, 1)
        return report, curve(learned[0], weak, strong)

    def _gated(self) -> tuple[dict[str, Any], Curve]:
        """The router-gated cascade (``router_gated``): GSM8K's prompt router picks which requests
        skip the cheap call, the cascade router (reading the cheap answer) escalates the rest.
        Learned and TF-IDF routers each gate and escalate with their own scores; the skip share is
        chosen on the development split; the plain cascade (skip share 0) is in the same run."""
        started = time.perf_counter()
        plain, casc = self.task("gsm8k"), self.task("gsm8k_cascade")
        ch_p, ch_c = self.choose("gsm8k"), self.choose("gsm8k_cascade")
        reg_p, reg_c = Regularization(**ch_p["regularization"]), Regularization(**ch_c["regularization"])
        out = plain.outcomes
        assert out.weak_cost is not None and out.strong_cost is not None
        dev, rows = plain.dev, plain.rows
        dev_folds = group_fold_ids(plain.groups[dev], FOLDS, 0)
        shuffles = [
            group_fold_ids(plain.groups[rows], FOLDS, seed) for seed in range(SHUFFLES["gsm8k_gated"])
        ]

        def four(r: Ints, f: Ints) -> list[CrossValidation]:
            return [
                learned_cv(plain, r, f, reg_p),
                learned_cv(casc, r, f, reg_c),
                tfidf_cv(plain, r, f, ch_p["tfidf_c"]),
                tfidf_cv(casc, r, f, ch_c["tfidf_c"]),
            ]

        cvs = four(dev, dev_folds) + [cv for f in shuffles for cv in four(rows, f)]
        scores, _ = run_all(cvs, self.workers)

        def columns(r: Ints) -> tuple[Floats, Floats, Floats, Floats]:
            assert out.weak_cost is not None and out.strong_cost is not None
            return out.weak[r], out.strong[r], out.weak_cost[r], out.strong_cost[r]

        routers: dict[str, Any] = {}
        chosen: dict[str, Any] = {}
        for offset, name in ((0, "learned"), (2, "tfidf_lr")):
            q, tried = choose_skip_share(scores[offset], scores[offset + 1], *columns(dev))
            chosen[name] = {"skip_share": q, "tried_on_development_split": tried}
            per_shuffle = [scores[4 + 4 * j + offset : 4 + 4 * j + offset + 2] for j in range(len(shuffles))]
            gated = [gated_at95(skip, esc, *columns(rows), q) for skip, esc in per_shuffle]
            cascade = [gated_at95(skip, esc, *columns(rows), 0.0) for skip, esc in per_shuffle]
            routers[name] = {
                "gated": {k: _mean([g[k] for g in gated]) for k in gated[0]},
                "plain_cascade": {k: _mean([c[k] for c in cascade]) for k in cascade[0]},
                "gated_cost_share_per_shuffle": [
                    round(g["cost_share_of_all_strong_at_95"], 4) for g in gated
                ],
                "gated_minus_plain_cost_share": gated_bootstrap(
                    per_shuffle[0][0], per_shuffle[0][1], *columns(rows), q
                ),
                # Information only (the choice is made on the development split above).
                "every_skip_share_on_reported_rows": [
                    {
                        "skip_share": share,
                        "cost_share_of_all_strong_at_95": _mean(
                            [
                                gated_at95(skip, esc, *columns(rows), share)["cost_share_of_all_strong_at_95"]
                                for skip, esc in per_shuffle
                            ]
                        ),
                    }
                    for share in (0.0, 0.1, 0.2, 0.3, 0.4)
                ],
            }
        learned = routers["learned"]["gated"]
        report: dict[str, Any] = {
            "rows_evaluated": len(rows),
            "development_rows_excluded": len(dev),
            "folds": "5 folds grouped by normalised prompt hash, 3 shuffles (the gsm8k folds)",
            "policy": (
                "the top skip_share of requests by the prompt router's score go to the strong tier "
                "alone; the rest get the cheap answer, escalated by the cascade router's score"
            ),
            "chosen_on_development_split": {"gsm8k": ch_p, "gsm8k_cascade": ch_c, **chosen},
            "routers": routers,
            "goal": {
                "cost_share_of_all_strong_at_95": GOALS["gsm8k_cascade"],
                "measured_cost_share": learned["cost_share_of_all_strong_at_95"],
                "met": bool(learned["cost_share_of_all_strong_at_95"] <= GOALS["gsm8k_cascade"]),
                "missed_by": round(
                    max(0.0, learned["cost_share_of_all_strong_at_95"] - GOALS["gsm8k_cascade"]), 4
                ),
            },
        }
        skip, esc = scores[4], scores[5]
        q = chosen["learned"]["skip_share"]
        router = self._router(plain.spec, self._fit(plain, rows[shuffles[0] != 0], reg_p))
        report.update(decision_latency_ms(router, [out.prompts[i] for i in rows], None, self.latency_rows))
        report["decision_note"] = "the skip decision scores the prompt alone, before any call"
        report["seconds"] = round(time.perf_counter() - started, 1)
        return report, gated_curve(skip, esc, *columns(rows), q)

    def with_subjects(self, task: Task) -> Task:
        """The MMLU task with one-hot subject columns after the statistics (L2 like them)."""
        subjects = self.data.mmlu_subjects
        columns = (subjects[:, None] == np.unique(subjects)[None, :]).astype(np.float64)
        features = Features(np.hstack([task.features.dense, columns]), task.features.tokens)
        return replace(task, features=features, extra_stats=columns.shape[1])

    def _folds(self, setting: str, task: Task, seed: int) -> Ints:
        if setting == "mmlu_subjects":
            subjects = self.data.mmlu_subjects[task.rows]
            order = np.random.default_rng(seed).permutation(int(subjects.max()) + 1)
            folds: Ints = (order[subjects] % FOLDS).astype(np.int64)
            return folds
        return group_fold_ids(task.groups[task.rows], FOLDS, seed)

    def _fit(self, task: Task, train: Ints, reg: Regularization) -> RouterModel:
        out = task.outcomes
        return RouterModel.fit(
            take(task.features, train),
            out.weak[train],
            out.strong[train],
            n_stats(task.spec) + task.extra_stats,
            reg,
        )

    def _cross(
        self, reg: Regularization, c: float, rows: Ints
    ) -> tuple[list[Floats], list[Floats], LearnedRouter]:
        mmlu, gsm = self.task("mmlu"), self.task("gsm8k")
        train = np.concatenate([mmlu.dev, mmlu.rows])
        model = self._fit(mmlu, train, reg)
        learned = model.predict(take(gsm.features, rows)).gain
        out = mmlu.outcomes
        tfidf_model = TfidfRouter.fit(mmlu.counts.take(train), out.weak[train], out.strong[train], c)
        tfidf = tfidf_model.gain(gsm.counts.take(rows))
        return [learned], [tfidf], self._router(mmlu.spec, model)

    def _router(self, spec: FeatureSpec, model: RouterModel) -> LearnedRouter:
        return LearnedRouter(RouterArtifact(features=spec, model=model, threshold=0.0), self.embedder)

    def _router_report(self, repeats: list[Floats], task: Task, rows: Ints) -> dict[str, Any]:
        weak, strong = task.outcomes.weak[rows], task.outcomes.strong[rows]
        full = [full_summary(s, weak, strong) for s in repeats]
        report: dict[str, Any] = {key: _mean([f[key] for f in full]) for key in full[0]}
        if len(repeats) > 1:
            report["strong_share_at_95_per_shuffle"] = [f["strong_share_at_95"] for f in full]
        routellm = [routellm_summary(s, weak, strong) for s in repeats]
        report["routellm"] = {key: _mean([r[key] for r in routellm]) for key in routellm[0]}
        if task.outcomes.weak_cost is not None and task.outcomes.strong_cost is not None:
            report["cost"] = cost_report(repeats, task, rows)
        return report


def rank_blend(a: Floats, b: Floats) -> Floats:
    """Two routers' scores as ranks (0..1 over the evaluated rows), summed: equal weights, no fit."""
    n = max(1, len(a) - 1)
    ranks_a = np.argsort(np.argsort(a, kind="stable"), kind="stable") / n
    ranks_b = np.argsort(np.argsort(b, kind="stable"), kind="stable") / n
    return np.asarray(ranks_a + ranks_b, dtype=np.float64)


def cost_report(repeats: list[Floats], task: Task, rows: Ints) -> dict[str, Any]:
    """$ at the 95% point, against sending everything to the strong model (for a cascade the
    strong column already holds cheap + strong: escalated requests pay both)."""
    out = task.outcomes
    assert out.weak_cost is not None and out.strong_cost is not None
    weak, strong, wc, sc = out.weak[rows], out.strong[rows], out.weak_cost[rows], out.strong_cost[rows]
    all_strong = float(sc.sum()) if not task.spec.answer else float((sc - wc).sum())
    costs = []
    for scores in repeats:
        c = curve(scores, weak, strong, wc, sc)
        costs.append(float(c.cost_at(c.share_for_quality(0.95)) or 0.0))
    cost = float(np.mean(costs))
    report: dict[str, Any] = {
        "usd_per_1k_requests_at_95": round(cost / len(rows) * 1000, 4),
        "usd_per_1k_requests_all_strong": round(all_strong / len(rows) * 1000, 4),
        "cost_share_of_all_strong_at_95": round(cost / all_strong, 4),
    }
    if task.spec.answer:
        report["note"] = "every request pays the cheap call; escalated requests pay cheap + strong"
    return report


def cascade_latency(task: Task, rows: Ints) -> dict[str, Any]:
    """What an escalated request waits for before the strong call starts: the whole cheap answer."""
    assert task.outcomes.answers is not None
    tokens = np.array([len(task.outcomes.answers[i]) / 4 for i in rows])
    return {
        "added_latency": "escalated requests wait for the whole cheap answer before the strong call",
        "cheap_answer_tokens_p50": round(float(np.percentile(tokens, 50)), 1),
        "cheap_answer_tokens_p90": round(float(np.percentile(tokens, 90)), 1),
        "added_seconds_p50_at_100_tokens_per_s": round(float(np.percentile(tokens, 50)) / 100, 2),
        "tokens_per_s_note": "100 tokens/s is an assumed decode rate for the cheap model, not measured",
    }


def goal_report(setting: str, learned: dict[str, Any]) -> dict[str, Any]:
    goal = GOALS[setting]
    share = learned["strong_share_at_95"]
    report: dict[str, Any] = {"strong_share_at_95": goal, "measured": share}
    judged = share
    if setting == "gsm8k_cascade":
        # Costs included: the cheap call every request pays, in units of the strong call's cost.
        judged = learned["cost"]["cost_share_of_all_strong_at_95"]
        report["judged_on"] = "cost_share_of_all_strong_at_95 (cheap calls included)"
        report["measured_cost_share"] = judged
    report["met"] = bool(judged <= goal)
    report["missed_by"] = round(max(0.0, judged - goal), 4)
    return report


def prices() -> dict[str, tuple[float, float]]:
    """(input, output) USD per token for both models, from genai-prices."""
    from genai_prices import Usage, calc_price

    out = {}
    for column, (model, provider) in PRICED.items():
        price = calc_price(
            Usage(input_tokens=1_000_000, output_tokens=1_000_000), model_ref=model, provider_id=provider
        )
        out[column] = (float(price.input_price) / 1e6, float(price.output_price) / 1e6)
    return out


def with_costs(outcomes: Outcomes, table: dict[str, tuple[float, float]], cascade: bool) -> Outcomes:
    """Per-request USD from characters / 4 tokens of the prompt and of each model's answer."""
    rows = read_rows(Path(outcomes.source))
    prompt_tokens = np.array([len(p) / 4 + 4 for p in outcomes.prompts])

    def cost(model: str) -> Floats:
        answer_tokens = np.array([len(str(r.get(f"{model}_response") or "")) / 4 for r in rows])
        price_in, price_out = table[model]
        return np.asarray(prompt_tokens * price_in + answer_tokens * price_out)

    weak_cost, strong_cost = cost(WEAK), cost(STRONG)
    if cascade:
        strong_cost = weak_cost + strong_cost  # an escalated request has paid for the cheap answer too
    return replace(outcomes, weak_cost=weak_cost, strong_cost=strong_cost)


def calibration_check(scores: Floats, weak: Floats, strong: Floats, halvings: int = 20) -> dict[str, float]:
    """Threshold for 95% chosen on one half of the held-out rows, measured on the other half."""
    rng = np.random.default_rng(0)
    shares, ratios = [], []
    for _ in range(halvings):
        order = rng.permutation(len(scores))
        pick, test = order[: len(order) // 2], order[len(order) // 2 :]
        threshold = threshold_for(Target("quality", 0.95), scores[pick], weak[pick], strong[pick])
        share, ratio = achieved(threshold, scores[test], weak[test], strong[test])
        shares.append(share)
        ratios.append(ratio)
    return {
        "strong_share": round(float(np.mean(shares)), 4),
        "quality_ratio": round(float(np.mean(ratios)), 4),
        "quality_ratio_min": round(float(np.min(ratios)), 4),
    }


def _mean(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return round(float(np.mean(present)), 4) if present else None


def run_latency(root: Path, settings: list[str], latency_rows: int = 500, warm: int = 2000) -> dict[str, Any]:
    """Decision latency alone (``--latency-only``): per setting, a router of the bench's shape
    (fitted on the first fold's training rows, shipped regularisation) scores ``latency_rows``
    prompts one at a time, twice: after 20 other requests, and after ``warm`` other requests (a
    router that has served traffic: the tokeniser's memory of pieces is warm). CPU time is the
    deciding thread's, independent of what else the machine runs; wall clock is not."""
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; settings: {', '.join(SETTINGS)}")
    started = time.perf_counter()
    bench = Bench(load_routellm(root), latency_rows)
    results: dict[str, Any] = {}
    for setting in settings:
        key = {"mmlu_subjects": "mmlu", "cross": "gsm8k"}.get(setting, setting)
        task = bench.task(key)
        if setting == "cross":
            mmlu = bench.task("mmlu")
            fitted = bench._fit(mmlu, np.concatenate([mmlu.dev, mmlu.rows]), Regularization())
            router = bench._router(mmlu.spec, fitted)
        else:
            folds = bench._folds(setting, task, 0)
            router = bench._router(task.spec, bench._fit(task, task.rows[folds != 0], Regularization()))
        prompts = [task.outcomes.prompts[i] for i in task.rows]
        answers = task.outcomes.answers if task.spec.answer else None
        texts = [answers[i] for i in task.rows] if answers else None
        results[setting] = {"rows": len(prompts)}
        for label, n in (("after_20", 0), (f"after_{warm}", warm)):
            # A fresh embedder each time: its memory of pieces starts empty.
            fresh = LearnedRouter(router.artifact, WordLlamaEmbedder(), router.threshold)
            results[setting][label] = decision_latency_ms(fresh, prompts, texts, latency_rows, warm=n)
    worst = max(r[f"after_{warm}"]["decision_cpu_p99_ms"] for r in results.values()) if results else 0.0
    return {
        "decision_latency": results,
        "timed_requests_per_setting": latency_rows,
        "decision_cpu_p99_goal_ms": {"goal": DECISION_P99_GOAL_MS, "worst_warm_cpu_p99": worst},
        "machine": {"cpus": os.cpu_count(), "load_average_1m": load_average(), "nice": os.nice(0)},
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_bench(
    root: Path, settings: list[str], latency_rows: int = 500, workers: int = 1
) -> tuple[dict[str, Any], dict[str, Curve]]:
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; settings: {', '.join(SETTINGS)}")
    started = time.perf_counter()
    bench = Bench(load_routellm(root), latency_rows, workers)
    results, curves = {}, {}
    for setting in settings:
        results[setting], curves[setting] = bench.run(setting)
        if setting == "gsm8k_cascade":
            results[setting]["cascade_latency"] = cascade_latency(
                bench.task(setting), bench.task(setting).rows
            )
    p99 = max((r.get("decision_p99_ms", 0.0) for r in results.values()), default=0.0)
    report = {
        "benchmarks": results,
        "weak": WEAK,
        "strong": STRONG,
        "prices_usd_per_million_tokens": {
            m: [round(i * 1e6, 4), round(o * 1e6, 4)] for m, (i, o) in bench.prices.items()
        },
        "prices_source": "genai-prices (input, output list prices)",
        "decision_p99_goal_ms": {
            "goal": DECISION_P99_GOAL_MS,
            "worst_measured": p99,
            "met": p99 <= DECISION_P99_GOAL_MS,
        },
        "machine": {"cpus": os.cpu_count(), "load_average_1m": load_average()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    return report, curves
