"""Splits for ``hybridgate bench router``: duplicate-safe folds and a fixed development split.

- Rows are grouped by the SHA-256 of their normalised prompt (Unicode NFKC, lower case, runs of
  white space collapsed): copies of one question always land in the same fold, so a model is
  never tested on a question it was trained on (MMLU has 105 exact-duplicate pairs).
- The development split is fixed by that hash (a quarter of the groups), not by a seed: features
  and regularisation are chosen on it, and the reported folds never see its rows, neither for
  training nor for testing.

Offline only (the benchmark and the bench/ simulation).
"""

from __future__ import annotations

import hashlib
import unicodedata

import numpy as np
from numpy.typing import NDArray

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
DEV_BUCKETS = 4  # one bucket of four: 25% of the groups are the development split


def normalise(prompt: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", prompt).lower().split())


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(normalise(prompt).encode("utf-8")).hexdigest()


def prompt_groups(prompts: list[str]) -> Ints:
    """Group number of every row: equal for prompts that are equal after ``normalise``."""
    numbers: dict[str, int] = {}
    return np.array([numbers.setdefault(prompt_hash(p), len(numbers)) for p in prompts], dtype=np.int64)


def development_rows(prompts: list[str]) -> Bools:
    """True for the fixed development split: the groups whose hash falls in bucket 0."""
    return np.array([int(prompt_hash(p)[:8], 16) % DEV_BUCKETS == 0 for p in prompts], dtype=bool)


def group_fold_ids(groups: Ints, folds: int, seed: int) -> Ints:
    """Fold number 0..folds-1 per row; every row of a group gets its group's fold."""
    unique = np.unique(groups)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = np.empty(int(unique.max()) + 1 if len(unique) else 0, dtype=np.int64)
    fold_of[unique[order]] = np.arange(len(unique), dtype=np.int64) % folds
    return fold_of[groups]
