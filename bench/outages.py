"""Outages behind the shipped nginx: what callers see when a shared store hangs or a replica dies.

Offline tool, never imported by the gateway. Prints JSON. Set-up, all on 127.0.0.1: a real
PostgreSQL (keys and ledger) and a real Redis (cache and limits) from tests/, ``--replicas`` real
``python -m hybridgate serve`` processes with auth on, the shipped deploy/nginx/nginx.conf run by
Debian's nginx in front (tests/nginx_server.py), and one stand-in upstream answering at once
(bench/fault_upstream.py: the OpenAI stand-in, not OpenAI). The load is open-loop: ``--requests``
requests at a steady ``--rate`` per second, each a cacheable (temperature 0) question of its own,
through nginx with one valid key. At a quarter of each run the scenario's fault starts:

- ``calm``: none (the baseline, measured in the same run);
- ``postgres-hung``: PostgreSQL SIGSTOPped (connections accepted, nothing answered) for ``--hang-s``;
- ``redis-hung``: Redis SIGSTOPped for ``--hang-s``;
- ``restart-while-postgres-down``: PostgreSQL stopped, one replica restarted on its port, and
  PostgreSQL started again ``--hang-s`` later;
- ``replica-sigkill``: one replica SIGKILLed (not restarted).

``--health-port on`` gives each replica a ``[server] health_port`` (its serving port opens only
once ready, docs/operations.md); ``off`` runs without one (as before it existed); ``both`` runs
the scenarios on a stack of each kind, one after the other, and reports them side by side.

Reported per scenario: client errors (by status, and whether the body was JSON), p50/p99/max
latency, and the same for the calm run, so the ratio is read side by side.

    .venv/bin/python bench/outages.py --rate 12           # 3 replicas, 2000 requests per scenario
    .venv/bin/python bench/outages.py --scenarios calm,redis-hung --requests 600
    .venv/bin/python bench/outages.py --rate 12 --health-port both \
        --scenarios calm,restart-while-postgres-down
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fault_upstream import run_fault_upstream
from bench.load_driver import percentile
from hybridgate.auth.pg_keys import PostgresKeyStore
from tests.gateway_process import GatewayProcess, free_port, run_gateway, upstream_config
from tests.nginx_server import run_nginx
from tests.postgres_server import PostgresServer, run_postgres
from tests.redis_server import RedisServer, running_redis

PEPPER = "bench-outages-pepper-0123456789"
SCENARIOS = ["calm", "postgres-hung", "redis-hung", "restart-while-postgres-down", "replica-sigkill"]


@dataclass
class Result:
    at_s: float
    latency_s: float
    status: int  # 0: no HTTP answer at all
    json_body: bool


class Stack:
    """PostgreSQL, Redis, the replicas and nginx; replicas can be restarted on their ports."""

    def __init__(self, stack: ExitStack, workdir: Path, replicas: int, health_ports: bool) -> None:
        self._stack = stack
        self._workdir = workdir
        self.health_ports = [free_port() for _ in range(replicas)] if health_ports else []
        self.postgres: PostgresServer = stack.enter_context(run_postgres())
        self.redis: RedisServer = stack.enter_context(running_redis())
        self.upstream = stack.enter_context(run_fault_upstream(free_port()))
        self.ports = [free_port() for _ in range(replicas)]
        self.replicas: list[GatewayProcess] = [self.start_replica(i) for i in range(replicas)]
        self.nginx = stack.enter_context(run_nginx(self.ports))
        store = PostgresKeyStore(self.postgres.dsn, PEPPER.encode())
        self.key, _ = store.create(environment="bench", name="bench", rpm=1_000_000)

    def config(self, index: int) -> str:
        workdir = self._workdir / f"replica-{index}"
        workdir.mkdir(exist_ok=True)
        base = upstream_config(self.upstream, workdir / "ledger.db").replace('"test"', '"bench"', 1)
        ledger = f'[ledger]\nstore = "postgres"\nspool_path = "{workdir}/spool.jsonl"\n'
        server = f"[server]\nhealth_port = {self.health_ports[index]}\n" if self.health_ports else ""
        return (
            base.replace("[ledger]\n", ledger)
            + server
            + (
                f'[redis]\nurl = "{self.redis.url}"\n[cache]\nstore = "redis"\n'
                f'[postgres]\ndsn = "{self.postgres.dsn}"\n'
                '[auth]\nenabled = true\nkeys_store = "postgres"\nlimits_store = "redis"\n'
            )
        )

    def start_replica(self, index: int) -> GatewayProcess:
        workdir = self._workdir / f"replica-{index}"
        workdir.mkdir(exist_ok=True)
        env = {"HYBRIDGATE_KEY_PEPPER": PEPPER}
        return self._stack.enter_context(
            run_gateway(
                self.config(index),
                workdir,
                env=env,
                port=self.ports[index],
                health_port=self.health_ports[index] if self.health_ports else None,
            )
        )

    def settle(self, timeout_s: float = 60) -> None:
        """Wait until every live replica is ready and no longer degraded."""
        deadline = time.monotonic() + timeout_s
        for replica in self.replicas:
            while replica.process.poll() is None and time.monotonic() < deadline:
                try:
                    ready = httpx.get(f"{replica.url}/readyz", timeout=5).status_code == 200
                    calm = not httpx.get(f"{replica.url}/healthz", timeout=5).json()["degraded"]
                except httpx.HTTPError:
                    ready = calm = False
                if ready and calm:
                    break
                time.sleep(0.5)


async def one(client: httpx.AsyncClient, key: str, index: int, started: float) -> Result:
    body = {
        "model": "auto",
        "temperature": 0,
        "messages": [{"role": "user", "content": f"q {index} {started}"}],
    }
    sent = time.monotonic()
    try:
        answer = await client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        is_json = answer.headers.get("content-type", "").startswith("application/json")
        return Result(sent - started, time.monotonic() - sent, answer.status_code, is_json)
    except httpx.HTTPError:
        return Result(sent - started, time.monotonic() - sent, 0, False)


async def drive(url: str, key: str, requests: int, rate: float) -> list[Result]:
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.monotonic()
        tasks = []
        for index in range(requests):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, key, index, started)))
        return list(await asyncio.gather(*tasks))


def fault(stack: Stack, scenario: str, hang_s: float) -> None:
    """Run the scenario's fault (in a thread, while the load runs)."""
    if scenario == "postgres-hung":
        stack.postgres.pause()
        time.sleep(hang_s)
        stack.postgres.resume()
    elif scenario == "redis-hung":
        stack.redis.pause()
        time.sleep(hang_s)
        stack.redis.resume()
    elif scenario == "restart-while-postgres-down":
        stack.postgres.stop()
        old = stack.replicas[0]
        old.terminate()
        old.wait(60)
        # returns once it answers /healthz (or /livez on its health port): without a health port
        # it serves (or 503s) now; with one its serving port stays closed until PostgreSQL is back
        stack.replicas[0] = stack.start_replica(0)
        time.sleep(hang_s)
        stack.postgres.start()
    elif scenario == "replica-sigkill":
        stack.replicas[-1].process.send_signal(signal.SIGKILL)


def latency(results: list[Result]) -> dict[str, Any]:
    latencies = sorted(r.latency_s * 1000 for r in results)
    if not latencies:
        return {"requests": 0}
    return {
        "p50": round(percentile(latencies, 50), 1),
        "p99": round(percentile(latencies, 99), 1),
        "max": round(latencies[-1], 1),
        "over_50ms": sum(1 for x in latencies if x > 50),
    }


def summary(results: list[Result], window: tuple[float, float]) -> dict[str, Any]:
    """Errors and latency over the run, and latency apart for the requests sent in ``window``
    (the fault's seconds, the same seconds of the calm run) and the others."""
    errors = [r for r in results if r.status != 200]
    inside = [r for r in results if window[0] <= r.at_s < window[1]]
    return {
        "requests": len(results),
        "client_errors": len(errors),
        "errors_by_status": dict(Counter(str(r.status) for r in errors)),
        "errors_not_json": sum(1 for r in errors if not r.json_body),
        "latency_ms": latency(results),
        "latency_ms_in_fault_window": latency(inside) | {"requests": len(inside)},
        "latency_ms_outside_it": latency([r for r in results if not window[0] <= r.at_s < window[1]]),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    modes = ["off", "on"] if args.health_port == "both" else [args.health_port]
    report: dict[str, Any] = {f"health_port_{mode}": run_stack(args, mode == "on") for mode in modes}
    report["setup"] = {
        "replicas": args.replicas,
        "requests": args.requests,
        "rate_per_s": args.rate,
        "hang_s": args.hang_s,
        "cpus": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    return report


def run_stack(args: argparse.Namespace, health_ports: bool) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hg-outages-") as tmp, ExitStack() as stack:
        bench = Stack(stack, Path(tmp), args.replicas, health_ports)
        for scenario in args.scenarios.split(","):
            bench.settle()
            at_s = args.requests / args.rate / 4
            timer = threading.Timer(at_s, fault, (bench, scenario, args.hang_s))
            timer.start()
            results = asyncio.run(drive(bench.nginx.url, bench.key, args.requests, args.rate))
            timer.join()
            window = (at_s, at_s + args.hang_s + 2)  # + 2 s: the recovery
            report[scenario] = summary(results, window) | {"fault_at_s": round(at_s, 1)}
            print(json.dumps({scenario: report[scenario], "health_port": health_ports}), file=sys.stderr)
    calm = report.get("calm")
    if calm:
        for numbers in report.values():
            numbers["p99_vs_calm"] = round(numbers["latency_ms"]["p99"] / calm["latency_ms"]["p99"], 2)
    return report


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers it started, too
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--hang-s", type=float, default=20.0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--health-port", choices=["on", "off", "both"], default="on")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
