"""ResponseCache: when a request may use the cache, and a failing store served as a miss."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hybridgate.cache import CachedAnswer, MemoryStore, ResponseCache, SemanticNote, replay_chunks
from hybridgate.config import CacheConfig
from hybridgate.types import ChatRequest, ChatResponse, Decision, RequestContext
from hybridgate.wire.assembly import StreamAssembler

DECISION = Decision(route="auto", backends=("local",), rule="default")
CTX = RequestContext(request_id="r1")
BODY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


def chat(**kw: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **kw}
    )


class BrokenStore:
    """A store whose server is gone: every call raises, like a redis client with no server."""

    name = "broken"

    def __init__(self) -> None:
        self.broken = True
        self.inner = MemoryStore(100, 100_000)

    async def get(self, key: str) -> bytes | None:
        if self.broken:
            raise ConnectionError("connection refused")
        return await self.inner.get(key)

    async def put(self, key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None:
        if self.broken:
            raise ConnectionError("connection refused")
        await self.inner.put(key, value, ttl_s, note)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def put_many(self, items: list[tuple[str, bytes]], ttl_s: float) -> None:
        for key, value in items:
            await self.put(key, value, ttl_s, None)

    async def notes_since(self) -> list[SemanticNote]:
        return []

    async def aclose(self) -> None:
        pass


def test_plan_follows_mode_directive_route_and_pii() -> None:
    cache = ResponseCache(CacheConfig(routes={"creative": "off", "faq": "always"}), MemoryStore(10, 10_000))
    creative = Decision(route="creative", backends=("x",), rule="r")
    faq = Decision(route="faq", backends=("x",), rule="r")
    assert cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=False) is not None
    assert cache.plan(chat(temperature=1), DECISION, CTX, "default", pii=False) is None
    assert cache.plan(chat(temperature=1), DECISION, CTX, "force", pii=False) is not None
    assert cache.plan(chat(temperature=1), faq, CTX, "default", pii=False) is not None
    assert cache.plan(chat(temperature=0), creative, CTX, "force", pii=False) is None
    assert cache.plan(chat(temperature=0), DECISION, CTX, "no-store", pii=False) is None
    assert cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=True) is None
    lookup = cache.plan(chat(temperature=0), DECISION, CTX, "no-cache", pii=False)
    assert lookup is not None and not lookup.read
    shadow = RequestContext(request_id="r2", shadow_of="r1")
    assert cache.plan(chat(temperature=0), DECISION, shadow, "default", pii=False) is None


def test_pii_requests_are_cached_when_the_policy_allows_it() -> None:
    cache = ResponseCache(CacheConfig(cache_pii=True), MemoryStore(10, 10_000))
    assert cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=True) is not None


async def test_a_failing_store_is_a_miss_until_it_recovers() -> None:
    store = BrokenStore()
    cache = ResponseCache(CacheConfig(), store)
    lookup = cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=False)
    assert lookup is not None
    assert await cache.get(lookup) is None
    assert "connection refused" in (cache.degraded_reason() or "")
    store.broken = False
    assert await cache.get(lookup) is None and cache.degraded_reason() is None
    cache.put(lookup, ChatResponse(BODY), "local", "m", 0.01)
    await cache.drain()
    hit = await cache.get(lookup)
    assert hit is not None and hit.result == "hit" and hit.answer.cost_usd == 0.01


async def test_corrupt_entry_is_a_miss_that_the_next_answer_overwrites(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore(10, 10_000)
    cache = ResponseCache(CacheConfig(), store)
    lookup = cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=False)
    assert lookup is not None
    await store.put(lookup.keys.exact, b"{not json", 60, None)
    assert await cache.get(lookup) is None
    assert "is corrupt" in caplog.text
    assert cache.degraded_reason() is None  # one bad entry is not a failing store
    cache.put(lookup, ChatResponse(BODY), "local", "m", 0.0)
    await cache.drain()
    assert await cache.get(lookup) is not None


async def test_a_store_that_fails_only_on_writes_stays_degraded_while_reads_work() -> None:
    store = BrokenStore()
    store.broken = False
    cache = ResponseCache(CacheConfig(), store)
    lookup = cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=False)
    assert lookup is not None

    async def full_disk(key: str, value: bytes, ttl_s: float, note: SemanticNote | None) -> None:
        raise OSError("No space left on device")

    store.put = full_disk  # type: ignore[method-assign]
    cache.put(lookup, ChatResponse(BODY), "local", "m", 0.0)
    await cache.drain()
    assert await cache.get(lookup) is None
    assert "No space left" in (cache.degraded_reason() or "")  # a good read does not hide it


async def test_a_store_that_hangs_is_a_miss_after_the_deadline() -> None:
    store = BrokenStore()
    store.broken = False

    async def hang(key: str) -> bytes | None:
        await asyncio.sleep(30)
        return None

    store.get = hang  # type: ignore[method-assign]
    cache = ResponseCache(CacheConfig(timeout_s=0.05), store)
    lookup = cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=False)
    assert lookup is not None
    assert await asyncio.wait_for(cache.get(lookup), 2) is None
    assert "TimeoutError" in (cache.degraded_reason() or "")


async def test_unfinished_and_oversize_answers_are_not_stored() -> None:
    cache = ResponseCache(CacheConfig(max_entry_bytes=1024), MemoryStore(10, 100_000))
    lookup = cache.plan(chat(temperature=0), DECISION, CTX, "default", pii=False)
    assert lookup is not None
    cut = {**BODY, "choices": [{**BODY["choices"][0], "finish_reason": None}]}
    cache.put(lookup, ChatResponse(cut), "local", "m", 0.0)
    huge = {
        **BODY,
        "choices": [{**BODY["choices"][0], "message": {"role": "assistant", "content": "x" * 2000}}],
    }
    cache.put(lookup, ChatResponse(huge), "local", "m", 0.0)
    await cache.drain()
    assert await cache.get(lookup) is None


def test_replayed_chunks_fold_back_into_the_same_completion() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    for message, finish in [
        ({"role": "assistant", "content": "Paris."}, "stop"),
        ({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"),
        ({"role": "assistant", "content": None, "refusal": "I can't help with that."}, "stop"),
        ({"role": "assistant", "content": "42", "reasoning_content": "6 times 7"}, "stop"),
    ]:
        body = {**BODY, "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
        assembler = StreamAssembler()
        for chunk in replay_chunks(ChatResponse(body)):
            assembler.add(chunk)
        folded = assembler.response().body
        assert folded["choices"] == body["choices"] and folded["usage"] == body["usage"]


def test_cached_answer_takes_the_new_request_id() -> None:
    answer = CachedAnswer(body=BODY, backend="local", model="m", cost_usd=0.0, created_at=0.0)
    again = CachedAnswer.from_bytes(answer.to_bytes())
    assert again == answer
    assert again.response("req_9").body["id"] == "chatcmpl-req_9"
