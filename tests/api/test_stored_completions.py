"""Stored chat completions (``store: true`` on ``/v1/chat/completions``; api/stored_completions.py),
driven by the official ``openai`` SDK over real HTTP.

The upstream is the OpenAI chat-completions stand-in from tests/standins (a test server on
loopback that answers ``echo: <last user text>``, not OpenAI). The gateway is the real app on
127.0.0.1 with virtual keys on and ``[responses] store = "local"``, its store in the SQLite
ledger file or in a real PostgreSQL server (Debian's, tests/postgres_server.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.postgres_server import PostgresServer, new_database, run_postgres
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin

PEPPER = "test-pepper-0123456789"
ENV = {"CHAT_KEY": "sk-chat", "HYBRIDGATE_KEY_PEPPER": PEPPER}
SECRET_WORDS = "the walrus sings at midnight"


def settings(chat_url: str, workdir: Path, **more: Any) -> dict[str, Any]:
    return {
        "ledger": {"path": str(workdir / "gw.db"), "flush_interval_s": 0.05},
        "backends": {
            "chat": {
                "type": "openai_compat",
                "base_url": chat_url,
                "model": "gpt-4o-mini",
                "api_key_env": "CHAT_KEY",
                "provider": "openai",
                "timeout_s": 5,
            }
        },
        "routes": {"auto": {"try": ["chat"]}, "open": {"try": ["chat"]}},
        "auth": {"enabled": True, "keys_path": str(workdir / "keys.db")},
        "responses": {"store": "local"},
        **more,
    }


@dataclass
class Rig:
    url: str
    gateway: Gateway
    chat: OpenAIStandIn
    owner: openai.OpenAI
    other: openai.OpenAI
    kind: str
    workdir: Path
    dsn: str | None

    def blobs(self, completion_id: str) -> list[bytes]:
        """The stored rows' blobs, read from the database directly."""
        sql = "SELECT blob FROM chat_completions WHERE id = "
        if self.dsn is None:
            with sqlite3.connect(self.workdir / "gw.db") as db:
                return [bytes(b) for (b,) in db.execute(sql + "?", (completion_id,))]

        async def fetch(dsn: str) -> list[bytes]:
            conn = await asyncpg.connect(dsn)
            try:
                return [bytes(r["blob"]) for r in await conn.fetch(sql + "$1", completion_id)]
            finally:
                await conn.close()

        return asyncio.run(fetch(self.dsn))

    def ledger_rows(self) -> list[dict[str, Any]]:
        self.gateway.ledger.flush()
        return list(reversed(self.gateway.ledger.recent(1000)))


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with run_postgres() as pg:
        yield pg


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    workdir = tmp_path_factory.mktemp(f"stored-{request.param}")
    with run_openai_standin(api_key="sk-chat") as chat:
        config = settings(chat.base_url, workdir)
        dsn = None
        if request.param == "postgres":
            dsn = new_database(request.getfixturevalue("postgres"))
            config["ledger"] |= {"store": "postgres", "spool_path": str(workdir / "spool.jsonl")}
            config["postgres"] = {"dsn": dsn}
        app = create_app(GatewayConfig.model_validate(config), env=ENV)
        gateway: Gateway = app.state.gateway
        assert gateway.access is not None
        with serve_in_thread(app) as url:
            owner, _ = gateway.access.keys.create(environment="default", name="owner")
            other, _ = gateway.access.keys.create(environment="default", name="other")
            with (
                openai.OpenAI(base_url=f"{url}/v1", api_key=owner, max_retries=0) as mine,
                openai.OpenAI(base_url=f"{url}/v1", api_key=other, max_retries=0) as theirs,
            ):
                yield Rig(url, gateway, chat, mine, theirs, request.param, workdir, dsn)


def ask(client: openai.OpenAI, text: str, **more: Any) -> Any:
    return client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}], **more)


def test_stored_completion_lists_retrieves_updates_and_deletes(rig: Rig) -> None:
    """Fails on old main: GET /v1/chat/completions answered 405 and ``store`` was ignored."""
    tag = f"run-{rig.kind}"
    first = ask(rig.owner, "first question", store=True, metadata={"run": tag, "n": "1"})
    second = ask(rig.owner, "second question", store=True, metadata={"run": tag, "n": "2"})
    ask(rig.owner, "not kept", metadata={"run": tag})  # store absent: OpenAI's default, not kept
    assert first.id.startswith("chatcmpl-") and first.choices[0].message.content == "echo: first question"

    page = rig.owner.chat.completions.list(metadata={"run": tag})
    assert [c.id for c in page.data] == [first.id, second.id]  # oldest first by default
    assert page.has_more is False
    wire = rig.owner.chat.completions.with_raw_response.list(metadata={"run": tag}).http_response.json()
    assert {k: wire[k] for k in ("object", "first_id", "last_id", "has_more")} == {
        "object": "list",
        "first_id": first.id,
        "last_id": second.id,
        "has_more": False,
    }
    assert page.data[0].choices[0].message.content == "echo: first question"
    newest = rig.owner.chat.completions.list(metadata={"run": tag}, order="desc", limit=1)
    assert [c.id for c in newest.data] == [second.id] and newest.has_more is True
    after = rig.owner.chat.completions.list(metadata={"run": tag}, order="desc", after=second.id)
    assert [c.id for c in after.data] == [first.id]
    walked = [c.id for c in rig.owner.chat.completions.list(metadata={"run": tag}, limit=1)]  # auto-paging
    assert walked == [first.id, second.id]
    assert [c.id for c in rig.owner.chat.completions.list(metadata={"run": tag, "n": "2"})] == [second.id]
    assert rig.owner.chat.completions.list(metadata={"run": tag}, model="gpt-4o-mini").data
    assert rig.owner.chat.completions.list(metadata={"run": tag}, model="auto").data  # the requested name
    assert not rig.owner.chat.completions.list(metadata={"run": tag}, model="gpt-4o").data

    got = rig.owner.chat.completions.retrieve(first.id)
    assert got.id == first.id and got.choices[0].message.content == "echo: first question"
    assert got.metadata == {"run": tag, "n": "1"}
    messages = rig.owner.chat.completions.messages.list(first.id)
    assert [(m.id, m.role, m.content) for m in messages.data] == [(f"{first.id}-0", "user", "first question")]
    assert messages.has_more is False
    wire = rig.owner.chat.completions.messages.with_raw_response.list(first.id).http_response.json()
    assert (wire["object"], wire["first_id"], wire["last_id"]) == ("list", f"{first.id}-0", f"{first.id}-0")
    assert wire["data"][0]["content_parts"] is None

    updated = rig.owner.chat.completions.update(first.id, metadata={"run": tag, "n": "one"})
    assert updated.metadata == {"run": tag, "n": "one"}
    assert [c.id for c in rig.owner.chat.completions.list(metadata={"n": "one"})] == [first.id]

    deleted = rig.owner.chat.completions.delete(first.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (first.id, "chat.completion.deleted", True)
    with pytest.raises(openai.NotFoundError) as caught:
        rig.owner.chat.completions.retrieve(first.id)
    assert caught.value.body == {  # OpenAI's error shape
        "message": f"No chat completion found with id '{first.id}'.",
        "type": "invalid_request_error",
        "param": "completion_id",
        "code": None,
    }
    rows = rig.ledger_rows()[-7:]  # retrieve, messages (two), update, list, delete, refused retrieve
    assert [(r["api"], r["status"]) for r in rows] == [("openai", 200)] * 6 + [("openai", 404)]


def test_the_provider_keeps_no_second_copy_of_a_completion_the_gateway_keeps(rig: Rig) -> None:
    kept = ask(rig.owner, "kept once", store=True)
    assert "store" not in rig.chat.last_request.body  # OpenAI's default: the provider keeps nothing
    assert rig.owner.chat.completions.retrieve(kept.id).choices[0].message.content == "echo: kept once"


def test_a_streamed_completion_is_kept_once_the_stream_completes(rig: Rig) -> None:
    stream = rig.owner.chat.completions.create(
        model="auto",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "stream me"}],
        stream=True,
        store=True,
    )
    chunks = list(stream)
    ids = {chunk.id for chunk in chunks}
    assert len(ids) == 1
    (completion_id,) = ids
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    got = rig.owner.chat.completions.retrieve(completion_id)
    assert got.choices[0].message.content == text == "echo: stream me"
    assert got.choices[0].finish_reason == "stop"
    roles = [m.role for m in rig.owner.chat.completions.messages.list(completion_id, order="desc")]
    assert roles == ["user", "system"]


def test_another_key_sees_nothing_and_a_bad_key_stores_nothing(rig: Rig) -> None:
    mine = ask(rig.owner, "mine only", store=True)
    with pytest.raises(openai.NotFoundError):
        rig.other.chat.completions.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        rig.other.chat.completions.messages.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        rig.other.chat.completions.update(mine.id, metadata={"stolen": "yes"})
    with pytest.raises(openai.NotFoundError):
        rig.other.chat.completions.delete(mine.id)
    assert mine.id not in [c.id for c in rig.other.chat.completions.list()]
    assert rig.owner.chat.completions.retrieve(mine.id).metadata == {}
    before = len(list(rig.owner.chat.completions.list(limit=100)))
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="sk-made-up", max_retries=0) as nobody:
        with pytest.raises(openai.AuthenticationError):
            ask(nobody, "store me", store=True)
        with pytest.raises(openai.AuthenticationError):
            nobody.chat.completions.list()
        with pytest.raises(openai.AuthenticationError):
            nobody.chat.completions.retrieve(mine.id)
    assert len(list(rig.owner.chat.completions.list(limit=100))) == before
    rows = rig.ledger_rows()[-4:]
    assert [r["status"] for r in rows[:3]] == [401, 401, 401]


def test_bad_requests_get_openai_errors_naming_the_parameter(rig: Rig) -> None:
    kept = ask(rig.owner, "keep me", store=True)
    with pytest.raises(openai.BadRequestError) as caught:
        rig.owner.chat.completions.list(limit=101)
    assert caught.value.param == "limit"
    empty = rig.owner.chat.completions.list(limit=0)  # OpenAI documents no range: an empty page
    assert empty.data == [] and empty.has_more is True
    with pytest.raises(openai.BadRequestError) as caught:
        rig.owner.chat.completions.list(order="sideways")  # type: ignore[arg-type]
    assert caught.value.param == "order"
    with pytest.raises(openai.BadRequestError) as caught:
        rig.owner.chat.completions.update(kept.id, metadata={"k": "v" * 600})
    assert caught.value.param == "metadata"
    with pytest.raises(openai.BadRequestError) as caught:
        ask(rig.owner, "hi", extra_body={"store": "yes"})
    assert caught.value.param == "store"
    row = rig.ledger_rows()[-1]
    assert (row["api"], row["status"], row["error_type"]) == ("openai", 400, "invalid_request_error")


def test_stored_completions_are_encrypted_at_rest(rig: Rig) -> None:
    kept = ask(rig.owner, SECRET_WORDS, store=True)
    blobs = rig.blobs(kept.id)
    assert len(blobs) == 1 and SECRET_WORDS.encode() not in blobs[0]
    assert rig.owner.chat.completions.messages.list(kept.id).data[0].content == SECRET_WORDS


def test_storage_off_answers_as_before_and_the_read_endpoints_name_the_setting(tmp_path: Path) -> None:
    with run_openai_standin(api_key="sk-chat") as chat:
        config = settings(chat.base_url, tmp_path, responses={"store": "off"})
        config.pop("auth")
        app = create_app(GatewayConfig.model_validate(config), env=ENV)
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            answer = ask(client, "hi", store=True)
            assert answer.choices[0].message.content == "echo: hi"
            assert chat.last_request.body["store"] is True  # passed to an OpenAI upstream, as before
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.list()
            assert '[responses] store = "local"' in caught.value.message
            with pytest.raises(openai.BadRequestError):
                client.chat.completions.retrieve(answer.id)
            assert httpx.delete(f"{url}/v1/chat/completions/{answer.id}").status_code == 400


def test_a_prompt_with_pii_is_kept_only_where_its_policy_allows(tmp_path: Path) -> None:
    email = "ada.lovelace@example.com"
    with run_openai_standin(api_key="sk-chat") as chat:
        config = settings(
            chat.base_url,
            tmp_path,
            privacy={"policy": "allow", "routes": {"auto": "redact"}, "ner_model": None},
        )
        config.pop("auth")
        app = create_app(GatewayConfig.model_validate(config), env=ENV)
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            redacted = ask(client, f"write to {email}", store=True)
            assert redacted.choices[0].message.content == f"echo: write to {email}"
            streamed = list(ask(client, f"mail {email}", store=True, stream=True))
            plain = ask(client, "no personal data here", store=True)
            allowed = client.chat.completions.create(
                model="open", messages=[{"role": "user", "content": f"write to {email}"}], store=True
            )
            kept = [c.id for c in client.chat.completions.list()]
            assert kept == [plain.id, allowed.id]
            assert redacted.id not in kept and streamed[0].id not in kept
