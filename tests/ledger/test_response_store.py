"""Stored Responses answers (ledger/response_store.py, pg_response_store.py): sealed at rest,
per tenant, expiring, and shared by replicas on PostgreSQL. SQLite files and a real PostgreSQL
server (Debian's, on loopback, tests/postgres_server.py) only; nothing is a stand-in."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from hybridgate.ledger.pg_response_store import PostgresResponseStore
from hybridgate.ledger.response_store import ResponseStore, Sealer, SqliteResponseStore, StoredResponse
from tests.postgres_server import new_database

SECRET = b"deployment-secret"
PROMPT = "my card is 4111 1111 1111 1111, call me at +44 20 7946 0958"

MakeStore = Callable[[bytes, float], ResponseStore]


def answer(response_id: str) -> StoredResponse:
    response = {"id": response_id, "object": "response", "output": [], "status": "completed"}
    items = [
        {
            "id": "msg_1",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": PROMPT}],
        }
    ]
    return StoredResponse(
        response, items, [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": "ok"}]
    )


@pytest.fixture(params=["sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """A factory of stores on one database: two calls are two replicas (or two restarts)."""
    if request.param == "sqlite":
        path = str(tmp_path / "ledger.db")
        return lambda secret, ttl_s: SqliteResponseStore(path, Sealer(secret), ttl_s)
    postgres_dsn = new_database(request.getfixturevalue("postgres_server"))
    return lambda secret, ttl_s: PostgresResponseStore(
        postgres_dsn, Sealer(secret), ttl_s, password=None, timeout_s=5.0, pool_size=2
    )


@pytest.fixture
async def store(make: MakeStore) -> AsyncIterator[ResponseStore]:
    opened = make(SECRET, 60.0)
    await opened.start()
    yield opened
    await opened.aclose()


async def test_round_trip_is_per_tenant_and_deletable(store: ResponseStore) -> None:
    await store.save("key_a", answer("resp_1"))
    loaded = await store.load("key_a", "resp_1")
    assert loaded is not None and loaded.messages[0]["content"] == PROMPT
    assert loaded.input_items == answer("resp_1").input_items
    assert await store.load("key_b", "resp_1") is None  # another caller's key sees nothing
    assert not await store.delete("key_b", "resp_1")
    assert await store.delete("key_a", "resp_1")
    assert await store.load("key_a", "resp_1") is None


async def test_another_replica_reads_it_and_another_secret_cannot(
    make: MakeStore, store: ResponseStore
) -> None:
    await store.save("key_a", answer("resp_2"))
    replica = make(SECRET, 60.0)
    stranger = make(b"another deployment", 60.0)
    await replica.start()
    await stranger.start()
    try:
        assert (loaded := await replica.load("key_a", "resp_2")) is not None
        assert loaded.response["id"] == "resp_2"
        assert await stranger.load("key_a", "resp_2") is None
    finally:
        await replica.aclose()
        await stranger.aclose()


async def test_answers_expire(make: MakeStore) -> None:
    short = make(SECRET, 0.2)
    await short.start()
    try:
        await short.save("key_a", answer("resp_3"))
        assert await short.load("key_a", "resp_3") is not None
        await asyncio.sleep(0.3)
        assert await short.load("key_a", "resp_3") is None
    finally:
        await short.aclose()


def test_expired_rows_of_both_tables_are_purged_whichever_table_is_busy(tmp_path: Path) -> None:
    """One purge clock per store: a stream of saved responses must not keep expired chat
    completions from being deleted (each table once ran its own check of the shared clock)."""
    path = tmp_path / "ledger.db"

    async def save_then_expire() -> None:
        store = SqliteResponseStore(str(path), Sealer(SECRET), 0.2)
        await store.start()
        await store.save_completion("key_a", "chatcmpl-old", {"id": "chatcmpl-old"})
        await asyncio.sleep(0.3)
        store._next_purge = 0.0  # the purge interval has passed
        await store.save("key_a", answer("resp_busy"))  # only the responses table is written
        await store.aclose()

    asyncio.run(save_then_expire())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM chat_completions").fetchone()[0] == 0


def test_sealed_at_rest_and_bound_to_its_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def save_and_tamper() -> tuple[bytes, StoredResponse | None, StoredResponse | None]:
        store = SqliteResponseStore(str(path), Sealer(SECRET), 60.0)
        await store.start()
        await store.save("key_a", answer("resp_4"))
        await store.save("key_a", answer("resp_5"))
        with sqlite3.connect(path) as db:
            blob = db.execute("SELECT blob FROM responses WHERE id = 'resp_4'").fetchone()[0]
            # a blob copied onto another row (or tenant) must not open there
            db.execute("UPDATE responses SET blob = ? WHERE id = 'resp_5'", (blob,))
        moved = await store.load("key_a", "resp_5")
        kept = await store.load("key_a", "resp_4")
        await store.aclose()
        return bytes(blob), moved, kept

    blob, moved, kept = asyncio.run(save_and_tamper())
    assert b"4111" not in blob and b"7946" not in blob and b"input_text" not in blob
    assert moved is None and kept is not None


async def test_postgres_rows_are_sealed(postgres_dsn: str) -> None:
    store = PostgresResponseStore(
        postgres_dsn, Sealer(SECRET), 60.0, password=None, timeout_s=5.0, pool_size=1
    )
    await store.start()
    try:
        await store.save("key_a", answer("resp_6"))
    finally:
        await store.aclose()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        row = await conn.fetchrow("SELECT tenant, blob, expires_at FROM responses WHERE id = 'resp_6'")
    finally:
        await conn.close()
    assert row is not None and row["tenant"] == "key_a" and row["expires_at"] > time.time()
    assert b"4111" not in bytes(row["blob"])


def completion(completion_id: str) -> dict[str, object]:
    return {
        "completion": {"id": completion_id, "object": "chat.completion", "metadata": {"k": "v"}},
        "messages": [{"id": f"{completion_id}-0", "role": "user", "content": PROMPT}],
    }


async def test_stored_chat_completions_are_per_tenant_ordered_and_updatable(
    make: MakeStore, store: ResponseStore
) -> None:
    for name in ("chatcmpl-1", "chatcmpl-2"):
        await store.save_completion("key_a", name, completion(name))
    await store.save_completion("key_b", "chatcmpl-3", completion("chatcmpl-3"))
    listed = await store.list_completions("key_a")
    assert [r["completion"]["id"] for r in listed] == ["chatcmpl-1", "chatcmpl-2"]
    assert await store.load_completion("key_b", "chatcmpl-1") is None
    assert await store.load("key_a", "chatcmpl-1") is None  # not a stored response
    changed = completion("chatcmpl-1")
    changed["completion"]["metadata"] = {"k": "w"}  # type: ignore[index]
    assert not await store.update_completion("key_b", "chatcmpl-1", changed)
    assert await store.update_completion("key_a", "chatcmpl-1", changed)
    replica = make(SECRET, 60.0)
    await replica.start()
    try:
        loaded = await replica.load_completion("key_a", "chatcmpl-1")
        assert loaded is not None and loaded["completion"]["metadata"] == {"k": "w"}
    finally:
        await replica.aclose()
    assert not await store.delete_completion("key_b", "chatcmpl-2")
    assert await store.delete_completion("key_a", "chatcmpl-2")
    assert [r["completion"]["id"] for r in await store.list_completions("key_a")] == ["chatcmpl-1"]


def test_a_stored_completion_is_sealed_and_bound_to_its_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def save_and_tamper() -> tuple[bytes, object, object]:
        store = SqliteResponseStore(str(path), Sealer(SECRET), 60.0)
        await store.start()
        await store.save_completion("key_a", "chatcmpl-a", completion("chatcmpl-a"))
        await store.save("key_a", answer("chatcmpl-b"))
        with sqlite3.connect(path) as db:
            blob = db.execute("SELECT blob FROM chat_completions WHERE id = 'chatcmpl-a'").fetchone()[0]
            # a completion's blob copied into the responses table must not open there
            db.execute("UPDATE responses SET blob = ? WHERE id = 'chatcmpl-b'", (blob,))
            db.execute("UPDATE chat_completions SET id = 'chatcmpl-b' WHERE id = 'chatcmpl-a'")
        moved = await store.load("key_a", "chatcmpl-b")
        renamed = await store.load_completion("key_a", "chatcmpl-b")
        await store.aclose()
        return bytes(blob), moved, renamed

    blob, moved, renamed = asyncio.run(save_and_tamper())
    assert b"4111" not in blob and moved is None and renamed is None
