"""The replica pool's bookkeeping, over plain data: least busy, round-robin ties, cooldown, waiting,
spill-over. No servers here: the pool's health polling and the real HTTP path are driven end to end
in tests/backends/test_local_tier.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from hybridgate.backends.replicas import ReplicaPool
from hybridgate.config import OpenAICompatBackend
from hybridgate.errors import BackendOverloadedError, UpstreamUnavailableError

URLS = ["http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(clock: Clock | None = None, urls: list[str] = URLS, **settings: Any) -> ReplicaPool:
    config = OpenAICompatBackend.model_validate(
        {"type": "openai_compat", "model": "m", "base_url": urls[0], "replicas": urls[1:], **settings}
    )
    return ReplicaPool("local", config, clock or Clock())


def test_urls_for_chat_and_health() -> None:
    replica = pool(health_path="/health").replicas[1]
    assert replica.url == "http://b:8000/v1/chat/completions"
    assert replica.health_url == "http://b:8000/health"  # the path replaces /v1


async def test_idle_servers_take_turns() -> None:
    p = pool()
    names = []
    for _ in range(6):
        replica = await p.acquire()
        names.append(replica.base_url[7])
        p.release(replica)
    assert names == ["a", "b", "c", "a", "b", "c"]


async def test_the_least_busy_server_gets_the_request() -> None:
    p = pool()
    a, b, c = await p.acquire(), await p.acquire(), await p.acquire()
    p.release(b)
    assert await p.acquire() is b  # a and c each still hold one
    p.release(a)
    p.release(c)
    assert (await p.acquire()) in (a, c)


async def test_a_server_that_refused_is_skipped_until_its_cooldown_ends() -> None:
    clock = Clock()
    p = pool(clock, replica_cooldown_s=10)
    b = p.replicas[1]
    assert p.refused(b, [b])  # a and c are left
    seen = set()
    for _ in range(4):
        replica = await p.acquire()
        seen.add(replica.base_url)
        p.release(replica)
    assert b.base_url not in seen
    clock.now += 10
    taken = [await p.acquire() for _ in range(3)]
    assert b in taken


async def test_a_single_server_is_never_put_aside() -> None:
    p = pool(urls=URLS[:1])
    only = p.replicas[0]
    assert not p.refused(only, [only])  # nothing else to try: the caller reports the error
    assert await p.acquire() is only  # and the next request still tries it


async def test_no_usable_server_fails_fast() -> None:
    p = pool()
    for replica in p.replicas:
        replica.healthy = False
    with pytest.raises(
        UpstreamUnavailableError, match=r"no healthy server: server 1 failed its health check"
    ) as caught:
        await p.acquire()
    assert "http" not in str(caught.value)  # the servers' URLs are for the log, not the caller


async def test_full_servers_make_requests_wait_in_order() -> None:
    p = pool(urls=URLS[:2], replica_max_in_flight=1, spill_queue_depth=2)
    a, b = await p.acquire(), await p.acquire()
    first = asyncio.create_task(p.acquire())
    second = asyncio.create_task(p.acquire())
    await asyncio.sleep(0)
    assert p.waiting == 2 and not first.done()
    p.release(b)
    assert await first is b
    p.release(a)
    assert await second is a
    assert p.waiting == 0


async def test_spill_when_the_queue_is_full() -> None:
    p = pool(urls=URLS[:1], replica_max_in_flight=1, spill_queue_depth=1)
    held = await p.acquire()
    waiter = asyncio.create_task(p.acquire())
    await asyncio.sleep(0)
    with pytest.raises(BackendOverloadedError, match=r"saturated.*1 in flight, 1 waiting") as caught:
        await p.acquire()
    assert caught.value.retry_after_s == 1.0
    p.release(held)
    assert await waiter is held


async def test_queue_depth_zero_spills_as_soon_as_every_slot_is_taken() -> None:
    p = pool(urls=URLS[:2], replica_max_in_flight=2, spill_queue_depth=0)
    for _ in range(4):
        await p.acquire()
    with pytest.raises(BackendOverloadedError):
        await p.acquire()


async def test_a_cancelled_waiter_passes_its_wakeup_on() -> None:
    p = pool(urls=URLS[:1], replica_max_in_flight=1)
    held = await p.acquire()
    quitter = asyncio.create_task(p.acquire())
    patient = asyncio.create_task(p.acquire())
    await asyncio.sleep(0)
    p.release(held)  # wakes the quitter, which is cancelled before it runs
    quitter.cancel()
    assert await patient is held
    assert held.in_flight == 1


async def test_spill_while_busy_and_slow_but_not_once_idle() -> None:
    p = pool(spill_latency_ms=500)
    slow = await p.acquire()
    p.release(slow, first_byte_ms=2000)
    busy = await p.acquire()  # idle pool: its average is stale, let one through
    with pytest.raises(BackendOverloadedError, match="time to first byte 2000 ms > 500 ms"):
        await p.acquire()
    p.release(busy, first_byte_ms=10)
    assert p.latency_ms is not None and p.latency_ms < 2000  # a moving average, not the last sample


async def test_a_newcomer_queues_behind_waiters_instead_of_taking_a_freed_slot() -> None:
    p = pool(urls=URLS[:1], replica_max_in_flight=1, spill_queue_depth=1)
    held = await p.acquire()
    waiter = asyncio.create_task(p.acquire())
    await asyncio.sleep(0)
    p.release(held)  # the slot is free, but the waiter was first
    with pytest.raises(BackendOverloadedError):
        await p.acquire()  # the queue (depth 1) is still full until the waiter has run
    assert await waiter is held


def test_a_health_path_is_absolute() -> None:
    with pytest.raises(ValidationError, match="health_path"):
        pool(health_path="health")
