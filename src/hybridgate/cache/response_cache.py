"""The response cache the pipeline consults: plan, look up, store; a failing store is a miss.

``plan`` decides from config and the caller's directive whether a request may read and write the
cache; ``get`` tries the exact key, then (on semantic routes) the nearest earlier question in the
same scope that the matcher accepts; ``put`` stores a finished answer off the response path. Any
store failure (Redis down, a corrupt row) is logged once per outage, reported by
``degraded_reason`` for ``/healthz``, and served as a miss: the cache never fails a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from hybridgate.cache.entry import CachedAnswer
from hybridgate.cache.keys import CacheKeys, Directive, cache_keys, is_deterministic
from hybridgate.cache.memory import CacheStore, SemanticNote
from hybridgate.cache.vectors import from_bytes, to_bytes
from hybridgate.config import CacheConfig
from hybridgate.types import ChatRequest, ChatResponse, Decision, RequestContext

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
CacheResult = Literal["hit", "semantic-hit", "miss"]


class Matcher(Protocol):
    def embed(self, text: str) -> Vector: ...

    def accept(self, query: str, candidate: str, similarity: float) -> bool: ...


class Index(Protocol):
    def add(self, scope: str, key: str, vector: Vector, text: str) -> None: ...

    def search(self, scope: str, vector: Vector, k: int = 4) -> list[tuple[str, float, str]]: ...

    def remove(self, scope: str, key: str) -> None: ...


@dataclass
class Lookup:
    """One request's dealings with the cache."""

    keys: CacheKeys
    read: bool
    semantic: bool
    vector: Vector | None = None  # the last user turn's embedding, once computed


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
        self._matcher = matcher
        self._index = index
        self._degraded: str | None = None
        self._writes: set[asyncio.Task[None]] = set()

    @property
    def store_name(self) -> str:
        return self._store.name

    def degraded_reason(self) -> str | None:
        return self._degraded

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
        semantic = self._matcher is not None and decision.route in self._config.semantic_routes
        return Lookup(cache_keys(request, decision, ctx), read=directive != "no-cache", semantic=semantic)

    async def get(self, lookup: Lookup) -> Hit | None:
        if not lookup.read:
            return None
        try:
            answer = await self._load(lookup.keys.exact)
            if answer is not None:
                return Hit(answer, "hit")
            return await self._nearest(lookup) if lookup.semantic else None
        except Exception as exc:  # any store failure is a miss, never a failed request
            self._failed("lookup", exc)
            return None

    def put(self, lookup: Lookup, response: ChatResponse, backend: str, model: str, cost_usd: float) -> None:
        """Store a finished answer in the background; oversize or unfinished answers are skipped."""
        choices = response.body.get("choices") or []
        if not choices or choices[0].get("finish_reason") not in ("stop", "tool_calls", "length"):
            return
        task = asyncio.get_running_loop().create_task(self._put(lookup, response, backend, model, cost_usd))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def drain(self) -> None:
        """Wait for writes in flight (shutdown, tests)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self._store.aclose()

    async def _put(
        self, lookup: Lookup, response: ChatResponse, backend: str, model: str, cost_usd: float
    ) -> None:
        note = self._note(lookup)
        answer = CachedAnswer(
            body=response.body,
            backend=backend,
            model=model,
            cost_usd=cost_usd,
            created_at=time.time(),
        )
        data = answer.to_bytes()
        if len(data) > self._config.max_entry_bytes:
            return
        try:
            await self._store.put(lookup.keys.exact, data, self._config.ttl_s, note)
        except Exception as exc:
            self._failed("write", exc)
            return
        self._recovered()
        if note is not None and self._index is not None and lookup.vector is not None:
            self._index.add(note.scope, note.key, lookup.vector, note.query)

    async def _load(self, key: str) -> CachedAnswer | None:
        data = await self._store.get(key)
        self._recovered()
        return CachedAnswer.from_bytes(data) if data is not None else None

    async def _nearest(self, lookup: Lookup) -> Hit | None:
        assert self._matcher is not None and self._index is not None
        await self._learn()
        query = lookup.keys.query
        lookup.vector = self._matcher.embed(query)
        for key, similarity, text in self._index.search(lookup.keys.scope, lookup.vector):
            if not self._matcher.accept(query, text, similarity):
                continue
            answer = await self._load(key)
            if answer is not None:
                return Hit(answer, "semantic-hit")
            self._index.remove(lookup.keys.scope, key)  # expired or evicted from the store
        return None

    async def _learn(self) -> None:
        """Index the semantic notes other replicas (or earlier runs) wrote to the shared store."""
        assert self._index is not None
        for note in await self._store.notes_since():
            self._index.add(note.scope, note.key, from_bytes(note.vector), note.query)

    def _note(self, lookup: Lookup) -> SemanticNote | None:
        if not lookup.semantic or self._matcher is None:
            return None
        if lookup.vector is None:
            lookup.vector = self._matcher.embed(lookup.keys.query)
        keys = lookup.keys
        return SemanticNote(keys.exact, keys.scope, keys.query, to_bytes(lookup.vector))

    def _failed(self, what: str, exc: Exception) -> None:
        reason = f"cache store {self._store.name} failed on {what}: {type(exc).__name__}: {exc}"
        if self._degraded is None:
            logger.warning("%s; serving without the cache until it recovers", reason)
        self._degraded = reason

    def _recovered(self) -> None:
        if self._degraded is not None:
            logger.warning("cache store %s recovered", self._store.name)
            self._degraded = None
