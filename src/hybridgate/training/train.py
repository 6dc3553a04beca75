"""Train a router file from outcome data: features -> cross-validated scores -> threshold -> model.

1. Featurise every prompt (and the cheap tier's answer, for a cascade verifier).
2. K-fold cross-validation gives every row a score from a model that never saw it.
3. The threshold is calibrated on those held-out scores for the target (calibration.py), and the
   held-out cost-quality metrics go into the file.
4. The final model is fitted on all rows; the calibrated threshold carries over, because the
   fold models and the final one are the same recipe on nearly the same data.

Offline only (``hybridgate router train`` and the benchmark).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hybridgate.errors import DataFileError
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.features import Features, FeatureSpec, Featurizer
from hybridgate.router.model import Regularization, RouterModel
from hybridgate.training.calibration import Target, calibrate
from hybridgate.training.dataset import Outcomes
from hybridgate.training.quality import curve, summary

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
MIN_ROWS = 10


@dataclass(frozen=True)
class TrainingOptions:
    target: Target = field(default_factory=lambda: Target("quality", 0.95))
    folds: int = 5
    seed: int = 0
    bootstrap: int = 500
    confidence: float = 0.5
    regularization: Regularization = field(default_factory=Regularization)


def take(features: Features, rows: Ints) -> Features:
    return Features(features.dense[rows], features.tokens.take(rows))


def n_stats(spec: FeatureSpec) -> int:
    return len(spec.stat_names())


def fit(
    features: Features, outcomes: Outcomes, rows: Ints, spec: FeatureSpec, reg: Regularization
) -> RouterModel:
    return RouterModel.fit(
        take(features, rows), outcomes.weak[rows], outcomes.strong[rows], n_stats(spec), reg
    )


def fold_ids(n: int, folds: int, seed: int) -> Ints:
    """Balanced random fold numbers 0..folds-1."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64) % folds


def cross_validated_scores(
    features: Features, outcomes: Outcomes, folds: Ints, spec: FeatureSpec, reg: Regularization
) -> Floats:
    """Each row's gain score from the model trained on the other folds."""
    scores = np.zeros(len(outcomes))
    for k in np.unique(folds):
        test = np.nonzero(folds == k)[0]
        train = np.nonzero(folds != k)[0]
        model = fit(features, outcomes, train, spec, reg)
        scores[test] = model.predict(take(features, test)).gain
    return scores


def train_router(
    outcomes: Outcomes, featurizer: Featurizer, options: TrainingOptions, training_info: Mapping[str, object]
) -> RouterArtifact:
    if len(outcomes) < MIN_ROWS:
        raise DataFileError(f"{outcomes.source}: {len(outcomes)} rows; training needs at least {MIN_ROWS}")
    if featurizer.spec.answer and outcomes.answers is None:
        raise DataFileError(f"{outcomes.source}: an answer-aware router needs the cheap tier's answers")
    features = featurizer.many(outcomes.prompts, outcomes.answers)
    return train_on_features(features, outcomes, featurizer.spec, options, training_info)


def train_on_features(
    features: Features,
    outcomes: Outcomes,
    spec: FeatureSpec,
    options: TrainingOptions,
    training_info: Mapping[str, object],
) -> RouterArtifact:
    """``train_router`` on features already made (stored with production outcomes)."""
    if len(outcomes) < MIN_ROWS:
        raise DataFileError(f"{outcomes.source}: {len(outcomes)} rows; training needs at least {MIN_ROWS}")
    folds = fold_ids(len(outcomes), max(2, min(options.folds, len(outcomes) // 2)), options.seed)
    held_out = cross_validated_scores(features, outcomes, folds, spec, options.regularization)
    calibration = calibrate(
        options.target,
        held_out,
        outcomes.weak,
        outcomes.strong,
        bootstrap=options.bootstrap,
        confidence=options.confidence,
        seed=options.seed,
    )
    metrics = summary(
        curve(held_out, outcomes.weak, outcomes.strong, outcomes.weak_cost, outcomes.strong_cost)
    )
    model = fit(features, outcomes, np.arange(len(outcomes)), spec, options.regularization)
    return RouterArtifact(
        features=spec,
        model=model,
        threshold=calibration.threshold,
        calibration=calibration.to_json(),
        training={
            **training_info,
            "rows": len(outcomes),
            "weak": outcomes.weak_name,
            "strong": outcomes.strong_name,
            "folds": int(folds.max()) + 1,
            "seed": options.seed,
        },
        metrics={"held_out": metrics},
        regularization=options.regularization.to_json(),
    )
