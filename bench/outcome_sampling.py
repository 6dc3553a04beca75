"""What outcome sampling costs the caller: client latency on a route that grades every answer
(``--percent``, default 100: the strong tier judging every answer) beside the same route without sampling.

Offline tool. Stand-ins on loopback (tests/standins/): ``cheap`` answers at once, ``strong``
answers after ``--judge-delay-ms`` (the judge is slow on purpose: the caller must not wait for
it). The gateway runs in this process (uvicorn in a thread) on a temporary SQLite ledger; requests
go one at a time over one keep-alive connection, alternating between the two routes in blocks of
20, so both see the same machine. Prints one JSON object: per route the client latency median and
p95 (ms), the ratio sampled/plain, and how many outcomes were stored.

    .venv/bin/python bench/outcome_sampling.py --requests 300 --judge-delay-ms 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import run_openai_standin
from tests.standins.openai_wire import Reply

BLOCK = 20


def config(cheap: str, strong: str, ledger: Path, percent: float) -> GatewayConfig:
    backend = {"type": "openai_compat", "model": "gpt-4o-mini", "provider": "openai", "timeout_s": 10}
    return GatewayConfig.model_validate(
        {
            "ledger": {"path": str(ledger)},
            "backends": {"cheap": {**backend, "base_url": cheap}, "strong": {**backend, "base_url": strong}},
            "routes": {
                "sampled": {"try": ["cheap", "strong"], "outcomes": {"sample_percent": percent}},
                "plain": {"try": ["cheap", "strong"]},
            },
            "default_route": "plain",
            "cache": {"mode": "off"},
        }
    )


def timed(client: httpx.Client, route: str, i: int) -> float:
    body = {"model": route, "messages": [{"role": "user", "content": f"question {i}: say hello"}]}
    start = time.perf_counter()
    reply = client.post("/v1/chat/completions", json=body)
    elapsed = (time.perf_counter() - start) * 1000
    reply.raise_for_status()
    return elapsed


def summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "median_ms": round(statistics.median(values), 3),
        "p95_ms": round(values[int(len(values) * 0.95) - 1], 3),
    }


def run(requests: int, judge_delay_ms: float, percent: float) -> dict[str, Any]:
    judge = Reply(content="GOOD\nsame answer", delay_s=judge_delay_ms / 1000)
    with (
        tempfile.TemporaryDirectory() as folder,
        run_openai_standin(record=False) as cheap,
        run_openai_standin(record=False, unscripted=lambda: judge) as strong,
    ):
        ledger = Path(folder) / "gw.db"
        app = create_app(config(cheap.base_url, strong.base_url, ledger, percent), env={})
        latencies: dict[str, list[float]] = {"sampled": [], "plain": []}
        with (
            serve_in_thread(app) as url,
            httpx.Client(base_url=url, timeout=30, headers={"authorization": "Bearer k"}) as client,
        ):
            for route in latencies:  # warm-up: connections, the first ledger batch
                timed(client, route, -1)
            i = 0
            while len(latencies["plain"]) < requests:
                for route, values in latencies.items():
                    for _ in range(BLOCK):
                        values.append(timed(client, route, i))
                        i += 1
            deadline = time.monotonic() + 60  # let grading finish before counting its rows
            while app.state.gateway.outcomes._tasks and time.monotonic() < deadline:
                time.sleep(0.1)
        with sqlite3.connect(ledger) as conn:
            stored, cost = conn.execute("SELECT COUNT(*), SUM(judge_cost_usd) FROM outcomes").fetchone()
    sampled, plain = summary(latencies["sampled"]), summary(latencies["plain"])
    return {
        "requests_per_route": len(latencies["plain"]),
        "judge_delay_ms": judge_delay_ms,
        "sample_percent": percent,
        "sampled": sampled,
        "plain": plain,
        "median_ratio_sampled_to_plain": round(sampled["median_ms"] / plain["median_ms"], 3),
        "outcomes_stored": stored,
        "judge_cost_usd": round(cost or 0.0, 6),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        "date": time.strftime("%Y-%m-%d"),
    }


def observe_cost(calls: int = 20_000) -> dict[str, float]:
    """``OutcomeSampler.observe`` on an answer it does not sample: what every answer pays."""
    import asyncio
    import random

    from prometheus_client import CollectorRegistry

    from hybridgate.ledger.decision_metrics import DecisionMetrics
    from hybridgate.ledger.outcomes import SqliteOutcomes
    from hybridgate.pipeline.outcomes import LiveAnswer, OutcomeSampler
    from hybridgate.types import ChatRequest, Decision, Message, RequestContext

    settings = config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", Path("unused.db"), 0)
    router: Any = type("NoLearned", (), {"learned": {}})()
    metrics = DecisionMetrics(CollectorRegistry(), lambda feature: "none")
    sampler = OutcomeSampler(settings, None, SqliteOutcomes(":memory:"), router, metrics, random.Random(0))  # type: ignore[arg-type]
    text = "Dana buys 14 boxes of 25 pencils and gives away 9. How many are left?"
    request = ChatRequest(model="sampled", messages=[Message(role="user", content=text)])
    decision = Decision(route="sampled", backends=("cheap", "strong"), rule="default", reasons=())

    async def measure() -> list[float]:
        times = []
        for i in range(calls):
            answer = LiveAnswer(
                request, RequestContext(request_id=f"r{i}"), decision, "cheap", "x", False, False, None
            )
            start = time.perf_counter()
            sampler.observe(answer)
            times.append((time.perf_counter() - start) * 1e6)
        return sorted(times)

    times = asyncio.run(measure())
    return {"median_us": round(statistics.median(times), 2), "p99_us": round(times[int(calls * 0.99)], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per route")
    parser.add_argument("--judge-delay-ms", type=float, default=50.0)
    parser.add_argument("--percent", type=float, default=100.0, help="the sampled route's sample_percent")
    args = parser.parse_args()
    report = run(args.requests, args.judge_delay_ms, args.percent)
    report["observe_unsampled"] = observe_cost()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
