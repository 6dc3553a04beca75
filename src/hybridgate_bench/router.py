"""``hybridgate bench router``: the learned router on RouteLLM's own MMLU and GSM8K outcome data.

Weak = Mixtral-8x7B-Instruct, strong = GPT-4 (1106). Honest splits only: every score comes from a
model that never saw the row, and RouteLLM's ``contaminated_prompts.jsonl`` rows are left out of
every evaluation. Settings:

- ``mmlu``: 5-fold CV, random folds (same kinds of questions, different questions);
- ``mmlu_subjects``: 5-fold CV over subjects (no subject in both train and test);
- ``gsm8k``: 5-fold CV, the router sees only the prompt (3 fold shuffles, averaged: 1.3k rows);
- ``gsm8k_cascade``: same folds, the router also reads the weak model's answer;
- ``cross``: train on all of MMLU, test on GSM8K.

Each setting reports the held-out metrics, a calibration check (the threshold for 95% chosen on
half of the held-out rows, measured on the other half, 20 random halvings), decision latency
measured one request at a time, and the reference points beside it. Offline only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.features import Features, FeatureSpec, Featurizer
from hybridgate.router.learned import LearnedRouter
from hybridgate.router.model import Regularization
from hybridgate.training.calibration import Target, achieved, threshold_for
from hybridgate.training.dataset import Outcomes
from hybridgate.training.evaluation import decision_latency_ms, load_average
from hybridgate.training.quality import Curve, curve, random_share_for_quality, summary
from hybridgate.training.train import cross_validated_scores, fit, fold_ids
from hybridgate_bench.router_data import STRONG, WEAK, BenchData, load_routellm

Floats = np.ndarray
SETTINGS = ("mmlu", "mmlu_subjects", "gsm8k", "gsm8k_cascade", "cross")
# RouteLLM's best routers at 95% of GPT-4's quality (arXiv 2406.18665; LMSYS blog 2024-07-01).
ROUTELLM_PUBLISHED = {
    "mmlu": 0.55,
    "mmlu_subjects": 0.55,
    "gsm8k": 0.65,
    "gsm8k_cascade": 0.65,
    "cross": 0.65,
}
# A plain TF-IDF + logistic-regression router measured on the same splits (issue 4).
TFIDF_REFERENCE = {"mmlu": 0.42, "mmlu_subjects": 0.63, "gsm8k": 0.70, "gsm8k_cascade": 0.66}
GOALS = {"mmlu": 0.35, "mmlu_subjects": 0.55, "gsm8k": 0.55, "gsm8k_cascade": 0.50}
GSM8K_SHUFFLES = 3


class Bench:
    """Features are computed once per data set and shared by the settings that use them."""

    def __init__(self, data: BenchData, latency_rows: int) -> None:
        self.data = data
        self.latency_rows = latency_rows
        self.embedder = WordLlamaEmbedder()
        self.prompt_only = Featurizer(FeatureSpec(), self.embedder)
        self.with_answer = Featurizer(FeatureSpec(answer=True), self.embedder)
        self.reg = Regularization()
        self._cache: dict[str, Features] = {}

    def features(self, key: str) -> Features:
        if key not in self._cache:
            mmlu, gsm = self.data.mmlu, self.data.gsm8k
            build: dict[str, Callable[[], Features]] = {
                "mmlu": lambda: self.prompt_only.many(mmlu.prompts),
                "gsm8k": lambda: self.prompt_only.many(gsm.prompts),
                "gsm8k_cascade": lambda: self.with_answer.many(gsm.prompts, gsm.answers),
            }
            self._cache[key] = build[key]()
        return self._cache[key]

    def run(self, setting: str) -> tuple[dict[str, Any], Curve]:
        started = time.perf_counter()
        if setting == "cross":
            scores, router = self._cross()
            outcomes, mask, prompts, answers = (
                self.data.gsm8k,
                self.data.gsm8k_eval,
                self.data.gsm8k.prompts,
                None,
            )
            repeats = [scores]
        else:
            outcomes, mask, spec, repeats, router = self._cross_validate(setting)
            prompts = outcomes.prompts
            answers = outcomes.answers if spec.answer else None
        report, pooled = self._report(setting, outcomes, mask, repeats)
        rows = np.nonzero(mask)[0]
        report.update(
            decision_latency_ms(
                router,
                [prompts[i] for i in rows],
                [answers[i] for i in rows] if answers else None,
                self.latency_rows,
            )
        )
        report["seconds"] = round(time.perf_counter() - started, 1)
        return report, pooled

    def _cross_validate(
        self, setting: str
    ) -> tuple[Outcomes, np.ndarray, FeatureSpec, list[Floats], LearnedRouter]:
        if setting in ("mmlu", "mmlu_subjects"):
            outcomes, mask, key, shuffles = self.data.mmlu, self.data.mmlu_eval, "mmlu", 1
        elif setting in ("gsm8k", "gsm8k_cascade"):
            outcomes, mask, key, shuffles = self.data.gsm8k, self.data.gsm8k_eval, setting, GSM8K_SHUFFLES
        else:
            raise ValueError(f"unknown setting '{setting}'; settings: {', '.join(SETTINGS)}")
        spec = self.with_answer.spec if key == "gsm8k_cascade" else self.prompt_only.spec
        features = self.features(key)
        repeats = []
        for seed in range(shuffles):
            folds = self._folds(setting, len(outcomes), seed)
            repeats.append(cross_validated_scores(features, outcomes, folds, spec, self.reg))
        # Latency is timed on a model of the same shape, trained on the first fold's training rows.
        train = np.nonzero(self._folds(setting, len(outcomes), 0) != 0)[0]
        router = self._router(spec, fit(features, outcomes, train, spec, self.reg))
        return outcomes, mask, spec, repeats, router

    def _folds(self, setting: str, n: int, seed: int) -> np.ndarray:
        if setting == "mmlu_subjects":
            subjects = self.data.mmlu_subjects
            order = np.random.default_rng(seed).permutation(int(subjects.max()) + 1)
            folds: np.ndarray = (order[subjects] % 5).astype(np.int64)
            return folds
        return fold_ids(n, 5, seed)

    def _cross(self) -> tuple[Floats, LearnedRouter]:
        spec = self.prompt_only.spec
        model = fit(self.features("mmlu"), self.data.mmlu, np.arange(len(self.data.mmlu)), spec, self.reg)
        return model.predict(self.features("gsm8k")).gain, self._router(spec, model)

    def _router(self, spec: FeatureSpec, model: Any) -> LearnedRouter:
        return LearnedRouter(RouterArtifact(features=spec, model=model, threshold=0.0), self.embedder)

    def _report(
        self, setting: str, outcomes: Outcomes, mask: np.ndarray, repeats: list[Floats]
    ) -> tuple[dict[str, Any], Curve]:
        weak, strong = outcomes.weak[mask], outcomes.strong[mask]
        per_repeat = [summary(curve(s[mask], weak, strong)) for s in repeats]
        report: dict[str, Any] = {
            key: _mean([r[key] for r in per_repeat])
            for key in ("strong_share_at_95", "apgr", "cpt50", "cpt80")
        }
        if len(repeats) > 1:
            report["strong_share_at_95_per_shuffle"] = [r["strong_share_at_95"] for r in per_repeat]
        report["calibrated_95"] = calibration_check(repeats[0][mask], weak, strong)
        report.update(
            {
                "rows_evaluated": int(mask.sum()),
                "contaminated_excluded": int((~mask).sum()),
                "weak_quality": round(float(weak.mean()), 4),
                "strong_quality": round(float(strong.mean()), 4),
                "random_strong_share_at_95": round(random_share_for_quality(weak.mean(), strong.mean()), 4),
                "oracle_strong_share_at_95": summary(curve(strong - weak, weak, strong))[
                    "strong_share_at_95"
                ],
                "routellm_published_at_95": ROUTELLM_PUBLISHED.get(setting),
                "tfidf_lr_reference_at_95": TFIDF_REFERENCE.get(setting),
                "goal_at_95": GOALS.get(setting),
            }
        )
        goal = GOALS.get(setting)
        report["meets_goal"] = None if goal is None else bool(report["strong_share_at_95"] <= goal)
        return report, curve(repeats[0][mask], weak, strong)


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


def run_bench(
    root: Path, settings: list[str], latency_rows: int = 500
) -> tuple[dict[str, Any], dict[str, Curve]]:
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; settings: {', '.join(SETTINGS)}")
    started = time.perf_counter()
    bench = Bench(load_routellm(root), latency_rows)
    results, curves = {}, {}
    for setting in settings:
        results[setting], curves[setting] = bench.run(setting)
    report = {
        "benchmarks": results,
        "weak": WEAK,
        "strong": STRONG,
        "machine": {"cpus": os.cpu_count(), "load_average_1m": load_average()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    return report, curves
