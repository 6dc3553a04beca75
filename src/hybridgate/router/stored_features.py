"""The router's features of one request as compact JSON, so outcomes can be stored without prompts.

``dense`` (embedding and statistics) as base64 float32, the token n-grams as base64 int32 bucket
ids and float32 weights, with the feature spec they were made under: retraining reads them back
as ``Features`` rows, and skips rows made under another spec. Pure computation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.router.features import Features, FeatureSpec
from hybridgate.router.sparse import SparseRows


def _b64(array: NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _array(text: str, dtype: type[np.generic]) -> NDArray[Any]:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def encode(features: Features, spec: FeatureSpec) -> str:
    """One row's features (``Featurizer.one``) as JSON text."""
    start, end = int(features.tokens.indptr[0]), int(features.tokens.indptr[1])
    return json.dumps(
        {
            "spec": spec.to_json(),
            "dense": _b64(features.dense[0].astype(np.float32)),
            "idx": _b64(features.tokens.indices[start:end].astype(np.int32)),
            "val": _b64(features.tokens.data[start:end].astype(np.float32)),
        },
        separators=(",", ":"),
    )


def decode_many(texts: Sequence[str], spec: FeatureSpec) -> tuple[Features, list[int]]:
    """The rows made under ``spec`` stacked as ``Features``, and which of ``texts`` they were."""
    dense: list[NDArray[np.float64]] = []
    grams: list[tuple[NDArray[np.int64], NDArray[np.float64]]] = []
    kept: list[int] = []
    for i, text in enumerate(texts):
        try:
            row = json.loads(text)
            if FeatureSpec.from_json(row["spec"]) != spec:
                continue
            values = _array(row["dense"], np.float32).astype(np.float64)
            indices = _array(row["idx"], np.int32).astype(np.int64)
            weights = _array(row["val"], np.float32).astype(np.float64)
        except (ValueError, KeyError, TypeError):
            continue
        if dense and len(values) != len(dense[0]):
            continue
        dense.append(values)
        grams.append((indices, weights))
        kept.append(i)
    width = len(dense[0]) if dense else 0
    matrix = np.stack(dense) if dense else np.zeros((0, width))
    return Features(matrix, SparseRows.from_rows(grams, spec.token_buckets)), kept
