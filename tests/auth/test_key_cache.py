"""The key store's cache (auth/key_cache.py) on its own, then PostgresKeyStore under load against a
real PostgreSQL server (Debian's, the session's, on loopback: tests/conftest.py): a busy pool is not an
outage, unknown ids are remembered briefly and apart, and a flood of them keeps real keys' copies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from hybridgate.auth.key_cache import MAX_UNKNOWN, UNKNOWN_TTL_S, KeyCache
from hybridgate.auth.pg_keys import CACHE_TTL_S, PostgresKeyStore
from hybridgate.auth.records import KeyRecord
from hybridgate.auth.store import INVALID, StoredKey
from hybridgate.errors import AuthenticationError, KeyStoreUnavailableError
from tests.auth.clock import FakeClock
from tests.postgres_server import execute, run_postgres

PEPPER = b"test-pepper-0123456789"


def stored(key_id: str) -> StoredKey:
    return StoredKey("h" * 64, KeyRecord(key_id=key_id, environment="prod", name=key_id, created_at=0.0))


def test_known_keys_are_a_bounded_lru_not_cleared_wholesale() -> None:
    cache = KeyCache(ttl_s=5, stale_ttl_s=300, max_keys=3)
    for n, key_id in enumerate("abc"):
        cache.put(key_id, stored(key_id), now=n)
    assert cache.fresh("a", now=3) is not None  # touched: now the most recently used
    cache.put("d", stored("d"), now=3)
    assert len(cache) == 3 and cache.stale("b", now=3) is None  # only the least recently used went
    assert all(cache.stale(k, now=3) is not None for k in "acd")


def test_unknown_ids_are_remembered_briefly_and_never_evict_known_keys() -> None:
    cache = KeyCache(ttl_s=5, stale_ttl_s=300, unknown_ttl_s=1, max_keys=2, max_unknown=4)
    cache.put("real", stored("real"), now=0)
    for n in range(100):  # a flood of made-up ids
        cache.put(f"fake{n}", None, now=0)
    hit = cache.fresh("fake99", now=0.5)
    assert hit is not None and hit.stored is None  # a known miss: no query needed
    assert cache.fresh("fake0", now=0.5) is None  # beyond the bound of 4: forgotten
    assert cache.fresh("fake99", now=1) is None  # past its short TTL: ask again
    assert cache.stale("real", now=200) == stored("real")  # still there for an outage
    cache.put("fake99", stored("fake99"), now=2)  # created since: the miss is forgotten
    hit = cache.fresh("fake99", now=2)
    assert hit is not None and hit.stored == stored("fake99")


async def test_a_busy_pool_gets_per_request_503s_but_is_not_an_outage(postgres_dsn: str) -> None:
    clock = FakeClock()
    store = PostgresKeyStore(postgres_dsn, PEPPER, clock=clock, pool_size=1, timeout_s=5.0, wait_s=0.05)
    await store.start()
    keys = [store.create(environment="prod", name=f"k{n}")[0] for n in range(20)]
    await store.verify(keys[0])
    clock.advance(CACHE_TTL_S + 1)  # keys[0] is now only a stale copy
    blocker = await asyncpg.connect(postgres_dsn)
    try:
        async with blocker.transaction():  # every read of api_keys waits: the one connection is held
            await blocker.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
            burst = [asyncio.create_task(store.verify(key)) for key in keys[1:]]
            await asyncio.sleep(0.3)
            assert await store.verify(keys[0]) is not None  # no slot free: its stale copy serves
            assert store.degraded_reason() is None
        results = await asyncio.gather(*burst, return_exceptions=True)
    finally:
        await blocker.close()
    busy = [r for r in results if isinstance(r, KeyStoreUnavailableError)]
    assert len(busy) == len(keys) - 2 and "busy" in busy[0].message  # all but the one holding it
    assert isinstance(results[0], KeyRecord)
    assert store.degraded_reason() is None  # never marked degraded, so nothing waits out retry_s
    assert all([await store.verify(key) for key in keys])
    await store.aclose()


async def test_an_unknown_id_is_remembered_for_a_second_then_asked_again(postgres_dsn: str) -> None:
    clock = FakeClock()
    store = PostgresKeyStore(postgres_dsn, PEPPER, clock=clock, retry_s=0.0)
    await store.start()
    key, record = store.create(environment="prod", name="app1")
    await execute(postgres_dsn, "CREATE TABLE saved AS SELECT * FROM api_keys; DELETE FROM api_keys")
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await store.verify(key)
    await execute(postgres_dsn, "INSERT INTO api_keys SELECT * FROM saved")  # as if created elsewhere now
    clock.advance(UNKNOWN_TTL_S - 0.1)
    with pytest.raises(AuthenticationError) as caught:
        await store.verify(key)  # the remembered miss: no query
    assert caught.value.message == INVALID
    clock.advance(0.1)
    assert await store.verify(key) == record
    await store.aclose()


async def test_a_flood_of_unknown_ids_keeps_the_stale_copies_an_outage_needs(
    clock: FakeClock, postgres_template: Path
) -> None:
    with run_postgres(postgres_template) as own:
        store = PostgresKeyStore(own.dsn, PEPPER, clock=clock, retry_s=0.0)
        await store.start()
        key, record = store.create(environment="prod", name="seen")
        await store.verify(key)
        for n in range(MAX_UNKNOWN + 200):
            with pytest.raises(AuthenticationError):
                await store.verify(f"hg-prod-{n:08d}" + "x" * 35)
        own.stop()
        clock.advance(CACHE_TTL_S + 1)
        assert await store.verify(key) == record  # served from its stale copy through the outage
        assert store.degraded_reason() is not None
        await store.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
