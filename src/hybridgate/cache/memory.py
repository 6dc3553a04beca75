"""The store contract every cache store keeps, and the in-process store (the default).

A store maps an exact key to an entry's bytes, with a time to live, and keeps the semantic
cache's notes: for each entry a semantic route may match, the scope, the last user turn and its
embedding. A replica indexes its own notes as it writes them and learns other replicas' from
``notes_since``, so a shared store (SQLite file, Redis) gives every replica the same semantic
cache. Stores raise ``StoreUnavailableError`` (or let their driver's error through) and never
decide what a failure means: the ``ResponseCache`` above them degrades to a miss.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SemanticNote:
    """What the semantic index needs to know about one entry, without its answer."""

    key: str
    scope: str
    query: str
    vector: bytes  # the embedding as ``cache.vectors.to_bytes`` packs it (float16)


class CacheStore(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None: ...

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """``get`` for many keys in one round trip, in order (the embeddings cache's lookups)."""
        ...

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: float) -> None:
        """``put`` for many entries in one round trip; no semantic notes."""
        ...

    async def notes_since(self) -> list[SemanticNote]:
        """Semantic notes written by any replica since the last call (possibly our own)."""
        ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """An LRU dict bounded by entry count and total bytes; entries expire after their TTL."""

    name = "memory"

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, value)
        self._bytes += len(value)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: float) -> None:
        for key, value in items:
            await self.put(key, value, ttl_s, None)

    async def notes_since(self) -> list[SemanticNote]:
        return []  # one process: the cache indexed its own notes when it wrote them

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= len(value)
