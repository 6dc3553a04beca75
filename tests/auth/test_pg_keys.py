"""PostgresKeyStore against a real PostgreSQL server (Debian's, on loopback; tests/conftest.py).

Each test gets a database of its own on that server; the outage tests start a server of their own,
since they stop and restart it. The clock is a FakeClock, so expiry, the 5 s cache and the stale
bound are tested without sleeping; ``retry_s=0`` lets every lookup try PostgreSQL again at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import asyncpg
import pytest
from pydantic import ValidationError

from hybridgate.auth.pg_keys import CACHE_TTL_S, STALE_TTL_S, PostgresKeyStore, postgres_key_store
from hybridgate.auth.pg_schema import PEPPER_CHECK, SCHEMA_VERSION, migrate
from hybridgate.auth.records import MALFORMED
from hybridgate.auth.store import INVALID
from hybridgate.config import GatewayConfig
from hybridgate.errors import AuthenticationError, ConfigError, KeyStoreUnavailableError, RequestError
from hybridgate.ledger.migrations import migrate as migrate_ledger
from tests.auth.clock import FakeClock
from tests.postgres_server import PostgresServer

PEPPER = b"test-pepper-0123456789"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def new_store(postgres_dsn: str, clock: FakeClock, pepper: bytes = PEPPER) -> PostgresKeyStore:
    return PostgresKeyStore(postgres_dsn, pepper, clock=clock, retry_s=0.0, timeout_s=2.0)


async def _fetch(postgres_dsn: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_create_verify_list_get_round_trip(postgres_dsn: str, clock: FakeClock) -> None:
    store = new_store(postgres_dsn, clock)
    await store.start()
    key, record = store.create(
        environment="prod", name=" app1 ", budget_usd_day=5, budget_usd_month=50, rpm=60, tpm=1000,
        routes=["auto", " local ", ""], admin=True, privacy="redact",
    )  # fmt: skip
    assert key.startswith("hg-prod-") and record.key_id == key[len("hg-prod-") :][:8]
    verified = await store.verify(key, environment="prod")
    assert verified == record
    assert (verified.name, verified.routes, verified.admin, verified.privacy) == (
        "app1", ("auto", "local"), True, "redact",
    )  # fmt: skip
    assert (verified.rpm, verified.tpm, verified.budget_usd_day, verified.budget_usd_month) == (
        60,
        1000,
        5,
        50,
    )
    assert store.list() == [record] and store.list("staging") == [] and store.get(record.key_id) == record
    assert store.get("nope1234") is None
    await store.aclose()


async def test_only_the_pepper_hmac_is_stored_like_the_sqlite_store(
    postgres_dsn: str, clock: FakeClock
) -> None:
    store = new_store(postgres_dsn, clock)
    key, _ = store.create(environment="prod", name="app1")
    [(key_hash,)] = await _fetch(postgres_dsn, "SELECT key_hash FROM api_keys")
    assert key_hash == hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()
    dumped = str(await _fetch(postgres_dsn, "SELECT * FROM api_keys")) + str(
        await _fetch(postgres_dsn, "SELECT * FROM api_keys_meta")
    )
    assert key not in dumped and key[len("hg-prod-") + 8 :] not in dumped


async def test_bad_keys_are_refused_with_the_sqlite_stores_answers(
    postgres_dsn: str, clock: FakeClock
) -> None:
    store = new_store(postgres_dsn, clock)
    await store.start()
    key, _ = store.create(environment="prod", name="app1")
    other = key[:-10] + ("A" * 10 if key[-10:] != "A" * 10 else "B" * 10)  # same id, wrong secret
    unknown = "hg-prod-" + "Z" * 43
    for bad, message in ((other, INVALID), (unknown, INVALID), ("sk-nope", MALFORMED), ("", MALFORMED)):
        with pytest.raises(AuthenticationError) as caught:
            await store.verify(bad)
        assert caught.value.message == message and caught.value.status_code == 401
    with pytest.raises(AuthenticationError, match="for environment 'prod'"):
        await store.verify(key, environment="staging")
    await store.aclose()


async def test_revocation_is_immediate_here_and_within_the_cache_ttl_on_another_replica(
    postgres_dsn: str, clock: FakeClock
) -> None:
    here, replica = new_store(postgres_dsn, clock), new_store(postgres_dsn, clock)
    await here.start()
    await replica.start()
    key, record = here.create(environment="prod", name="app1")
    assert await replica.verify(key) == record  # cached on the replica from now
    revoked = here.revoke(record.key_id)
    assert revoked is not None and revoked.revoked_at == clock.now
    with pytest.raises(AuthenticationError, match="revoked"):
        await here.verify(key)
    clock.advance(CACHE_TTL_S - 0.5)
    assert await replica.verify(key) == record  # still inside the documented bound
    clock.advance(0.5)
    with pytest.raises(AuthenticationError, match="revoked"):
        await replica.verify(key)
    clock.advance(10)
    assert here.revoke(record.key_id) == revoked  # revoking twice keeps the first time
    assert here.revoke("nope1234") is None
    await here.aclose()
    await replica.aclose()


async def test_a_key_created_elsewhere_is_found_despite_a_cached_miss(
    postgres_dsn: str, clock: FakeClock
) -> None:
    replica = new_store(postgres_dsn, clock)
    await replica.start()
    key, record = new_store(postgres_dsn, clock).create(environment="prod", name="app1")
    assert await replica.verify(key) == record
    await replica.aclose()


async def test_expiry_is_checked_on_every_request(postgres_dsn: str, clock: FakeClock) -> None:
    store = new_store(postgres_dsn, clock)
    await store.start()
    key, _ = store.create(environment="prod", name="app1", expires_at=clock.now + 60)
    await store.verify(key)
    clock.advance(60)
    with pytest.raises(AuthenticationError, match="expired at"):
        await store.verify(key)  # from the cache: expiry does not wait for a refresh
    await store.aclose()


def test_create_checks_its_arguments(postgres_dsn: str, clock: FakeClock) -> None:
    store = new_store(postgres_dsn, clock)
    for kwargs in ({"name": " "}, {"rpm": 0}, {"privacy": "maybe"}, {"expires_at": clock.now - 1}):
        with pytest.raises(RequestError):
            store.create(environment="prod", **{"name": "app1", **kwargs})  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="environment"):
        store.create(environment="Prod!", name="app1")
    assert store.list() == []


async def test_another_pepper_is_refused_at_start_and_by_the_cli(postgres_dsn: str, clock: FakeClock) -> None:
    new_store(postgres_dsn, clock).create(environment="prod", name="app1")
    wrong = new_store(postgres_dsn, clock, pepper=b"another-pepper")
    with pytest.raises(ConfigError, match="another pepper"):
        await wrong.start()
    with pytest.raises(ConfigError, match="another pepper"):
        wrong.list()
    with pytest.raises(ConfigError, match="pepper is empty"):
        new_store(postgres_dsn, clock, pepper=b"")


async def test_a_server_that_answers_but_refuses_stops_start_up(postgres_server: PostgresServer) -> None:
    missing = postgres_server.dsn.rsplit("/", 1)[0] + "/no_such_database"
    store = PostgresKeyStore(missing, PEPPER)
    with pytest.raises(ConfigError, match="refused"):
        await store.start()


async def test_migrations_are_idempotent_and_beside_the_ledgers(postgres_dsn: str) -> None:
    check = hmac.new(PEPPER, PEPPER_CHECK.encode(), hashlib.sha256).hexdigest()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await migrate_ledger(conn) == 0
        assert await migrate(conn, check) == 0
        assert await migrate(conn, check) == SCHEMA_VERSION
        versions = await conn.fetch("SELECT version FROM api_keys_schema_version")
        assert [row[0] for row in versions] == list(range(1, SCHEMA_VERSION + 1))
        assert await migrate_ledger(conn) > 0  # the ledger's own version table is untouched
        await conn.execute("INSERT INTO api_keys_schema_version (version) VALUES ($1)", SCHEMA_VERSION + 1)
        with pytest.raises(ConfigError, match="upgrade hybridgate"):
            await migrate(conn, check)
    finally:
        await conn.close()


async def test_replicas_starting_together_migrate_once(postgres_dsn: str, clock: FakeClock) -> None:
    stores = [new_store(postgres_dsn, clock) for _ in range(4)]
    await asyncio.gather(*(store.start() for store in stores))
    assert await _fetch(postgres_dsn, "SELECT version FROM api_keys_schema_version") == [(1,)]
    for store in stores:
        assert store.degraded_reason() is None
        await store.aclose()


# -- outages: a server of their own --------------------------------------------------------------


async def test_outage_serves_recent_keys_refuses_others_with_503_and_recovers(
    own_postgres: PostgresServer, clock: FakeClock
) -> None:
    store = new_store(own_postgres.dsn, clock)
    await store.start()
    seen, record = store.create(environment="prod", name="seen")
    unseen, _ = store.create(environment="prod", name="unseen")
    await store.verify(seen)
    own_postgres.stop()
    clock.advance(CACHE_TTL_S + 1)  # past the fresh TTL: the store must ask PostgreSQL, and fails
    assert await store.verify(seen) == record
    with pytest.raises(KeyStoreUnavailableError) as caught:
        await store.verify(unseen)
    assert caught.value.status_code == 503 and caught.value.headers["retry-after"] == "5"
    assert "unreachable" in caught.value.message
    with pytest.raises(AuthenticationError, match="malformed"):
        await store.verify("not-a-key")  # no store needed to refuse a malformed key
    reason = store.degraded_reason()
    assert reason is not None and "PostgreSQL" in reason and f"{STALE_TTL_S:g}s" in reason
    with pytest.raises(KeyStoreUnavailableError):
        store.list()  # the CLI path says so too
    clock.advance(STALE_TTL_S)
    with pytest.raises(KeyStoreUnavailableError):
        await store.verify(seen)  # past the stale bound: no longer vouched for
    own_postgres.start()
    assert await store.verify(unseen) is not None and await store.verify(seen) == record
    assert store.degraded_reason() is None
    await store.aclose()


async def test_unreachable_at_start_up_degrades_then_migrates_on_first_lookup(
    own_postgres: PostgresServer, clock: FakeClock
) -> None:
    own_postgres.stop()
    store = new_store(own_postgres.dsn, clock)
    await store.start()
    assert store.degraded_reason() is not None
    own_postgres.start()
    key, record = new_store(own_postgres.dsn, clock).create(environment="prod", name="app1")
    assert await store.verify(key) == record
    assert store.degraded_reason() is None
    await store.aclose()


async def test_a_pepper_mismatch_found_after_start_fails_with_503_not_401(
    own_postgres: PostgresServer, clock: FakeClock
) -> None:
    own_postgres.stop()
    wrong = new_store(own_postgres.dsn, clock, pepper=b"another-pepper")
    await wrong.start()  # unreachable: cannot check the pepper yet
    own_postgres.start()
    key, _ = new_store(own_postgres.dsn, clock).create(environment="prod", name="app1")
    with pytest.raises(KeyStoreUnavailableError):
        await wrong.verify(key)
    await wrong.aclose()


def test_the_postgres_key_store_needs_a_postgres_section_and_the_pepper_variable() -> None:
    base = {"backends": {"b": {"type": "embedded"}}, "routes": {"auto": {"try": ["b"]}}}
    with pytest.raises(ValidationError, match=r'keys_store = "postgres" needs a \[postgres\] section'):
        GatewayConfig.model_validate({**base, "auth": {"keys_store": "postgres"}})
    config = GatewayConfig.model_validate(
        {
            **base,
            "auth": {"enabled": True, "keys_store": "postgres"},
            "postgres": {"dsn": "postgresql://x@h/db"},
        }
    )
    with pytest.raises(ConfigError, match=r"pepper in \$HYBRIDGATE_KEY_PEPPER"):
        postgres_key_store(config, {})
    store = postgres_key_store(config, {"HYBRIDGATE_KEY_PEPPER": "p"})
    assert store.where == "h:5432/db"


# -- a hung server: connections accepted, nothing answered (SIGSTOPped PostgreSQL) ---------------


async def test_a_hung_server_never_holds_up_a_cached_key_and_degrades_the_store(
    own_postgres: PostgresServer, clock: FakeClock
) -> None:
    store = PostgresKeyStore(own_postgres.dsn, PEPPER, clock=clock, timeout_s=1.0)
    await store.start()
    key, record = store.create(environment="prod", name="app1")
    assert await store.verify(key) == record
    own_postgres.pause()  # a real server, stopped: it accepts connections and never answers
    try:
        clock.advance(CACHE_TTL_S + 1)  # the row is due for a refresh from PostgreSQL
        started = time.monotonic()
        assert await store.verify(key) == record
        assert time.monotonic() - started < 0.5  # the refresh's short wait, not the 1 s timeout
        deadline = time.monotonic() + 5
        while store.degraded_reason() is None:  # the refresh times out in the background
            assert time.monotonic() < deadline, "a hung PostgreSQL never degraded the key store"
            await asyncio.sleep(0.05)
        assert "PostgreSQL" in str(store.degraded_reason())
        started = time.monotonic()
        assert await store.verify(key) == record  # degraded: served from the cached row at once
        assert time.monotonic() - started < 0.5
    finally:
        own_postgres.resume()
    await store.aclose()


async def test_a_hang_costs_one_short_wait_per_key_not_one_per_request(
    own_postgres: PostgresServer, clock: FakeClock
) -> None:
    # The wait for a refresh is long here (1 s) and the lookup timeout longer (10 s), so the store
    # is not yet degraded when the second request comes: it must not wait again for the same hang.
    store = PostgresKeyStore(own_postgres.dsn, PEPPER, clock=clock, timeout_s=10.0, stale_wait_s=1.0)
    await store.start()
    key, record = store.create(environment="prod", name="app1")
    assert await store.verify(key) == record
    own_postgres.pause()
    try:
        clock.advance(CACHE_TTL_S + 1)
        assert await store.verify(key) == record  # waited for the hung refresh, then the cached row
        assert store.degraded_reason() is None  # the refresh is still in flight: not yet degraded
        started = time.monotonic()
        assert await store.verify(key) == record
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"a second request waited {elapsed:.2f}s for a refresh that already hung"
    finally:
        own_postgres.resume()
    await store.aclose()


async def test_unknown_keys_get_their_503_within_the_lookup_timeout_from_a_hung_server(
    own_postgres: PostgresServer, clock: FakeClock
) -> None:
    store = PostgresKeyStore(own_postgres.dsn, PEPPER, clock=clock, timeout_s=1.0, pool_size=2)
    await store.start()
    keys = [store.create(environment="prod", name=f"app{i}")[0] for i in range(6)]
    own_postgres.pause()
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(store.verify(key) for key in keys), return_exceptions=True)
        elapsed = time.monotonic() - started
        assert all(isinstance(result, KeyStoreUnavailableError) for result in results), results
        assert elapsed < 1.5, f"503s took {elapsed:.2f}s; the documented lookup timeout is 1 s"
        assert store.degraded_reason() is not None  # hung trips the same state as refused
    finally:
        own_postgres.resume()
    key, record = store.create(environment="prod", name="after")
    await asyncio.sleep(1.1)  # past retry_s: the next lookup asks PostgreSQL again
    assert await store.verify(key) == record
    assert store.degraded_reason() is None
    await store.aclose()
