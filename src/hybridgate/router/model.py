"""The learned router's model: two logistic heads over the same features.

One head predicts the cheap tier's quality on a request, the other the strong tier's. The routing
score is their difference, the expected quality gained by sending the request to the strong tier
(RouteLLM-style routers score the same quantity). Ranking by the gain, not just by "the cheap tier
fails", matters: questions that both tiers get wrong are not worth the strong tier's price.

Dense columns are standardised with the training means and scales; token n-grams get TF-IDF with
the training IDF. Everything needed to score is stored in the router file as base64 float32.
Part of the router (step 2 of the flow): no I/O.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.router.features import Features
from hybridgate.router.linear import Logistic, Penalty, fit_logistic
from hybridgate.router.sparse import SparseRows, smooth_idf

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Regularization:
    """L2 strengths per block; defaults chosen on the RouteLLM data (docs/router.md)."""

    embedding: float = 3000.0
    stats: float = 10.0
    tokens: float = 3.0

    def to_json(self) -> dict[str, float]:
        return {"embedding": self.embedding, "stats": self.stats, "tokens": self.tokens}


@dataclass(frozen=True)
class Prediction:
    weak: Floats  # predicted quality of the cheap tier, in [0, 1]
    strong: Floats

    @property
    def gain(self) -> Floats:
        return np.asarray(self.strong - self.weak)


@dataclass(frozen=True)
class RouterModel:
    mean: Floats
    scale: Floats
    idf: Floats
    weak: Logistic
    strong: Logistic

    @classmethod
    def fit(
        cls, features: Features, weak: Floats, strong: Floats, n_stats: int, reg: Regularization
    ) -> RouterModel:
        mean = features.dense.mean(axis=0)
        scale = features.dense.std(axis=0)
        scale[scale < 1e-9] = 1.0  # a constant column carries no information; keep it at 0
        idf = smooth_idf(features.tokens.document_frequency(), features.tokens.n_rows)
        dense = (features.dense - mean) / scale
        tokens = features.tokens.tfidf(idf)
        n_embedding = dense.shape[1] - n_stats
        penalty = Penalty(
            np.concatenate([np.full(n_embedding, reg.embedding), np.full(n_stats, reg.stats)]), reg.tokens
        )
        return cls(
            mean,
            scale,
            idf,
            fit_logistic(dense, tokens, weak, penalty),
            fit_logistic(dense, tokens, strong, penalty),
        )

    def prepared(self, features: Features) -> tuple[Floats, SparseRows]:
        return (features.dense - self.mean) / self.scale, features.tokens.tfidf(self.idf)

    def predict(self, features: Features) -> Prediction:
        dense, tokens = self.prepared(features)
        return Prediction(self.weak.predict(dense, tokens), self.strong.predict(dense, tokens))

    def explain(self, features: Features) -> tuple[Prediction, Floats, SparseRows]:
        """Prediction for one row, plus each column's share of logit(strong) - logit(weak)."""
        dense, tokens = self.prepared(features)
        prediction = Prediction(self.weak.predict(dense, tokens), self.strong.predict(dense, tokens))
        dense_part = dense[0] * (self.strong.dense - self.weak.dense)
        delta = self._token_delta[tokens.indices]
        token_part = SparseRows(tokens.indptr, tokens.indices, tokens.data * delta, tokens.n_cols)
        return prediction, dense_part, token_part

    @cached_property
    def _token_delta(self) -> Floats:
        # Computed once: a 10^5-long subtraction per request would cost more than the rest.
        return np.asarray(self.strong.tokens - self.weak.tokens)

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": encode(self.mean),
            "scale": encode(self.scale),
            "idf": encode(self.idf),
            "weak": _head_json(self.weak),
            "strong": _head_json(self.strong),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RouterModel:
        return cls(
            decode(data["mean"]),
            decode(data["scale"]),
            decode(data["idf"]),
            _head(data["weak"]),
            _head(data["strong"]),
        )


def _head_json(head: Logistic) -> dict[str, Any]:
    return {"dense": encode(head.dense), "tokens": encode(head.tokens), "bias": head.bias}


def _head(data: dict[str, Any]) -> Logistic:
    return Logistic(decode(data["dense"]), decode(data["tokens"]), float(data["bias"]))


def encode(array: Floats) -> str:
    """float32 little-endian, base64: compact and exact enough for weights."""
    return base64.b64encode(np.asarray(array, dtype="<f4").tobytes()).decode("ascii")


def decode(text: str) -> Floats:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)
