"""Slow and greedy clients against the real ``hybridgate serve`` (a child process, see
tests/gateway_process.py): header and body deadlines, the connection cap, HTTP garbage, and a
body far over ``max_body_bytes`` answered with a clean 413 through both official SDKs. The
upstream is the OpenAI stand-in from tests/standins (a test server, not OpenAI)."""

from __future__ import annotations

import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.gateway_process import GatewayProcess, ledger_rows, run_gateway, upstream_config
from tests.standins.openai_upstream import run_openai_standin
from tests.waiting import wait_until

HEADER_TIMEOUT_S = 3.0
BODY_TIMEOUT_S = 3.0
MAX_CONNECTIONS = 12
SERVER = f"""
[server]
max_body_bytes = 1048576
header_timeout_s = {HEADER_TIMEOUT_S}
body_timeout_s = {BODY_TIMEOUT_S}
max_connections = {MAX_CONNECTIONS}
"""


@dataclass
class Front:
    gateway: GatewayProcess
    ledger: Path

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.gateway.url.removeprefix("http://").split(":")
        return host, int(port)


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    workdir = tmp_path_factory.mktemp("front")
    ledger = workdir / "gw.db"
    with run_openai_standin(api_key="sk-up") as upstream:
        config = upstream_config(upstream.base_url, ledger) + SERVER
        with run_gateway(config, workdir) as gateway:
            yield Front(gateway, ledger)


@dataclass
class Dripper:
    """A client that sends ``first`` and then one more byte every ``every_s`` until the server
    answers or closes; ``answer`` is what it got, ``after_s`` when the connection ended."""

    sock: socket.socket
    started: float
    answer: bytes = b""
    after_s: float | None = None
    drip: bytes = field(default=b"a")

    @property
    def status(self) -> int | None:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else None

    def body(self) -> dict[str, object]:
        parsed: dict[str, object] = orjson.loads(self.answer.split(b"\r\n\r\n", 1)[1])
        return parsed


def drip_until_closed(drippers: list[Dripper], every_s: float, limit_s: float) -> None:
    """Drip a byte into each open connection every ``every_s``; read what the server sends."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and any(d.after_s is None for d in drippers):
        open_ = [d for d in drippers if d.after_s is None]
        readable, _, _ = select.select([d.sock for d in open_], [], [], every_s)
        for dripper in open_:
            if dripper.sock in readable:
                try:
                    data = dripper.sock.recv(65536)
                except ConnectionError:
                    data = b""
                dripper.answer += data
                if not data:
                    dripper.after_s = time.monotonic() - dripper.started
            else:
                try:
                    dripper.sock.send(dripper.drip)
                except OSError:
                    dripper.after_s = time.monotonic() - dripper.started


def open_dripper(front: Front, first: bytes) -> Dripper:
    sock = socket.create_connection(front.address, timeout=5)
    sock.sendall(first)
    return Dripper(sock, time.monotonic())


def test_clients_dripping_headers_are_cut_off_while_others_are_served(front: Front) -> None:
    drippers = [open_dripper(front, b"POST /v1/chat/completions HTTP/1.1\r\nx-drip: ") for _ in range(6)]
    idle = open_dripper(front, b"")
    idle.drip = b""  # sends nothing at all
    try:
        with httpx.Client(base_url=front.gateway.url) as http:  # served while they drip
            assert http.get("/healthz").status_code == 200
            reply = http.post(
                "/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert reply.status_code == 200
        drip_until_closed([*drippers, idle], every_s=0.2, limit_s=HEADER_TIMEOUT_S + 6)
    finally:
        for dripper in [*drippers, idle]:
            dripper.sock.close()
    for dripper in drippers:
        assert dripper.after_s is not None, "a dripping client was never cut off"
        assert HEADER_TIMEOUT_S - 0.5 < dripper.after_s < HEADER_TIMEOUT_S + 5
        assert dripper.status == 408
        error = dripper.body()["error"]
        assert isinstance(error, dict) and error["code"] == "request_timeout"
    assert idle.after_s is not None and idle.answer == b""  # idle: closed without a word


@pytest.mark.parametrize(("path", "anthropic_api"), [("/v1/chat/completions", False), ("/v1/messages", True)])
def test_a_body_sent_too_slowly_gets_a_408_in_the_wire_format_and_a_row(
    front: Front, path: str, anthropic_api: bool
) -> None:
    request_id = f"slow-body-{anthropic_api}"
    head = (
        f"POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
        f"x-request-id: {request_id}\r\nx-api-key: test\r\ncontent-length: 500\r\n\r\n"
    )
    dripper = open_dripper(front, head.encode() + b'{"model": "auto", "messages": [')
    dripper.drip = b" "
    try:
        drip_until_closed([dripper], every_s=0.3, limit_s=BODY_TIMEOUT_S + 6)
    finally:
        dripper.sock.close()
    assert dripper.status == 408, dripper.answer[:200]
    assert dripper.after_s is not None and BODY_TIMEOUT_S - 0.5 < dripper.after_s < BODY_TIMEOUT_S + 5
    body = dripper.body()
    if anthropic_api:
        assert body["type"] == "error" and isinstance(body["error"], dict)
        assert body["error"]["type"] == "invalid_request_error"
        assert "not received within" in str(body["error"]["message"])
    else:
        assert isinstance(body["error"], dict) and body["error"]["code"] == "request_timeout"
    wait_for_row(front, request_id, 408)


def wait_for_row(front: Front, request_id: str, status: int) -> None:
    wait_until(
        lambda: [row[1] for row in ledger_rows(front.ledger) if row[0] == request_id] == [status],
        10,
        f"a ledger row with status {status} for {request_id}",
    )


def recv_or_reset(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1024)
    except ConnectionResetError:
        return b""


def test_connections_past_the_cap_get_a_503_then_service_resumes(front: Front) -> None:
    with ExitStack() as held:
        for _ in range(MAX_CONNECTIONS):
            held.enter_context(socket.create_connection(front.address, timeout=5))
        time.sleep(0.1)  # let the server accept them all
        with (
            openai.OpenAI(base_url=f"{front.gateway.url}/v1", api_key="k", max_retries=0) as client,
            pytest.raises(openai.InternalServerError) as refused,
        ):
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        for _ in range(MAX_CONNECTIONS):  # refused ones too, each lingering: twice the cap in all
            held.enter_context(socket.create_connection(front.address, timeout=5))
        with socket.create_connection(front.address, timeout=5) as dropped:
            assert recv_or_reset(dropped) == b""  # past twice the cap: dropped without a word
    assert refused.value.status_code == 503
    assert refused.value.response.headers["retry-after"] == "1"
    assert isinstance(refused.value.body, dict) and refused.value.body["code"] == "too_many_connections"
    time.sleep(0.2)  # the held connections are gone
    with openai.OpenAI(base_url=f"{front.gateway.url}/v1", api_key="k", max_retries=0) as client:
        reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "echo: hi"


def test_http_garbage_gets_a_400_in_json(front: Front) -> None:
    with socket.create_connection(front.address, timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\x00\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    body = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["type"] == "invalid_request_error"


FIFTY_MB = "x" * (50 * 1024 * 1024)


def test_a_50_mb_body_sent_with_connection_close_gets_its_413_not_a_reset(front: Front) -> None:
    """urllib sends ``connection: close``: the gateway must not close while the body still arrives."""
    body = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": FIFTY_MB}]})
    request = urllib.request.Request(
        f"{front.gateway.url}/v1/chat/completions",
        data=body,
        headers={"content-type": "application/json", "x-request-id": "big-close"},
    )
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError) as too_big:
            urllib.request.urlopen(request, timeout=60)
        assert too_big.value.code == 413
        assert orjson.loads(too_big.value.read())["error"]["code"] == "request_too_large"


def test_a_50_mb_body_gets_a_clean_413_through_both_sdks(front: Front) -> None:
    with (
        openai.OpenAI(base_url=f"{front.gateway.url}/v1", api_key="k", max_retries=0, timeout=60) as client,
        pytest.raises(openai.APIStatusError) as too_big,
    ):
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": FIFTY_MB}],
            extra_headers={"x-request-id": "big-oai"},
        )
    assert too_big.value.status_code == 413
    assert isinstance(too_big.value.body, dict) and too_big.value.body["code"] == "request_too_large"
    with (
        anthropic.Anthropic(base_url=front.gateway.url, api_key="k", max_retries=0, timeout=60) as claude,
        pytest.raises(anthropic.APIStatusError) as too_big_a,
    ):
        claude.messages.create(
            model="auto",
            max_tokens=5,
            messages=[{"role": "user", "content": FIFTY_MB}],
            extra_headers={"x-request-id": "big-ant"},
        )
    assert too_big_a.value.status_code == 413
    assert isinstance(too_big_a.value.body, dict)
    assert too_big_a.value.body["error"] == {
        "type": "request_too_large",
        "message": too_big_a.value.body["error"]["message"],
    }
    wait_for_row(front, "big-oai", 413)
    wait_for_row(front, "big-ant", 413)
