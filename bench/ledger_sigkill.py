"""The ledger's SIGKILL loss window, measured: docs/ledger.md quotes this.

Offline tool, never imported by the gateway. Prints JSON. Set-up, all on 127.0.0.1: a throwaway
PostgreSQL from Debian's packages (tests/postgres_server.py), the OpenAI stand-in upstream from
tests/standins (not OpenAI, answers at once), and the real ``python -m hybridgate serve`` with
``[ledger] store = "postgres"``. ``--concurrency`` clients send requests for ``--seconds``, then the
gateway gets SIGKILL. Every request that got a 200 before the kill should have a row; the ones
that don't are the loss, and their age at the kill (kill time minus response time) is the window
actually lost. ``--outage`` stops PostgreSQL first, so the rows go to the spool file instead.

    .venv/bin/python bench/ledger_sigkill.py
    .venv/bin/python bench/ledger_sigkill.py --flush-interval-s 0.1 --outage
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybridgate.ledger.spool import Spool
from tests.gateway_process import run_gateway, upstream_config
from tests.postgres_server import run_postgres
from tests.standins.openai_upstream import run_openai_standin


def config(upstream_url: str, workdir: Path, dsn: str, flush_interval_s: float) -> str:
    base = upstream_config(upstream_url, workdir / "unused.db")
    base = base.replace("flush_interval_s = 0.05", f"flush_interval_s = {flush_interval_s}")
    ledger = f'[ledger]\nstore = "postgres"\nspool_path = "{workdir / "spool.jsonl"}"\n'
    return base.replace("[ledger]\n", ledger) + f'[postgres]\ndsn = "{dsn}"\n'


async def load(url: str, concurrency: int, seconds: float) -> dict[str, float]:
    """request_id -> wall time its 200 arrived, for every request answered in ``seconds``."""
    answered: dict[str, float] = {}
    stop_at = time.monotonic() + seconds
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}

    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            i = 0
            while time.monotonic() < stop_at:
                rid = f"k{n}-{i}"
                reply = await client.post("/v1/chat/completions", json=body, headers={"x-request-id": rid})
                if reply.status_code == 200:
                    answered[rid] = time.time()
                i += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return answered


async def stored(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {str(r[0]) for r in await conn.fetch("SELECT request_id FROM requests")}
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="hg-sigkill-") as tmp,
        run_postgres() as pg,
        run_openai_standin(api_key="sk-up") as upstream,
    ):
        workdir = Path(tmp)
        with run_gateway(config(upstream.base_url, workdir, pg.dsn, args.flush_interval_s), workdir) as gw:
            if args.outage:
                pg.stop()
            answered = asyncio.run(load(gw.url, args.concurrency, args.seconds))
            killed_at = time.time()
            os.kill(gw.pid, signal.SIGKILL)
            gw.wait(timeout_s=10)
        if args.outage:
            pg.start()
        rows = asyncio.run(stored(pg.dsn))
        spooled = {rec.request_id for _, rec in _spooled(workdir / "spool.jsonl")}
    lost = [rid for rid in answered if rid not in rows and rid not in spooled]
    ages = sorted(killed_at - answered[rid] for rid in lost)
    return {
        "answered_200": len(answered),
        "requests_per_s": round(len(answered) / args.seconds, 1),
        "in_postgres": len(rows & answered.keys()),
        "in_spool": len(spooled & answered.keys()),
        "lost": len(lost),
        "lost_max_age_s": round(ages[-1], 3) if ages else None,
        "lost_min_age_s": round(ages[0], 3) if ages else None,
        "setup": vars(args) | {"cpus": os.cpu_count()},
    }


def _spooled(path: Path) -> list[Any]:
    if not path.exists():
        return []
    rows: list[Any] = []

    async def keep(batch: list[Any]) -> None:
        rows.extend(batch)

    asyncio.run(Spool(str(path)).replay(keep))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--flush-interval-s", type=float, default=0.5)
    parser.add_argument("--outage", action="store_true", help="stop PostgreSQL first: rows go to the spool")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
