"""The cache in Redis: one cache for every replica.

Entries are plain strings with a TTL (``SET key value PX ttl``), so they leave on their own. The
Redis that also holds rate limits must run ``noeviction`` (an evicted spend key would reset a
budget): when it is full, cache writes fail and become misses. Semantic notes go to one capped stream
(``XADD ... MAXLEN ~ max_entries``) that every replica reads from where it last stopped, so a
question cached by one replica can be matched by another. A replica starts reading the stream
from its beginning, so it learns what was cached before it started.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from hybridgate.cache.memory import SemanticNote

NOTES_PER_READ = 1000


class RedisStore:
    name = "redis"

    def __init__(self, client: Redis, key_prefix: str, max_entries: int) -> None:
        self._redis = client
        self._prefix = f"{key_prefix}cache:"
        self._stream = f"{key_prefix}cache-notes"
        self._max_entries = max_entries
        self._last_id = "0-0"

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._prefix + key, value, px=max(int(ttl_s * 1000), 1))
        if note is not None:
            fields: dict[Any, Any] = {
                "key": key,
                "scope": note.scope,
                "query": note.query,
                "vector": note.vector,
            }
            pipe.xadd(self._stream, fields, maxlen=self._max_entries, approximate=True)
        await pipe.execute()

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        values = await self._redis.mget([self._prefix + key for key in keys]) if keys else []
        return [value if isinstance(value, bytes) else None for value in values]

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: float) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, value in items:
            pipe.set(self._prefix + key, value, px=max(int(ttl_s * 1000), 1))
        await pipe.execute()

    async def notes_since(self) -> list[SemanticNote]:
        notes: list[SemanticNote] = []
        while True:
            batch: Any = await self._redis.xread({self._stream: self._last_id}, count=NOTES_PER_READ)
            entries: list[tuple[bytes, dict[bytes, bytes]]] = batch[0][1] if batch else []
            for entry_id, fields in entries:
                self._last_id = _text(entry_id)
                notes.append(_note(fields))
            if len(entries) < NOTES_PER_READ:
                return notes

    async def aclose(self) -> None:
        await self._redis.aclose()


def _note(fields: dict[bytes, bytes]) -> SemanticNote:
    return SemanticNote(
        key=_text(fields[b"key"]),
        scope=_text(fields[b"scope"]),
        query=_text(fields[b"query"]),
        vector=fields[b"vector"],
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
