"""Both key stores' in-process cache: known keys in a bounded LRU, unknown ids apart.

Known keys (a row was found) are fresh for ``ttl_s`` and kept up to ``stale_ttl_s`` so they can be
served while PostgreSQL is down (SQLite keeps none stale); at ``max_keys`` the least recently
used one is dropped, never the whole cache. Unknown ids (no row) go to a separate, small bounded
cache with a short TTL, so a flood of made-up key ids evicts only other made-up ids, never a real
key's copy, and a key created on another replica (or by the CLI) is found within
``unknown_ttl_s``. Imports only ``auth.store``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

from hybridgate.auth.store import StoredKey

MAX_KEYS = 10_000
MAX_UNKNOWN = 1_024
UNKNOWN_TTL_S = 1.0
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Hit:
    """A fresh answer from the cache: the stored key, or None for an id known to be unknown."""

    stored: StoredKey | None


class KeyCache:
    def __init__(
        self,
        *,
        ttl_s: float,
        stale_ttl_s: float,
        unknown_ttl_s: float = UNKNOWN_TTL_S,
        max_keys: int = MAX_KEYS,
        max_unknown: int = MAX_UNKNOWN,
    ) -> None:
        self._ttl_s = ttl_s
        self._stale_ttl_s = stale_ttl_s
        self._unknown_ttl_s = unknown_ttl_s
        self._max_keys = max_keys
        self._max_unknown = max_unknown
        self._known: OrderedDict[str, tuple[StoredKey, float]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def fresh(self, key_id: str, now: float) -> Hit | None:
        """The cached answer if still fresh, else None (ask PostgreSQL)."""
        known = self._known.get(key_id)
        if known is not None and now - known[1] < self._ttl_s:
            self._known.move_to_end(key_id)
            return Hit(known[0])
        missed_at = self._unknown.get(key_id)
        if missed_at is not None and now - missed_at < self._unknown_ttl_s:
            return Hit(None)
        return None

    def stale(self, key_id: str, now: float) -> StoredKey | None:
        """A known key fetched within ``stale_ttl_s``: what an outage may still serve."""
        known = self._known.get(key_id)
        if known is None or now - known[1] >= self._stale_ttl_s:
            return None
        self._known.move_to_end(key_id)
        return known[0]

    def put(self, key_id: str, stored: StoredKey | None, now: float) -> None:
        if stored is None:
            self._known.pop(key_id, None)
            self._remember(self._unknown, key_id, now, self._max_unknown)
        else:
            self._unknown.pop(key_id, None)
            self._remember(self._known, key_id, (stored, now), self._max_keys)

    def drop(self, key_id: str) -> None:
        self._known.pop(key_id, None)
        self._unknown.pop(key_id, None)

    @staticmethod
    def _remember(entries: OrderedDict[str, V], key_id: str, value: V, bound: int) -> None:
        entries[key_id] = value
        entries.move_to_end(key_id)
        while len(entries) > bound:
            entries.popitem(last=False)  # the least recently used
