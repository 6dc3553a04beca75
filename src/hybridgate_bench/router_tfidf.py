"""The plain baseline for ``hybridgate bench router``: word TF-IDF + logistic regression.

What scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2))`` + ``LogisticRegression(C=...)`` do,
in numpy: lower-cased words of two or more word characters, unigrams and bigrams (hashed into
2^20 buckets, then compacted to the training rows' vocabulary), raw term counts x smoothed IDF
from the training rows, rows scaled to unit length, n-grams never seen in training dropped.
Two heads, like the learned router: P(cheap ok) and P(strong ok), scored by their difference.
For a cascade the cheap answer's words are added as their own n-grams. The same folds as the
learned router; ``C`` chosen on the development split. Offline only.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from hybridgate.router.linear import Logistic, Penalty, fit_logistic
from hybridgate.router.sparse import SparseRows, smooth_idf

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
WORD = re.compile(r"(?u)\b\w\w+\b")
BUCKETS = 1 << 20


def word_grams(text: str, prefix: str = "") -> list[str]:
    words = WORD.findall(text.lower())
    return [prefix + w for w in words] + [f"{prefix}{a} {b}" for a, b in pairwise(words)]


def tf_rows(prompts: list[str], answers: list[str] | None = None) -> SparseRows:
    """Raw n-gram counts per text (hashed), the input to TF-IDF."""
    rows = []
    for i, prompt in enumerate(prompts):
        grams = word_grams(prompt) + (word_grams(answers[i], "a:") if answers is not None else [])
        ids = np.array([zlib.crc32(g.encode("utf-8")) % BUCKETS for g in grams], dtype=np.int64)
        buckets, counts = np.unique(ids, return_counts=True)
        rows.append((buckets, counts.astype(np.float64)))
    return SparseRows.from_rows(rows, BUCKETS)


@dataclass(frozen=True)
class TfidfRouter:
    column: Ints  # hashed n-gram -> column of the training vocabulary, -1 if never seen in training
    idf: Floats
    weak: Logistic
    strong: Logistic

    @classmethod
    def fit(cls, counts: SparseRows, weak: Floats, strong: Floats, c: float) -> TfidfRouter:
        df = counts.document_frequency()
        seen = np.nonzero(df > 0)[0]
        column = np.full(counts.n_cols, -1, dtype=np.int64)
        column[seen] = np.arange(len(seen), dtype=np.int64)
        idf = smooth_idf(df[seen], counts.n_rows)
        x = _vocabulary(counts, column, len(seen)).tfidf(idf)
        dense = np.zeros((counts.n_rows, 0))
        penalty = Penalty(np.zeros(0), 1.0 / c)
        return cls(
            column, idf, fit_logistic(dense, x, weak, penalty), fit_logistic(dense, x, strong, penalty)
        )

    def gain(self, counts: SparseRows) -> Floats:
        x = _vocabulary(counts, self.column, len(self.idf)).tfidf(self.idf)
        dense = np.zeros((counts.n_rows, 0))
        return np.asarray(self.strong.predict(dense, x) - self.weak.predict(dense, x))


def _vocabulary(counts: SparseRows, column: Ints, size: int) -> SparseRows:
    """The rows over the training vocabulary's columns; n-grams outside it are dropped."""
    mapped = column[counts.indices]
    keep = mapped >= 0
    lengths = np.bincount(counts.row_ids[keep], minlength=counts.n_rows)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return SparseRows(indptr, mapped[keep], counts.data[keep], size)


def cross_validated_gain(counts: SparseRows, weak: Floats, strong: Floats, folds: Ints, c: float) -> Floats:
    """Each row's score from the model trained on the other folds."""
    scores = np.zeros(counts.n_rows)
    for k in np.unique(folds):
        test, train = np.nonzero(folds == k)[0], np.nonzero(folds != k)[0]
        model = TfidfRouter.fit(counts.take(train), weak[train], strong[train], c)
        scores[test] = model.gain(counts.take(test))
    return scores
