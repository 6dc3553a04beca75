"""Unauthenticated flood: tens of thousands of requests with made-up API keys against one gateway
with ``[auth] enabled = true``, while its memory is sampled. Prints JSON. Offline tool, never
imported by the gateway.

Set-up, all on 127.0.0.1: the real ``python -m hybridgate serve`` (tests/gateway_process.py) with
auth on and a SQLite key store; no upstream is needed, since no request gets past its key. Each
request carries a fresh random key: well-formed ones (``hg-<env>-<43 chars>``, an id no store
holds) and junk, spread over ``POST /v1/chat/completions``, ``GET /v1/models`` and
``POST /v1/messages/count_tokens``. After a warm-up the gateway's VmRSS is sampled every second.
Goal (issue 14): RSS growth < 5% from the end of the warm-up to the end of the run, every answer a
401. ``--compare-src`` runs the same flood against another source tree first (e.g. a checkout of
the previous commit) so both figures come from one run on the same machine.

    .venv/bin/python bench/unauth_flood.py                               # 40,000 requests
    .venv/bin/python bench/unauth_flood.py --compare-src /tmp/old/src    # the same, old code first
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import string
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load_driver import Progress
from bench.soak import Sample, memory_report, sample_rss
from tests.gateway_process import REPO, ledger_rows, run_gateway

ALPHABET = string.ascii_letters + string.digits
PEPPER = "bench-pepper-0123456789"
CHAT = orjson.dumps({"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})


def config(workdir: Path) -> str:
    return f"""environment = "prod"
[ledger]
path = "{workdir / "gw.db"}"
flush_interval_s = 0.2
[auth]
enabled = true
keys_path = "{workdir / "keys.db"}"
[backends.up]
type = "openai_compat"
base_url = "http://127.0.0.1:9/v1"
model = "m"
[routes.auto]
try = ["up"]
"""


def made_up_key(index: int) -> str:
    if index % 5 == 0:
        return "sk-" + secrets.token_hex(16)  # junk: refused before any lookup
    return "hg-prod-" + "".join(secrets.choice(ALPHABET) for _ in range(43))


def request_of(index: int) -> tuple[str, str, bytes | None]:
    kind = index % 3
    if kind == 0:
        return "POST", "/v1/chat/completions", CHAT
    if kind == 1:
        return "GET", "/v1/models", None
    return "POST", "/v1/messages/count_tokens", CHAT


async def flood(url: str, total: int, concurrency: int, progress: Progress, statuses: Counter[str]) -> None:
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            for index in counter:
                method, path, body = request_of(index)
                headers = {
                    "authorization": f"Bearer {made_up_key(index)}",
                    "content-type": "application/json",
                }
                try:
                    response = await client.request(method, path, content=body, headers=headers)
                    statuses[str(response.status_code)] += 1
                except httpx.TransportError as exc:
                    statuses[type(exc).__name__] += 1
                progress.done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def run(src: Path, requests: int, warmup: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="unauth-flood-") as tmp:
        workdir = Path(tmp)
        env = {"HYBRIDGATE_KEY_PEPPER": PEPPER}
        with run_gateway(config(workdir), workdir, env=env, src=src) as gateway:
            statuses: Counter[str] = Counter()
            asyncio.run(flood(gateway.url, warmup, concurrency, Progress(), statuses))
            progress, samples, stop = Progress(), list[Sample](), threading.Event()
            sampler = threading.Thread(
                target=sample_rss, args=(gateway, progress, stop, samples), daemon=True
            )
            sampler.start()
            started = time.monotonic()
            asyncio.run(flood(gateway.url, requests, concurrency, progress, statuses))
            elapsed = time.monotonic() - started
            time.sleep(1.5)  # one more sample, and the ledger writer's last flush
            stop.set()
            sampler.join()
            samples.append((elapsed, progress.done, gateway.rss_kb()))
        rows = len(ledger_rows(workdir / "gw.db"))
        ledger_bytes = sum(p.stat().st_size for p in workdir.glob("gw.db*"))
    return {
        "src": str(src),
        "requests": requests,
        "warmup": warmup,
        "concurrency": concurrency,
        "requests_per_s": round(requests / elapsed),
        "statuses": dict(statuses),
        "ledger_rows": rows,
        "ledger_bytes_per_row": round(ledger_bytes / max(rows, 1)),
        "memory": memory_report(samples, 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--warmup", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--compare-src", type=Path, help="another source tree to flood first, as a baseline")
    args = parser.parse_args()
    report: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0)), "load_avg_1m": os.getloadavg()[0]}
    if args.compare_src:
        report["baseline"] = run(args.compare_src.resolve(), args.requests, args.warmup, args.concurrency)
    report["this"] = run(REPO / "src", args.requests, args.warmup, args.concurrency)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
