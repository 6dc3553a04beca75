"""The response cache the pipeline consults: plan, look up, store; a failing store is a miss.

``plan`` decides from config and the caller's directive whether a request may read and write the
cache; ``get`` tries the exact key, then (on semantic routes) the nearest earlier question in the
same scope that the matcher accepts (``neighbours.py``); ``put`` stores a finished answer off the
response path, with a bounded number of writes in flight. Every store call has a deadline. A
store that fails (Redis down, a full disk) is logged once per outage, reported by
``degraded_reason`` for ``/healthz``, and served as a miss; a corrupt entry is a miss that the
next answer overwrites. The cache never fails a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from hybridgate.cache.entry import CachedAnswer
from hybridgate.cache.keys import CacheKeys, Directive, cache_keys, is_deterministic
from hybridgate.cache.memory import CacheStore
from hybridgate.cache.neighbours import Index, Matcher, Neighbours
from hybridgate.config import CacheConfig
from hybridgate.errors import StoreUnavailableError
from hybridgate.types import ChatRequest, ChatResponse, Decision, RequestContext

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
CacheResult = Literal["hit", "semantic-hit", "miss"]
MAX_WRITES_IN_FLIGHT = 256  # beyond this a slow store loses writes (misses later), not memory
T = TypeVar("T")


@dataclass
class Lookup:
    """One request's dealings with the cache."""

    keys: CacheKeys
    read: bool
    semantic: bool
    vector: Vector | None = None  # the last user turn's embedding, once computed
    threshold: float | None = None  # the route's semantic_thresholds entry; None: semantic_threshold


@dataclass(frozen=True, slots=True)
class Hit:
    answer: CachedAnswer
    result: CacheResult


class ResponseCache:
    def __init__(
        self,
        config: CacheConfig,
        store: CacheStore,
        matcher: Matcher | None = None,
        index: Index | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._neighbours = (
            Neighbours(matcher, index, store) if matcher is not None and index is not None else None
        )
        self._failing: dict[str, str] = {}  # "read" / "write": why, while the store fails
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def store_name(self) -> str:
        return self._store.name

    def degraded_reason(self) -> str | None:
        return "; ".join(self._failing.values()) or None

    def plan(
        self, request: ChatRequest, decision: Decision, ctx: RequestContext, directive: Directive, pii: bool
    ) -> Lookup | None:
        """None when this request must neither read nor write the cache."""
        mode = self._config.routes.get(decision.route, self._config.mode)
        if directive == "no-store" or mode == "off" or ctx.shadow_of is not None:
            return None
        if mode == "deterministic" and directive != "force" and not is_deterministic(request):
            return None
        if pii and not self._config.cache_pii:
            return None
        semantic = self._neighbours is not None and decision.route in self._config.semantic_routes
        threshold = self._config.semantic_thresholds.get(decision.route)
        keys = cache_keys(request, decision, ctx)
        return Lookup(keys, read=directive != "no-cache", semantic=semantic, threshold=threshold)

    async def get(self, lookup: Lookup) -> Hit | None:
        if not lookup.read:
            return None
        try:
            answer = await self._load(lookup.keys.exact)
            if answer is not None:
                return Hit(answer, "hit")
            if lookup.semantic and self._neighbours is not None:
                near = await self._neighbours.nearest(lookup, self._load)
                return Hit(near, "semantic-hit") if near is not None else None
        except Exception as exc:  # any store failure is a miss, never a failed request
            self._failed("read", exc)
        return None

    def put(self, lookup: Lookup, response: ChatResponse, backend: str, model: str, cost_usd: float) -> None:
        """Store a finished answer in the background; oversize or unfinished answers are skipped."""
        choices = response.body.get("choices") or []
        if not choices or choices[0].get("finish_reason") not in ("stop", "tool_calls", "length"):
            return
        if len(self._writes) >= MAX_WRITES_IN_FLIGHT:
            return
        task = asyncio.get_running_loop().create_task(self._put(lookup, response, backend, model, cost_usd))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def drain(self, timeout_s: float | None = None) -> None:
        """Wait for writes in flight (shutdown, tests); at shutdown, not longer than ``timeout_s``."""
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=timeout_s)

    async def start(self) -> None:
        if self._neighbours is not None:
            await self._neighbours.start()

    async def aclose(self) -> None:
        await self.drain(timeout_s=2.0)
        if self._neighbours is not None:
            await self._neighbours.aclose()
        await self._store.aclose()

    async def _put(
        self, lookup: Lookup, response: ChatResponse, backend: str, model: str, cost_usd: float
    ) -> None:
        answer = CachedAnswer(response.body, backend, model, cost_usd, created_at=time.time())
        data = answer.to_bytes()
        if len(data) > self._config.max_entry_bytes:
            return
        try:
            note = self._neighbours.note(lookup) if lookup.semantic and self._neighbours else None
            await self._deadline(self._store.put(lookup.keys.exact, data, self._config.ttl_s, note))
            if note is not None and self._neighbours is not None and lookup.vector is not None:
                self._neighbours.remember(note, lookup.vector)
        except Exception as exc:
            self._failed("write", exc)
            return
        self._recovered("write")

    async def _load(self, key: str) -> CachedAnswer | None:
        data = await self._deadline(self._store.get(key))
        self._recovered("read")
        if data is None:
            return None
        try:
            return CachedAnswer.from_bytes(data)
        except StoreUnavailableError as exc:  # one bad entry, not a failing store
            logger.warning("cache entry %s is corrupt (%s); serving a miss", key[:12], exc.message)
            return None

    async def _deadline(self, call: Awaitable[T]) -> T:
        return await asyncio.wait_for(call, self._config.timeout_s)

    def _failed(self, what: str, exc: Exception) -> None:
        reason = f"cache store {self._store.name} failed on {what}: {type(exc).__name__}: {exc}"
        if what not in self._failing:
            logger.warning("%s; serving without the cache until it recovers", reason)
        self._failing[what] = reason

    def _recovered(self, what: str) -> None:
        if self._failing.pop(what, None) is not None:
            logger.warning("cache store %s recovered (%s)", self._store.name, what)
