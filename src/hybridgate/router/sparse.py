"""A minimal compressed-sparse-row matrix for the router's token n-gram block, in plain numpy.

Only what a linear model needs: multiply by a weight vector, multiply the transpose by a residual,
pick rows, and TF-IDF weighting. Keeps scipy out of the gateway's dependencies.
Part of the router (step 2 of the flow): pure computation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class SparseRows:
    """``n_rows`` x ``n_cols``; row ``i`` holds ``indices/data[indptr[i]:indptr[i+1]]``."""

    indptr: Ints
    indices: Ints
    data: Floats
    n_cols: int
    row_ids: Ints = field(init=False, repr=False)  # the row of every entry, for bincount

    def __post_init__(self) -> None:
        rows = np.repeat(np.arange(len(self.indptr) - 1, dtype=np.int64), np.diff(self.indptr))
        object.__setattr__(self, "row_ids", rows)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[Ints, Floats]], n_cols: int) -> SparseRows:
        lengths = np.array([len(i) for i, _ in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if not rows:
            return cls(indptr, np.zeros(0, np.int64), np.zeros(0, np.float64), n_cols)
        indices = np.concatenate([i for i, _ in rows]).astype(np.int64)
        data = np.concatenate([d for _, d in rows]).astype(np.float64)
        return cls(indptr, indices, data, n_cols)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def matvec(self, weights: Floats) -> Floats:
        """``X @ weights``."""
        products = self.data * weights[self.indices]
        return np.bincount(self.row_ids, weights=products, minlength=self.n_rows).astype(np.float64)

    def rmatvec(self, residual: Floats) -> Floats:
        """``X.T @ residual``."""
        products = self.data * residual[self.row_ids]
        return np.bincount(self.indices, weights=products, minlength=self.n_cols).astype(np.float64)

    def take(self, rows: Ints) -> SparseRows:
        """The given rows, in the given order."""
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        spans = [np.arange(s, e, dtype=np.int64) for s, e in zip(starts, ends, strict=True)]
        entries = np.concatenate(spans) if spans else np.zeros(0, np.int64)
        return SparseRows(indptr, self.indices[entries], self.data[entries], self.n_cols)

    def document_frequency(self) -> Floats:
        return np.bincount(self.indices, minlength=self.n_cols).astype(np.float64)

    def tfidf(self, idf: Floats) -> SparseRows:
        """Each entry times its column's IDF, then every row scaled to unit length."""
        data = self.data * idf[self.indices]
        norms = np.sqrt(np.bincount(self.row_ids, weights=data * data, minlength=self.n_rows))
        data = data / np.maximum(norms, 1e-12)[self.row_ids]
        return SparseRows(self.indptr, self.indices, data, self.n_cols)


def smooth_idf(document_frequency: Floats, n_documents: int) -> Floats:
    """IDF as scikit-learn smooths it: rare n-grams weigh more, unseen ones do not divide by 0."""
    return np.log((1.0 + n_documents) / (1.0 + document_frequency)) + 1.0
