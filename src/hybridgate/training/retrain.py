"""Retrain a learned route's router on its production outcomes, and promote it only when it is better.

1. **Rows.** The route's graded outcomes (ledger/outcomes.py), one per request: the caller's
   feedback wins over the judge, the judge over the checks. The cheap tier's score is the label;
   the strong tier's is its own score when known, else 1 (the judge grades the cheap answer
   against the strong one, so the strong answer is the reference). Features come from the row
   (stored under the serving router's feature spec), else from its prompt text (``log_prompts``);
   rows with neither are skipped.
2. **Held-out rows.** A row is held out when the SHA-256 of its prompt's stored features (else
   its prompt text), mod 100, is below ``retrain_held_out_percent``: the same rows at every
   retrain, and every repeat of a prompt on the same side, so no promoted router ever trained on
   a row (or a duplicate of one) it is later compared on, and the serving router (trained
   elsewhere, or by an earlier retrain on the other rows) never saw them either.
3. **Candidate.** ``training.train_on_features`` on the other rows, under the serving router's
   feature spec (cross-validated threshold for the same quality target).
4. **Comparison.** Both routers score the held-out rows; the metric is the strong-call share
   needed to keep 95% of the strong tier's quality (smaller is better). A paired bootstrap
   (``BOOTSTRAP`` resamples of the held-out rows, both routers on the same resample) gives the
   95% percentile interval of the improvement (serving - candidate). The candidate is promoted
   only when the interval's lower end is above zero and the improvement reaches
   ``retrain_min_improvement``.
5. **Promotion** writes the candidate beside the router file and renames it into place (the old
   file kept as ``<file>.previous``), so every replica's hot reload picks it up. Every verdict,
   promoted or refused, is a ``router_promotions`` row with its numbers.

Offline only (``hybridgate router retrain``); never imported on the request path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.config import GatewayConfig
from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.errors import ConfigError
from hybridgate.ledger.decisions import best_grades
from hybridgate.ledger.outcomes import Outcome, Outcomes, Promotion
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.features import Features, Featurizer
from hybridgate.router.stored_features import decode_many
from hybridgate.training.dataset import Outcomes as Rows
from hybridgate.training.quality import curve
from hybridgate.training.train import TrainingOptions, take, train_on_features

Floats = NDArray[np.float64]
BOOTSTRAP = 1000
METRIC = "strong_share_at_95"
MIN_HELD_OUT = 10


@dataclass(frozen=True)
class Labelled:
    """The rows retraining can use, with their features."""

    request_ids: list[str]
    prompts: list[str]  # what decides the held-out split: the stored features (or prompt) of each row
    features: Features
    cheap: Floats
    strong: Floats


def held_out(prompt: str, percent: float) -> bool:
    """Whether a row is held out; by its prompt's features, so repeats of a prompt stay together."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def labelled(outcomes: list[Outcome], featurizer: Featurizer) -> Labelled:
    """Features (stored, or made from logged prompt text) and labels of the usable rows."""
    rows = best_grades(outcomes)
    stored = [r for r in rows if r.features]
    features, kept = decode_many([r.features or "" for r in stored], featurizer.spec)
    used = [stored[i] for i in kept]
    taken = {id(r) for r in used}
    texts = [r for r in rows if id(r) not in taken and r.prompt_text]
    if texts:
        made = featurizer.many([r.prompt_text or "" for r in texts])
        features = _stack(features, made) if used else made
        used += texts
    cheap = np.array([r.cheap_score for r in used], dtype=np.float64)
    strong = np.array([1.0 if r.strong_score is None else r.strong_score for r in used], dtype=np.float64)
    prompts = [_split_key(r.features) if r.features else r.prompt_text or r.request_id for r in used]
    return Labelled([r.request_id for r in used], prompts, features, cheap, strong)


def _split_key(features: str) -> str:
    """The features without their spec: equal prompts give equal keys."""
    return features.partition('"dense":')[2] or features


def _stack(a: Features, b: Features) -> Features:
    from hybridgate.router.sparse import SparseRows

    rows = [
        (s.indices[s.indptr[i] : s.indptr[i + 1]], s.data[s.indptr[i] : s.indptr[i + 1]])
        for s in (a.tokens, b.tokens)
        for i in range(s.n_rows)
    ]
    return Features(np.vstack([a.dense, b.dense]), SparseRows.from_rows(rows, a.tokens.n_cols))


def share_at_95(scores: Floats, cheap: Floats, strong: Floats) -> float:
    return curve(scores, cheap, strong).share_for_quality(0.95)


def paired_bootstrap(
    serving: Floats, candidate: Floats, cheap: Floats, strong: Floats, seed: int = 0
) -> tuple[float, float, float, float, float]:
    """(serving's metric, candidate's, improvement, CI low, CI high) over resamples of the rows."""
    rng = np.random.default_rng(seed)
    n = len(cheap)
    diffs = np.empty(BOOTSTRAP)
    for b in range(BOOTSTRAP):
        rows = rng.integers(0, n, n)
        c, s = cheap[rows], strong[rows]
        diffs[b] = share_at_95(serving[rows], c, s) - share_at_95(candidate[rows], c, s)
    base, new = share_at_95(serving, cheap, strong), share_at_95(candidate, cheap, strong)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return base, new, base - new, float(low), float(high)


@dataclass(frozen=True)
class Verdict:
    promotion: Promotion
    candidate: RouterArtifact | None

    def report(self) -> dict[str, Any]:
        p = self.promotion
        return {k: getattr(p, k) for k in p.__dataclass_fields__}


async def retrain(
    config: GatewayConfig,
    store: Outcomes,
    route: str,
    *,
    options: TrainingOptions | None = None,
    dry_run: bool = False,
    embedder: WordLlamaEmbedder | None = None,
) -> Verdict:
    """Train, compare and (unless refused or ``dry_run``) promote; records the verdict."""
    settings = config.router
    route_config = config.routes.get(route)
    if route_config is None or route_config.router != "learned" or not route_config.router_file:
        raise ConfigError(f"route '{route}' is not a learned route with a router_file")
    path = Path(route_config.router_file)
    serving = RouterArtifact.load(path)
    featurizer = Featurizer(serving.features, embedder or WordLlamaEmbedder())
    data = labelled(await store.outcomes(route), featurizer)
    test = np.array([held_out(p, settings.retrain_held_out_percent) for p in data.prompts], dtype=bool)
    train_rows, test_rows = np.nonzero(~test)[0], np.nonzero(test)[0]
    verdict = _too_few(route, serving, len(train_rows), len(test_rows), settings.retrain_min_outcomes)
    if verdict is None:
        candidate = _train(data, train_rows, featurizer, options or TrainingOptions(bootstrap=200), path)
        verdict = _compare(route, serving, candidate, data, test_rows, settings.retrain_min_improvement)
    if verdict.promotion.promoted and not dry_run and verdict.candidate is not None:
        promote(verdict.candidate, path)
        verdict = Verdict(
            _with(verdict.promotion, candidate_sha256=RouterArtifact.load(path).sha256), verdict.candidate
        )
    if dry_run and verdict.promotion.promoted:
        verdict = Verdict(_with(verdict.promotion, promoted=False, reason="dry run: would promote"), None)
    await store.record_promotion(verdict.promotion)
    return verdict


def _with(promotion: Promotion, **changes: Any) -> Promotion:
    from dataclasses import replace

    return replace(promotion, **changes)


def _too_few(route: str, serving: RouterArtifact, train: int, test: int, needed: int) -> Verdict | None:
    if train + test >= needed and test >= MIN_HELD_OUT and train >= MIN_HELD_OUT:
        return None
    reason = (
        f"too few graded outcomes with features: {train} to train on and {test} held out "
        f"(need {needed} in all, at least {MIN_HELD_OUT} of each)"
    )
    return Verdict(_promotion(route, False, reason, serving, None, train, test), None)


def _promotion(
    route: str,
    promoted: bool,
    reason: str,
    serving: RouterArtifact,
    numbers: tuple[float, float, float, float, float] | None,
    train: int,
    test: int,
) -> Promotion:
    base, new, gain, low, high = numbers if numbers else (None, None, None, None, None)
    return Promotion(
        ts=time.time(),
        route=route,
        promoted=promoted,
        reason=reason,
        serving_sha256=serving.sha256,
        candidate_sha256=None,
        rows_train=train,
        rows_held_out=test,
        metric=METRIC,
        serving_value=base,
        candidate_value=new,
        improvement=gain,
        ci_low=low,
        ci_high=high,
    )


def _train(
    data: Labelled, rows: NDArray[np.int64], featurizer: Featurizer, options: TrainingOptions, path: Path
) -> RouterArtifact:
    subset = Rows(
        source=f"outcomes for {path.name}",
        prompts=[data.request_ids[i] for i in rows],
        weak_name="cheap",
        strong_name="strong",
        weak=data.cheap[rows],
        strong=data.strong[rows],
    )
    info = {"file": "production outcomes", "source": "hybridgate router retrain"}
    return train_on_features(take(data.features, rows), subset, featurizer.spec, options, info)


def _compare(
    route: str,
    serving: RouterArtifact,
    candidate: RouterArtifact,
    data: Labelled,
    rows: NDArray[np.int64],
    min_improvement: float,
) -> Verdict:
    held = take(data.features, rows)
    cheap, strong = data.cheap[rows], data.strong[rows]
    numbers = paired_bootstrap(
        serving.model.predict(held).gain, candidate.model.predict(held).gain, cheap, strong
    )
    _, _, gain, low, high = numbers
    train = len(data.request_ids) - len(rows)
    if low > 0 and gain >= min_improvement:
        reason = f"better: {METRIC} {gain:+.3f} (95% CI {low:+.3f}..{high:+.3f}) on {len(rows)} held-out rows"
        return Verdict(_promotion(route, True, reason, serving, numbers, train, len(rows)), candidate)
    why = "the interval includes zero" if low <= 0 else f"below retrain_min_improvement {min_improvement}"
    reason = f"not better: {METRIC} {gain:+.3f} (95% CI {low:+.3f}..{high:+.3f}); {why}"
    return Verdict(_promotion(route, False, reason, serving, numbers, train, len(rows)), None)


def promote(candidate: RouterArtifact, path: Path) -> None:
    """Write beside the file, keep the old one as ``.previous``, rename into place (atomic)."""
    fresh = path.with_name(path.name + ".candidate")
    candidate.save(fresh)
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + ".previous"))
    os.replace(fresh, path)
