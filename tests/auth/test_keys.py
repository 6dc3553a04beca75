"""SqliteKeyStore: hashed storage, verification failures, constant-time comparison, the cache TTL.

Everything runs against a real SQLite file in tmp_path; the clock is a FakeClock, so expiry and
the cache TTL are tested without sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from hybridgate.auth.keys import CACHE_TTL_S, SqliteKeyStore, pepper_file
from hybridgate.auth.records import MALFORMED, KeyRecord
from hybridgate.auth.store import INVALID
from hybridgate.errors import AuthenticationError, ConfigError, RequestError
from hybridgate.privacy.secret import load_secret
from tests.auth.clock import FakeClock

PEPPER = b"test-pepper-0123456789"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "keys.db"


@pytest.fixture
def store(db: Path, clock: FakeClock) -> SqliteKeyStore:
    return SqliteKeyStore(db, PEPPER, clock=clock)


def swap_secret(key: str) -> str:
    """Same environment and key id, different secret characters after the id."""
    head, tail = key[:-10], key[-10:]
    return head + ("A" * 10 if tail != "A" * 10 else "B" * 10)


async def test_create_then_verify_returns_the_record(store: SqliteKeyStore, clock: FakeClock) -> None:
    key, record = store.create(
        environment="prod", name="app1", budget_usd_day=5, rpm=60, tpm=1000, routes=["auto", " local "]
    )
    assert key.startswith("hg-prod-") and len(key) == len("hg-prod-") + 43
    assert record.key_id == key[len("hg-prod-") :][:8]
    verified = await store.verify(key)
    assert verified == record
    assert verified.routes == ("auto", "local")
    assert (verified.rpm, verified.tpm, verified.budget_usd_day) == (60, 1000, 5)
    assert verified.created_at == clock.now
    assert verified.allows_route("auto") and not verified.allows_route("frontier")


def test_only_a_peppered_hash_is_stored(store: SqliteKeyStore, db: Path) -> None:
    key, record = store.create(environment="prod", name="app1")
    raw = b"".join(path.read_bytes() for path in db.parent.glob(db.name + "*"))
    assert key.encode() not in raw
    with closing(sqlite3.connect(db)) as conn, conn:
        (stored,) = conn.execute(
            "SELECT key_hash FROM api_keys WHERE key_id = ?", (record.key_id,)
        ).fetchone()
    assert stored == hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()
    assert stored != hashlib.sha256(key.encode()).hexdigest()  # unpeppered would be guessable offline


def test_schema_is_versioned_and_in_wal_mode(store: SqliteKeyStore, db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        meta = dict(conn.execute("SELECT name, value FROM api_keys_meta").fetchall())
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    assert int(meta["schema_version"]) == 1
    assert mode == "wal"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_newer_schema_is_refused(store: SqliteKeyStore, db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE api_keys_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(ConfigError, match="schema version 99"):
        SqliteKeyStore(db, PEPPER)


def test_another_pepper_is_refused_at_open(store: SqliteKeyStore, db: Path) -> None:
    with pytest.raises(ConfigError, match="another pepper"):
        SqliteKeyStore(db, b"some-other-pepper")


async def test_wrong_secret_and_unknown_id_get_the_same_answer(store: SqliteKeyStore) -> None:
    key, record = store.create(environment="prod", name="app1")
    wrong = swap_secret(key)
    unknown = "hg-prod-" + "Z" * 43
    messages = []
    for attempt in (wrong, unknown):
        with pytest.raises(AuthenticationError) as caught:
            await store.verify(attempt)
        assert caught.value.status_code == 401
        messages.append(caught.value.message)
    assert messages == [INVALID, INVALID]
    assert record.key_id not in INVALID and "app1" not in INVALID


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sk-proj-abc",
        "hg-prod-short",
        "hg-prod-" + "a" * 42 + "!",
        "hg-Prod-" + "a" * 43,
        "hg--" + "a" * 43,
        "hg-prod-" + "a" * 44,
        "hg-prod-" + "é" * 43,
        "hg-prod-" + "a" * 43 + "\x00",
        "hg-" + "p" * 10_000 + "-" + "a" * 43,
        "Bearer hg-prod-" + "a" * 43,
    ],
)
async def test_malformed_keys_are_refused(store: SqliteKeyStore, text: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await store.verify(text)
    assert caught.value.message == MALFORMED


async def test_revoked_key_is_refused_and_revoking_twice_keeps_the_first_time(
    store: SqliteKeyStore, clock: FakeClock
) -> None:
    key, record = store.create(environment="prod", name="app1")
    await store.verify(key)  # now cached: revoking through the store must still apply at once
    revoked = store.revoke(record.key_id)
    assert revoked is not None and revoked.revoked_at == clock.now
    with pytest.raises(AuthenticationError, match="revoked"):
        await store.verify(key)
    clock.advance(10)
    again = store.revoke(record.key_id)
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert store.revoke("nosuchid") is None


async def test_revocation_by_another_process_applies_within_the_cache_ttl(
    store: SqliteKeyStore, db: Path, clock: FakeClock
) -> None:
    key, record = store.create(environment="prod", name="app1")
    await store.verify(key)
    SqliteKeyStore(db, PEPPER, clock=clock).revoke(record.key_id)  # as `hybridgate keys revoke` would
    clock.advance(CACHE_TTL_S - 0.1)
    assert (await store.verify(key)).key_id == record.key_id
    clock.advance(0.1)
    with pytest.raises(AuthenticationError, match="revoked"):
        await store.verify(key)


async def test_expired_key_is_refused_even_when_cached(store: SqliteKeyStore, clock: FakeClock) -> None:
    key, _ = store.create(environment="prod", name="app1", expires_at=clock.now + 3600)
    await store.verify(key)
    clock.advance(3599)
    await store.verify(key)
    clock.advance(1)
    with pytest.raises(AuthenticationError, match="expired at 2025-03-14 13:00 UTC"):
        await store.verify(key)


async def test_key_of_another_environment_is_refused(store: SqliteKeyStore) -> None:
    key, _ = store.create(environment="dev", name="app1")
    assert (await store.verify(key, environment="dev")).environment == "dev"
    with pytest.raises(AuthenticationError, match="environment 'dev' but this gateway serves 'prod'"):
        await store.verify(key, environment="prod")


def spy_on_compare(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    calls: list[tuple[Any, Any]] = []
    real: Callable[[Any, Any], bool] = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return calls


async def test_keys_are_compared_with_compare_digest(
    store: SqliteKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = store.create(environment="prod", name="app1")
    calls = spy_on_compare(monkeypatch)
    await store.verify(key)
    expected = hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()
    assert calls == [(expected, expected)]
    with pytest.raises(AuthenticationError):
        await store.verify(swap_secret(key))
    assert len(calls) == 2 and calls[1][1] == expected


async def test_unknown_key_id_still_does_a_dummy_compare(
    store: SqliteKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy_on_compare(monkeypatch)
    unknown = "hg-prod-" + "Q" * 43
    with pytest.raises(AuthenticationError):
        await store.verify(unknown)
    digest = hmac.new(PEPPER, unknown.encode(), hashlib.sha256).hexdigest()
    assert len(calls) == 1
    assert calls[0][0] == digest and len(calls[0][1]) == len(digest)


async def test_hot_path_does_not_open_sqlite_within_the_ttl(
    store: SqliteKeyStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = store.create(environment="prod", name="app1")
    opened: list[str] = []
    real_connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def counting(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(str(args[0]))
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting)
    for _ in range(50):
        await store.verify(key)
    assert len(opened) == 1
    clock.advance(CACHE_TTL_S)
    await store.verify(key)
    assert len(opened) == 2


def test_list_gives_records_without_secrets(store: SqliteKeyStore) -> None:
    store.create(environment="prod", name="app1")
    store.create(environment="dev", name="app2", admin=True)
    records = store.list()
    assert [r.name for r in records] == ["app1", "app2"]
    assert all(isinstance(r, KeyRecord) for r in records)
    assert [r.name for r in store.list("dev")] == ["app2"]
    assert set(records[0].to_dict()) == {
        "key_id", "name", "environment", "created_at", "expires_at", "revoked_at",
        "budget_usd_day", "budget_usd_month", "rpm", "tpm", "routes", "admin", "privacy",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "param"),
    [
        ({"name": " "}, "name"),
        ({"budget_usd_day": 0.0}, "budget_usd_day"),
        ({"budget_usd_month": -1.0}, "budget_usd_month"),
        ({"rpm": 0}, "rpm"),
        ({"tpm": -5}, "tpm"),
        ({"expires_at": 0.0}, "expires_at"),
        ({"environment": "Prod"}, "environment"),
        ({"environment": "a" * 33}, "environment"),
    ],
)
def test_create_refuses_bad_settings(store: SqliteKeyStore, arguments: dict[str, Any], param: str) -> None:
    settings: dict[str, Any] = {"environment": "prod", "name": "app1", **arguments}
    with pytest.raises(RequestError) as caught:
        store.create(**settings)
    assert caught.value.param == param
    assert store.list() == []


async def test_environment_may_contain_dashes(store: SqliteKeyStore) -> None:
    key, record = store.create(environment="eu-prod", name="app1")
    assert (await store.verify(key, environment="eu-prod")).key_id == record.key_id


def test_pepper_comes_from_the_variable_else_a_private_file(db: Path) -> None:
    assert load_secret("HG_PEPPER", {"HG_PEPPER": "from-env"}, pepper_file(db)) == b"from-env"
    assert not pepper_file(db).exists()
    made = load_secret("HG_PEPPER", {}, pepper_file(db))
    assert pepper_file(db) == db.with_suffix(".pepper")
    assert stat.S_IMODE(pepper_file(db).stat().st_mode) == 0o600
    assert len(made) == 64 and load_secret("HG_PEPPER", {}, pepper_file(db)) == made


async def test_a_flood_of_unknown_ids_never_evicts_a_real_key(
    store: SqliteKeyStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, record = store.create(environment="prod", name="app1")
    await store.verify(key)  # cached now
    real_fetch = store._fetch
    fetched: list[str] = []

    def fetch(key_id: str) -> Any:  # SQLite for the real id; unknown ids answered without a file
        fetched.append(key_id)
        return real_fetch(key_id) if key_id == record.key_id else None

    monkeypatch.setattr(store, "_fetch", fetch)
    for n in range(12_000):  # more made-up ids than any bound the cache has
        with pytest.raises(AuthenticationError):
            await store.verify(f"hg-prod-{n:08d}" + "x" * 35)
    clock.advance(CACHE_TTL_S / 2)
    fetched.clear()
    assert (await store.verify(key)).key_id == record.key_id
    assert fetched == []  # served from the cache: the flood did not push it out
