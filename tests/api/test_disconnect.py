"""A client that hangs up mid-stream: the gateway cancels its upstream request, records a 499
``client_closed`` ledger row, leaves no task behind and keeps serving.

The gateway is the real app served by uvicorn on loopback in a background thread; its upstream is
the OpenAI stand-in from tests/standins (a test server, not OpenAI), scripted to stream many
chunks slowly and counting the streams its clients abandon.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from hybridgate.api.front import uvicorn_options
from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, Reply, run_openai_standin
from tests.waiting import wait_until

CHUNKS = 40
CHUNK_DELAY_S = 0.1  # the whole answer would take 4 s; the client leaves after 2 chunks
LONG = " ".join(f"word{i}" for i in range(CHUNKS))


@dataclass
class LoopProbe:
    """Wraps the app to learn which event loop serves it, so tests can count its tasks."""

    app: ASGIApp
    loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop = self.loop or asyncio.get_running_loop()
        await self.app(scope, receive, send)

    def run(self, make: Callable[[], Awaitable[Any]]) -> Any:
        assert self.loop is not None, "no request has been served yet"
        return asyncio.run_coroutine_threadsafe(_call(make), self.loop).result(timeout=10)

    def task_count(self) -> int:
        count: int = self.run(_task_count)
        return count


async def _call(make: Callable[[], Awaitable[Any]]) -> Any:
    return await make()


async def _task_count() -> int:
    return len(asyncio.all_tasks()) - 1  # not counting the task doing the counting


@dataclass
class Setup:
    url: str
    gateway: Gateway
    upstream: OpenAIStandIn
    probe: LoopProbe


@pytest.fixture(params=["uvicorn", "front"])
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    """The app behind plain uvicorn (the route listens for ``http.disconnect``) and behind the
    gateway's own front, as ``serve`` runs it (``GatewayProtocol`` tells the route itself)."""
    with run_openai_standin(api_key="sk-up") as upstream:
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(tmp_path / "ledger.db"), "flush_interval_s": 0.05},
                "backends": {
                    "up": {
                        "type": "openai_compat",
                        "base_url": upstream.base_url,
                        "model": "gpt-4o-mini",
                        "api_key_env": "UP_KEY",
                        "timeout_s": 10,
                    }
                },
                "routes": {"auto": {"try": ["up"]}},
            }
        )
        app = create_app(config, env={"UP_KEY": "sk-up", "HYBRIDGATE_HMAC_SECRET": "s"})
        probe = LoopProbe(app)
        options = uvicorn_options(config.server) if request.param == "front" else None
        with serve_in_thread(probe, options=options) as url:
            yield Setup(url, app.state.gateway, upstream, probe)


def chat(url: str, client: httpx.Client, content: str = "hi") -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}]}
    return client.post(f"{url}/v1/chat/completions", json=body)


def read_two_chunks_and_hang_up(url: str, request_id: str) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": LONG}], "stream": True}
    headers = {"x-request-id": request_id}
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data: ")
            if seen == 2:
                break  # leaving both blocks closes the connection mid-stream


def ledger_row(gateway: Gateway, request_id: str) -> dict[str, Any]:
    assert gateway.ledger.flush(timeout=10)
    rows = [r for r in gateway.ledger.recent(100) if r["request_id"] == request_id]
    assert len(rows) == 1, rows
    return rows[0]


def test_hang_up_mid_stream_cancels_the_upstream_and_records_499(setup: Setup) -> None:
    with httpx.Client(timeout=10) as client:
        assert chat(setup.url, client).status_code == 200  # warm: pools and tasks at rest
    time.sleep(0.2)
    baseline = setup.probe.task_count()
    setup.upstream.script(Reply(delay_s=0.0, chunk_delay_s=CHUNK_DELAY_S))

    read_two_chunks_and_hang_up(setup.url, "hangup-1")
    waited = wait_until(lambda: setup.upstream.abandoned == 1, 3, "the upstream stream to be cancelled")
    assert waited < 1.0, f"the upstream kept streaming {waited:.2f}s after the client left"

    wait_until(lambda: _has_row(setup.gateway, "hangup-1"), 5, "the ledger row")
    row = ledger_row(setup.gateway, "hangup-1")
    assert (row["status"], row["error_type"], row["stream"]) == (499, "client_closed", 1)
    assert row["backend"] == "up"

    wait_until(lambda: setup.probe.task_count() <= baseline, 3, "the request's tasks to finish")
    with httpx.Client(timeout=10) as client:  # and it keeps serving, streaming or not
        assert chat(setup.url, client, "after").json()["choices"][0]["message"]["content"] == "echo: after"
        setup.upstream.script(Reply(chunk_delay_s=0.01))
        body = {"model": "auto", "messages": [{"role": "user", "content": "a b c"}], "stream": True}
        streamed = client.post(f"{setup.url}/v1/chat/completions", json=body)
        assert streamed.text.endswith("data: [DONE]\n\n")


def test_many_hang_ups_leak_nothing(setup: Setup) -> None:
    with httpx.Client(timeout=10) as client:
        assert chat(setup.url, client).status_code == 200
    time.sleep(0.2)
    baseline = setup.probe.task_count()
    rounds = 10
    setup.upstream.script(*[Reply(chunk_delay_s=CHUNK_DELAY_S) for _ in range(rounds)])
    for index in range(rounds):
        read_two_chunks_and_hang_up(setup.url, f"many-{index}")
    wait_until(lambda: setup.upstream.abandoned == rounds, 5, "every upstream stream to be cancelled")
    wait_until(lambda: setup.probe.task_count() <= baseline, 3, "the requests' tasks to finish")
    assert setup.gateway.ledger.flush(timeout=10)
    rows = [r for r in setup.gateway.ledger.recent(100) if r["request_id"].startswith("many-")]
    assert sorted(r["status"] for r in rows) == [499] * rounds


def _has_row(gateway: Gateway, request_id: str) -> bool:
    gateway.ledger.flush(timeout=1)
    return any(r["request_id"] == request_id for r in gateway.ledger.recent(100))


@pytest.mark.parametrize("stream", [True, False])
def test_hang_up_before_the_first_byte_cancels_the_upstream(setup: Setup, stream: bool) -> None:
    setup.upstream.script(Reply(delay_s=3.0))
    request_id = f"early-{stream}"
    body = {"model": "auto", "messages": [{"role": "user", "content": "slow"}], "stream": stream}
    with httpx.Client(timeout=httpx.Timeout(10, read=0.3)) as client:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up; leaving closes the socket
            client.post(f"{setup.url}/v1/chat/completions", json=body, headers={"x-request-id": request_id})
        assert setup.upstream.served == 1
    waited = wait_until(lambda: setup.upstream.abandoned == 1, 3.5, "the upstream request to be cancelled")
    assert waited < 1.0, f"the upstream kept working {waited:.2f}s after the client left"
    wait_until(lambda: _has_row(setup.gateway, request_id), 5, "the ledger row")
    row = ledger_row(setup.gateway, request_id)
    assert (row["status"], row["error_type"]) == (499, "client_closed")


@dataclass
class GoneBeforeTheAnswer:
    """Wraps the app: for requests marked ``x-test-gone: 1``, sending the response's start fails
    as uvicorn's send does once the client has disconnected (``ClientDisconnected`` is an
    ``OSError``), so the SSE events generator is never started."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (b"x-test-gone", b"1") not in scope.get("headers", []):
            await self.app(scope, receive, send)
            return

        async def gone(message: Any) -> None:
            raise OSError("the client disconnected")

        await self.app(scope, receive, gone)


def test_a_caller_gone_before_the_response_starts_frees_the_upstream_and_leaves_a_row(
    tmp_path: Path,
) -> None:
    with run_openai_standin(api_key="sk-up") as upstream:
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(tmp_path / "ledger.db"), "flush_interval_s": 0.05},
                "backends": {
                    "up": {"type": "openai_compat", "base_url": upstream.base_url, "model": "m",
                           "api_key_env": "UP_KEY", "timeout_s": 10},
                },
                "routes": {"auto": {"try": ["up"]}},
            }
        )  # fmt: skip
        app = create_app(config, env={"UP_KEY": "sk-up", "HYBRIDGATE_HMAC_SECRET": "s"})
        upstream.script(Reply(content=LONG, chunk_delay_s=CHUNK_DELAY_S))
        body = {"model": "auto", "messages": [{"role": "user", "content": LONG}], "stream": True}
        headers = {"x-request-id": "req_gone_early", "x-test-gone": "1"}
        with serve_in_thread(GoneBeforeTheAnswer(app)) as url, httpx.Client(timeout=10) as client:
            with pytest.raises(httpx.HTTPError):  # the server has nothing to answer on
                client.post(f"{url}/v1/chat/completions", json=body, headers=headers).raise_for_status()
            wait_until(lambda: upstream.abandoned == 1, 5, "the upstream stream to be closed")
            row = ledger_row(app.state.gateway, "req_gone_early")
    assert (row["status"], row["error_type"], row["stream"]) == (499, "client_closed", True)
