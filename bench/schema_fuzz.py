"""Fuzz the embedded path with generated JSON Schemas through a real gateway process. Prints JSON.

The big run behind issue 14's acceptance (the default suite runs 40 examples of the same
fuzzer: tests/backends/test_embedded_hostile.py). Hypothesis generates ``--schemas`` hostile
schemas (tests/schema_strategies.py: quotes, backslashes and NUL in names and literals, empty
combinators, unknown types, huge bounds, unreadable regexes, $refs that do not resolve or name an
SSRF canary on loopback). Each goes to ``python -m hybridgate serve`` (route ``auto`` = the
embedded SmolLM2, nothing stand-in) once, every other one as ``response_format`` and the rest
as a forced tool's ``parameters``, ``max_tokens`` 2, from ``--concurrency`` client threads. Meanwhile a prober
GETs ``/healthz`` every 50 ms. Counted: statuses, engine crashes (502 ``engine_crashed``),
gateway exits, engine processes started, canary connections, and ``/healthz`` latency.
Goal: 0 gateway exits, 0 5xx, ``/healthz`` answering throughout, 0 canary connections.

    .venv/bin/python bench/schema_fuzz.py                  # 5,000 schemas
    .venv/bin/python bench/schema_fuzz.py --schemas 500    # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.canary import run_canary
from tests.embedded_gateway import engine_pids, run_embedded_gateway
from tests.gateway_process import GatewayProcess
from tests.schema_strategies import json_schemas


def generate(count: int, canary_url: str) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    @settings(
        max_examples=count * 3,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(json_schemas(canary_url))
    def collect(schema: dict[str, Any]) -> None:
        if len(found) < count:
            found.setdefault(json.dumps(schema, sort_keys=True), schema)

    collect()
    return list(found.values())


def body(schema: dict[str, Any], index: int) -> dict[str, Any]:
    """Even schemas as ``response_format``, odd ones as a forced tool's ``parameters``."""
    base = {"model": "auto", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    if index % 2 == 0:
        return {
            **base,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        }
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    return {**base, "tools": [tool], "tool_choice": {"type": "function", "function": {"name": "f"}}}


class Prober:
    """GET /healthz every 50 ms until stopped; keeps latencies and failures."""

    def __init__(self, url: str) -> None:
        self.url, self.failures = url, 0
        self.latencies_ms: list[float] = []
        self.engines: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
                else:
                    self.failures += 1
                time.sleep(0.05)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def attack(
    gateway: GatewayProcess, schemas: list[dict[str, Any]], concurrency: int, prober: Prober
) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def send(numbered: tuple[int, dict[str, Any]]) -> None:
        with httpx.Client(base_url=gateway.url, timeout=120) as client:
            try:
                response = client.post("/v1/chat/completions", json=body(numbered[1], numbered[0]))
                key = str(response.status_code)
                if response.status_code >= 500:
                    key += f":{(response.json().get('error') or {}).get('code')}"
            except httpx.HTTPError as exc:
                key = f"transport:{type(exc).__name__}"
        with lock:
            outcomes[key] += 1
            prober.engines.update(engine_pids(gateway.pid))

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, enumerate(schemas)))
    return outcomes


def run(args: argparse.Namespace) -> dict[str, Any]:
    with run_canary() as canary, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        schemas = generate(args.schemas, canary.url)
        generated_s = time.perf_counter() - started
        with run_embedded_gateway(Path(tmp)) as gateway, Prober(gateway.url) as prober:
            prober.engines.update(engine_pids(gateway.pid))
            started = time.perf_counter()
            outcomes = attack(gateway, schemas, args.concurrency, prober)
            elapsed = time.perf_counter() - started
            alive = gateway.process.poll() is None
        latencies = sorted(prober.latencies_ms)
        return {
            "bench": "schema_fuzz",
            "machine": f"{platform.machine()} python {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "schemas": len(schemas),
            "requests": sum(outcomes.values()),
            "generate_s": round(generated_s, 1),
            "attack_s": round(elapsed, 1),
            "statuses": dict(sorted(outcomes.items())),
            "responses_5xx": sum(n for k, n in outcomes.items() if k[0] == "5" or k.startswith("transport")),
            "gateway_exits": 0 if alive else 1,
            "engine_processes_seen": len(prober.engines),
            "canary_connections": len(canary.hits),
            "healthz": {
                "probes": len(latencies),
                "failures": prober.failures,
                "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
                "p99_ms": round(statistics.quantiles(latencies, n=100)[98], 2)
                if len(latencies) > 1
                else None,
                "max_ms": round(latencies[-1], 2) if latencies else None,
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schemas", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
