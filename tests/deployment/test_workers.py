"""``hybridgate serve --workers 2``: several processes serve one port and share the ledger.
The upstream is an OpenAI-compatible stand-in on loopback (not OpenAI)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.gateway_process import ledger_rows, run_gateway, upstream_config
from tests.standins.openai_upstream import run_openai_standin


def worker_pids(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return {int(pid) for pid in children}


def test_two_workers_serve_and_record_every_request(tmp_path: Path) -> None:
    ledger = tmp_path / "gw.db"
    with (
        run_openai_standin(api_key="sk-up") as upstream,
        run_gateway(upstream_config(upstream.base_url, ledger), tmp_path, args=["--workers", "2"]) as gateway,
    ):
        deadline = time.monotonic() + 30
        while len(worker_pids(gateway.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(worker_pids(gateway.pid)) >= 2
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}

        def ask(i: int) -> int:
            with httpx.Client() as client:  # a new connection each time, so both workers take some
                reply = client.post(
                    f"{gateway.url}/v1/chat/completions", json=body, headers={"x-request-id": f"w-{i}"}
                )
            return reply.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(ask, range(40)))
        assert statuses == [200] * 40
        os.kill(gateway.pid, signal.SIGTERM)
        gateway.process.wait(timeout=60)
    rows = [r for r in ledger_rows(ledger) if r[0].startswith("w-")]
    assert sorted(r[0] for r in rows) == sorted(f"w-{i}" for i in range(40))
