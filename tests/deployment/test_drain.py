"""SIGTERM while requests are in flight: the gateway drains them and flushes every ledger row.

The gateway is the real ``python -m hybridgate serve`` in a child process (tests/gateway_process.py).
Its upstream is the OpenAI stand-in from tests/standins (a test server, not OpenAI), run in this
process and scripted to answer slowly, so that SIGTERM lands while every request is waiting on it
and the streams are part-way through.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway_process import GatewayProcess, ledger_rows, run_gateway, upstream_config
from tests.standins.openai_upstream import OpenAIStandIn, Reply, run_openai_standin
from tests.waiting import wait_until

IN_FLIGHT = 12  # half non-streaming, half streaming
WORDS = " ".join(f"w{i}" for i in range(12))  # echoed back one chunk per word


@pytest.fixture
def slow_upstream() -> Iterator[OpenAIStandIn]:
    # 0.5 s to the first byte, then 0.15 s per chunk: streams are mid-way when SIGTERM lands.
    with run_openai_standin(api_key="sk-up", unscripted=lambda: Reply(delay_s=0.5, chunk_delay_s=0.15)) as up:
        yield up


def call(url: str, index: int, results: dict[int, httpx.Response | BaseException]) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": WORDS}], "stream": index % 2 == 1}
    headers = {"x-request-id": f"drain-{index}"}
    try:
        with httpx.Client(timeout=30) as client:
            response = client.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            response.read()
            results[index] = response
    except BaseException as exc:  # recorded and asserted on in the test's thread
        results[index] = exc




def refuses_connections(gateway: GatewayProcess) -> bool:
    port = int(gateway.url.rsplit(":", 1)[1])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    return False


def assert_answered_in_full(response: httpx.Response | BaseException, streamed: bool) -> None:
    assert isinstance(response, httpx.Response), f"request failed during the drain: {response!r}"
    assert response.status_code == 200, response.text
    if streamed:
        assert response.text.endswith("data: [DONE]\n\n"), response.text[-300:]
        assert response.text.count("\n\ndata: ") >= len(WORDS.split())
    else:
        assert response.json()["choices"][0]["message"]["content"] == f"echo: {WORDS}"


def test_sigterm_drains_in_flight_requests_and_loses_no_ledger_rows(
    slow_upstream: OpenAIStandIn, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    with run_gateway(upstream_config(slow_upstream.base_url, ledger), tmp_path) as gateway:
        results: dict[int, httpx.Response | BaseException] = {}
        threads = [threading.Thread(target=call, args=(gateway.url, i, results)) for i in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        wait_until(lambda: slow_upstream.served == IN_FLIGHT, 10, "every request to reach the upstream")
        gateway.terminate()
        # It stops accepting new connections at once, while the old ones are still being served.
        wait_until(lambda: refuses_connections(gateway), 5, "the gateway to close its listening socket")
        assert len(results) < IN_FLIGHT, "the requests finished before the drain could be observed"
        for thread in threads:
            thread.join(timeout=30)
        exit_code = gateway.wait(timeout_s=30)
    # uvicorn re-raises the SIGTERM it caught once the drain is done, so -SIGTERM is a clean exit.
    assert exit_code in (0, -signal.SIGTERM), gateway.output()
    for index in range(IN_FLIGHT):
        assert_answered_in_full(results[index], streamed=index % 2 == 1)
    rows = ledger_rows(ledger)
    assert sorted(r[0] for r in rows) == sorted(f"drain-{i}" for i in range(IN_FLIGHT))
    assert {(status, error) for _, status, error in rows} == {(200, None)}
    assert "Traceback" not in gateway.output()
