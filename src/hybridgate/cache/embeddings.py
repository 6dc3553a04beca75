"""The per-text embeddings cache: the same tenant, model, dimensions and text -> the same vector.

A corpus re-embedded unchanged costs nothing: each input is looked up on its own, so a request
can mix hits and misses and only the misses go upstream. Entries live in the response cache's
store (memory, SQLite or Redis) under their own keys, as the float32 bytes that were served, so a
hit returns the vector bit for bit, with the tokens the text cost when it was first embedded.
Like the response cache it never fails a request: a failing or slow store (past ``timeout_s``)
is a miss, logged once per outage and reported by ``degraded_reason``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hybridgate.cache.memory import CacheStore

logger = logging.getLogger(__name__)

MAX_WRITES_IN_FLIGHT = 64  # batches being written; past this a slow store loses writes, not memory
_HEADER = struct.Struct("<I")  # the tokens the text cost


@dataclass(frozen=True, slots=True)
class CachedVector:
    vector: NDArray[np.float32]
    tokens: int


def vector_key(tenant: str, model: str, dimensions: int | None, text: str) -> str:
    """The entry's key; ``text`` is the input's ``cache_text`` (texts and token ids never collide)."""
    digest = hashlib.sha256("\0".join((tenant, model, str(dimensions or ""), text)).encode()).hexdigest()
    return "emb:" + digest


def to_entry(vector: NDArray[np.float32], tokens: int) -> bytes:
    return _HEADER.pack(min(max(tokens, 0), 2**32 - 1)) + np.asarray(vector, dtype="<f4").tobytes()


def from_entry(data: bytes) -> CachedVector | None:
    """The entry ``to_entry`` wrote, or None when it is not one (a corrupt entry is a miss)."""
    if len(data) <= _HEADER.size or (len(data) - _HEADER.size) % 4:
        return None
    (tokens,) = _HEADER.unpack_from(data)
    return CachedVector(np.frombuffer(data, dtype="<f4", offset=_HEADER.size).astype(np.float32), tokens)


class VectorCache:
    def __init__(self, store: CacheStore, ttl_s: float, timeout_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._failing: dict[str, str] = {}
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def writes_in_flight(self) -> int:
        return len(self._writes)

    def degraded_reason(self) -> str | None:
        return "; ".join(self._failing.values()) or None

    async def get_many(self, keys: Sequence[str]) -> list[CachedVector | None]:
        """One entry or None per key, in order; a failing store answers all misses."""
        try:
            found = await asyncio.wait_for(self._store.get_many(list(keys)), self._timeout_s)
        except Exception as exc:  # any store failure is a miss, never a failed request
            self._failed("read", exc)
            return [None] * len(keys)
        self._recovered("read")
        return [from_entry(data) if data is not None else None for data in found]

    def put_many(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """Store new vectors off the response path."""
        if not entries or len(self._writes) >= MAX_WRITES_IN_FLIGHT:
            return
        task = asyncio.get_running_loop().create_task(self._put_many(entries))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def drain(self, timeout_s: float | None = None) -> None:
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=timeout_s)

    async def aclose(self) -> None:
        await self.drain(timeout_s=2.0)
        await self._store.aclose()

    async def _put_many(self, entries: Sequence[tuple[str, bytes]]) -> None:
        try:
            await asyncio.wait_for(self._store.put_many(list(entries), self._ttl_s), self._timeout_s * 4)
        except Exception as exc:
            self._failed("write", exc)
            return
        self._recovered("write")

    def _failed(self, what: str, exc: Exception) -> None:
        reason = f"embeddings cache ({self._store.name}) failed on {what}: {type(exc).__name__}: {exc}"
        if what not in self._failing:
            logger.warning("%s; embedding without the cache until it recovers", reason)
        self._failing[what] = reason

    def _recovered(self, what: str) -> None:
        if self._failing.pop(what, None) is not None:
            logger.warning("embeddings cache (%s) recovered (%s)", self._store.name, what)
