"""The semantic side of the cache: embed the question, find an earlier one that means the same.

``Neighbours`` owns the matcher (embedding + guards) and the in-memory index. The index learns
what other replicas (or earlier runs) cached from the store's notes in one background task,
a chunk at a time so the event loop is never held for long; a lookup never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from hybridgate.cache.entry import CachedAnswer
from hybridgate.cache.memory import CacheStore, SemanticNote
from hybridgate.cache.vectors import from_bytes, to_bytes

if TYPE_CHECKING:
    from hybridgate.cache.response_cache import Lookup

logger = logging.getLogger(__name__)

Vector = NDArray[np.float32]
LEARN_EVERY_S = 0.2  # how soon a question cached by another replica can be matched here
LEARN_CHUNK = 500  # notes indexed between two yields to the event loop


class Matcher(Protocol):
    def embed(self, text: str) -> Vector: ...

    def accept(
        self, query: str, candidate: str, similarity: float, threshold: float | None = None
    ) -> bool: ...


class Index(Protocol):
    def add(self, scope: str, key: str, vector: Vector, text: str) -> None: ...

    def search(self, scope: str, vector: Vector, k: int = 4) -> list[tuple[str, float, str]]: ...

    def remove(self, scope: str, key: str) -> None: ...


class Neighbours:
    def __init__(self, matcher: Matcher, index: Index, store: CacheStore) -> None:
        self._matcher = matcher
        self._index = index
        self._store = store
        self._learner: asyncio.Task[None] | None = None

    async def nearest(
        self, lookup: Lookup, load: Callable[[str], Awaitable[CachedAnswer | None]]
    ) -> CachedAnswer | None:
        """The cached answer of the closest accepted question in the lookup's scope, if any."""
        self._start_learning()
        query = lookup.keys.query
        lookup.vector = self._matcher.embed(query)
        for key, similarity, text in self._index.search(lookup.keys.scope, lookup.vector):
            if not self._matcher.accept(query, text, similarity, lookup.threshold):
                continue
            answer = await load(key)
            if answer is not None and not _calls_tools(answer):
                return answer
            if answer is None:
                self._index.remove(lookup.keys.scope, key)  # expired or evicted from the store
        return None

    def note(self, lookup: Lookup) -> SemanticNote:
        """What the store keeps beside the entry, so other replicas can index the question."""
        if lookup.vector is None:
            lookup.vector = self._matcher.embed(lookup.keys.query)
        keys = lookup.keys
        return SemanticNote(keys.exact, keys.scope, keys.query, to_bytes(lookup.vector))

    async def start(self) -> None:
        """Index what the store already holds before serving, then keep learning."""
        await self._learn_once()
        self._start_learning()

    def remember(self, note: SemanticNote, vector: Vector) -> None:
        self._index.add(note.scope, note.key, vector, note.query)

    async def aclose(self) -> None:
        if self._learner is not None:
            self._learner.cancel()
            await asyncio.gather(self._learner, return_exceptions=True)

    def _start_learning(self) -> None:
        if self._learner is None or self._learner.done():
            self._learner = asyncio.get_running_loop().create_task(self._learn_forever())

    async def _learn_forever(self) -> None:
        while True:
            await self._learn_once()
            await asyncio.sleep(LEARN_EVERY_S)

    async def _learn_once(self) -> None:
        try:
            notes = await self._store.notes_since()
        except Exception as exc:  # the store is down: the lookups say so; try again later
            logger.debug("cache notes unavailable: %s", exc)
            return
        for start in range(0, len(notes), LEARN_CHUNK):
            for note in notes[start : start + LEARN_CHUNK]:
                self._learn(note)
            await asyncio.sleep(0)

    def _learn(self, note: SemanticNote) -> None:
        try:
            self._index.add(note.scope, note.key, from_bytes(note.vector), note.query)
        except ValueError as exc:  # another embedding size, a torn vector: skip that one note
            logger.warning("cache note %s skipped: %s", note.key[:12], exc)


def _calls_tools(answer: CachedAnswer) -> bool:
    """A tool call acts on the world: "move $5 from A to B" must never be served for "from B to
    A", which a bag-of-words similarity cannot tell apart. Only exact hits replay tool calls."""
    choices = answer.body.get("choices") or [{}]
    return bool((choices[0].get("message") or {}).get("tool_calls"))
