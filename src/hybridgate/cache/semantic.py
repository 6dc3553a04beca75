"""The semantic cache's matcher: embed a last user turn, and judge a near neighbour a hit or not.

A hit needs the cosine similarity of the two texts' embeddings to reach ``threshold`` *and* the
two texts to pass the guards (``guards.py``: same numbers, dates, negation and named entities).
The embedder is the router's (WordLlama by default, mean of static token vectors, normalised);
anything with the ``Embedder`` methods works. The caller (the cache) scopes the comparison: it
only asks about candidates with the same route, tenant, system prompt, tools and conversation
prefix, found by ``vectors.VectorIndex``.

Measured on held-out Quora question pairs (docs/benchmarks.md, "Response cache"): at the default
threshold the guards raise precision from 0.73 to 0.78 (recall 0.27 -> 0.25) and cut the false
hits by a third. Vectors travel between replicas as ``to_bytes``/``from_bytes`` (float16).
Step 4 of the flow; CPU only, no I/O.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from hybridgate.cache.guards import difference, surface
from hybridgate.cache.vectors import Vector, VectorIndex, from_bytes, normalise, to_bytes

__all__ = ["DEFAULT_THRESHOLD", "Embedder", "SemanticMatcher", "VectorIndex", "from_bytes", "to_bytes"]

# The shipped operating point, chosen for safety over recall (docs/caching.md): on all 80,854
# Quora pairs it serves another question's answer for 0.33% of the non-duplicates (precision
# 0.909, recall 0.055); 0.9 would serve it for 3.9%. A route may opt for more recall.
DEFAULT_THRESHOLD = 0.98
BELOW_THRESHOLD = "below_threshold"


class Embedder(Protocol):
    """What the matcher needs of an embedder (``hybridgate.embedder.WordLlamaEmbedder`` has it)."""

    dim: int

    def token_ids(self, text: str) -> NDArray[np.int64]: ...

    def token_ids_many(self, texts: list[str]) -> list[NDArray[np.int64]]: ...

    def pool(self, ids: NDArray[np.int64]) -> NDArray[np.float32]: ...


class SemanticMatcher:
    """Embeds texts and accepts or rejects a (query, candidate, similarity) as a cache hit."""

    def __init__(self, embedder: Embedder, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"a semantic threshold is a cosine similarity in [0, 1], not {threshold}")
        self.embedder = embedder
        self.threshold = threshold
        self.dim = embedder.dim

    def embed(self, text: str) -> Vector:
        """The normalised embedding of one text (a zero vector for a text without tokens)."""
        return normalise(self.embedder.pool(self.embedder.token_ids(text)))

    def embed_many(self, texts: list[str]) -> NDArray[np.float32]:
        """Normalised embeddings, one row per text (the batch path, for benchmarks and rebuilds)."""
        rows = [self.embedder.pool(ids) for ids in self.embedder.token_ids_many(texts)]
        vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.dim), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def accept(self, query: str, candidate: str, similarity: float, threshold: float | None = None) -> bool:
        """True if ``candidate``'s cached answer may be served for ``query``; ``threshold``: a
        route's own operating point instead of the matcher's."""
        return self.rejection(query, candidate, similarity, threshold) is None

    def rejection(
        self, query: str, candidate: str, similarity: float, threshold: float | None = None
    ) -> str | None:
        """Why a candidate is not a hit, for logs and metrics: ``"below_threshold"``, ``"number"``,
        ``"date"``, ``"negation"`` or ``"entity"``; None when it is a hit."""
        if similarity < (self.threshold if threshold is None else threshold):
            return BELOW_THRESHOLD
        return difference(surface(query), surface(candidate))
