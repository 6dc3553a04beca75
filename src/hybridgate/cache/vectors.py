"""The semantic cache's in-memory nearest-neighbour index, and the vector wire format.

``VectorIndex`` keeps, per scope (the lead's key for "same route, tenant, system prompt, tools and
conversation prefix"), the normalised embeddings of cached last user turns. A search is exact for
small scopes (one float32 matrix-vector product). Past ``EXACT_LIMIT`` entries it narrows by
binary codes first (the sign of each dimension, Hamming distance with ``np.bitwise_count``): the
64 leading sign bits keep about ``FIRST_PASS`` rows, all the sign bits keep ``PREFILTER`` of
those, and these are re-ranked exactly. At 100,000 entries x 256 dimensions a plain matvec reads
100 MB; the first pass reads 0.8 MB (docs/benchmarks.md, "Response cache": the exact nearest
neighbour was found for every query whose best match reaches 0.85).

The index is bounded: past ``max_entries`` (across scopes) the oldest entry is evicted. It is not
locked: the gateway calls it from one asyncio thread. Vectors are stored beside each entry in the
shared stores as ``to_bytes`` (little-endian float16), so another replica rebuilds its index with
``from_bytes``. Step 4 of the flow; CPU only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float32]

EXACT_LIMIT = 4096  # scopes up to this size are searched by a plain matvec
FIRST_PASS = 1024  # candidates kept by the 64-bit pass
PREFILTER = 128  # candidates kept by the full-code pass, then re-ranked exactly
_INITIAL_ROWS = 16


def to_bytes(vector: Vector) -> bytes:
    """A compact copy of a normalised vector: float16, little-endian (512 bytes at 256 dims)."""
    return np.asarray(vector, dtype="<f2").tobytes()


def from_bytes(data: bytes) -> Vector:
    """The vector ``to_bytes`` wrote, as float32 and re-normalised (float16 rounding)."""
    if len(data) == 0 or len(data) % 2:
        raise ValueError(f"a stored vector has {len(data)} bytes, not a positive even number")
    return normalise(np.frombuffer(data, dtype="<f2").astype(np.float32))


def normalise(vector: NDArray[np.floating]) -> Vector:
    """Unit length (a zero vector stays zero: it matches nothing)."""
    v = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _codes(vectors: NDArray[np.float32]) -> NDArray[np.uint64]:
    """Sign bits packed into 64-bit words, one row per vector (dimensions padded to 64)."""
    bits = np.packbits(vectors > 0, axis=-1, bitorder="little")
    pad = (-bits.shape[-1]) % 8
    if pad:
        bits = np.concatenate([bits, np.zeros((*bits.shape[:-1], pad), np.uint8)], axis=-1)
    return np.ascontiguousarray(bits).view(np.uint64)


class _Scope:
    """One scope's rows: vectors, their sign codes, keys and texts, compacted on removal.

    ``head`` is the first 64-bit word of each code (the signs of the first 64 dimensions; WordLlama
    is trained so that leading dimensions carry the most), kept contiguous for the first pass.
    """

    def __init__(self, dim: int) -> None:
        self.vectors = np.zeros((_INITIAL_ROWS, dim), np.float32)
        self.codes = _codes(self.vectors)
        self.head = np.zeros(_INITIAL_ROWS, np.uint64)
        self.scratch = np.zeros(_INITIAL_ROWS, np.uint64)  # reused by every search
        self.keys: list[str] = []
        self.texts: list[str] = []
        self.rows: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, vector: Vector, text: str) -> None:
        if key in self.rows:
            self.remove(key)
        n = len(self.keys)
        if n == len(self.vectors):
            self._grow()
        self.vectors[n] = vector
        self.codes[n] = _codes(vector[None, :])[0]
        self.head[n] = self.codes[n, 0]
        self.keys.append(key)
        self.texts.append(text)
        self.rows[key] = n

    def remove(self, key: str) -> None:
        row = self.rows.pop(key, None)
        if row is None:
            return
        last = len(self.keys) - 1
        if row != last:  # move the last row into the hole
            self.vectors[row], self.codes[row] = self.vectors[last], self.codes[last]
            self.head[row] = self.head[last]
            self.keys[row], self.texts[row] = self.keys[last], self.texts[last]
            self.rows[self.keys[row]] = row
        self.keys.pop()
        self.texts.pop()

    def search(self, vector: Vector, k: int) -> list[tuple[str, float, str]]:
        n = len(self.keys)
        if n <= EXACT_LIMIT:
            rows: NDArray[np.intp] = np.arange(n)
            sims = self.vectors[:n] @ vector
        else:
            rows = self._prefilter(vector, n)
            sims = self.vectors[rows] @ vector
        best = np.argsort(-sims, kind="stable")[:k]
        return [(self.keys[rows[i]], float(sims[i]), self.texts[rows[i]]) for i in best]

    def _prefilter(self, vector: Vector, n: int) -> NDArray[np.intp]:
        """Rows likely to hold the nearest vectors: the ``FIRST_PASS`` closest by the 64 leading
        sign bits, then the ``PREFILTER`` closest of those by all the sign bits."""
        query = _codes(vector[None, :])[0]
        np.bitwise_xor(self.head[:n], query[0], out=self.scratch[:n])
        distance = np.bitwise_count(self.scratch[:n])  # uint8, 0..64
        cumulative = np.cumsum(np.bincount(distance, minlength=65))
        cutoff = int(np.searchsorted(cumulative, FIRST_PASS))
        rows = np.flatnonzero(distance <= cutoff)
        if len(rows) > PREFILTER:
            full = np.bitwise_count(self.codes[rows] ^ query).sum(axis=1, dtype=np.uint16)
            rows = rows[np.argpartition(full, PREFILTER)[:PREFILTER]]
        return rows

    def _grow(self) -> None:
        rows = 2 * len(self.vectors)
        self.vectors = _extend(self.vectors, rows)
        self.codes = _extend(self.codes, rows)
        self.head = _extend(self.head, rows)
        self.scratch = np.zeros(rows, np.uint64)


def _extend(array: NDArray[Any], rows: int) -> NDArray[Any]:
    """A copy of ``array`` with room for ``rows`` rows (the new ones zero)."""
    bigger = np.zeros((rows, *array.shape[1:]), array.dtype)
    bigger[: len(array)] = array
    return bigger


class VectorIndex:
    """Per-scope nearest neighbours by cosine similarity, bounded to ``max_entries`` (oldest out)."""

    def __init__(self, max_entries: int = 10_000, dim: int | None = None) -> None:
        if max_entries < 1 or (dim is not None and dim < 1):
            raise ValueError("a vector index needs max_entries >= 1 and dim >= 1")
        self.max_entries = max_entries
        self.dim = dim  # None: taken from the first vector added
        self._scopes: dict[str, _Scope] = {}
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._order)

    def add(self, scope: str, key: str, vector: Vector, text: str) -> None:
        """Index ``key``'s vector in ``scope`` (replacing an earlier one); evict the oldest if full."""
        v = normalise(vector)
        dim = self.dim = self.dim or len(v)
        if v.shape != (dim,):
            raise ValueError(f"vector has {v.shape[0]} dimensions, the index {dim}")
        entries = self._scopes.get(scope)
        if entries is None:
            entries = self._scopes[scope] = _Scope(dim)
        entries.add(key, v, text)
        self._order.pop((scope, key), None)
        self._order[(scope, key)] = None
        while len(self._order) > self.max_entries:
            self.remove(*next(iter(self._order)))

    def search(self, scope: str, vector: Vector, k: int = 4) -> list[tuple[str, float, str]]:
        """Up to ``k`` (key, cosine similarity, text) in ``scope``, most similar first."""
        entries = self._scopes.get(scope)
        if entries is None or len(entries) == 0 or k < 1:
            return []
        return entries.search(normalise(vector), k)

    def remove(self, scope: str, key: str) -> None:
        """Forget ``key`` in ``scope`` (no error if it is not there)."""
        self._order.pop((scope, key), None)
        entries = self._scopes.get(scope)
        if entries is None:
            return
        entries.remove(key)
        if len(entries) == 0:
            del self._scopes[scope]
