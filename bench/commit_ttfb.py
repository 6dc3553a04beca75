"""What a stream's commit point costs in time to first byte. Prints JSON.

Offline tool, never imported by the gateway. Everything on 127.0.0.1: the shared rig's stand-in
upstream (``../shared/bench/gateway/upstream.py``, not OpenAI; 20 content chunks, ``--chunk-delay-ms``
between them) and two real ``python -m hybridgate serve`` processes with the same route of two
backends (so the first has a fallback): one holds streams until the commit point (the route's
``commit_tokens`` / ``commit_ms``, defaults unless given), the other does not (``commit_tokens =
0``). Sequential streamed requests alternate between the two; the time to the first content
delta and to the end of the stream are measured by the client.

    .venv/bin/python bench/commit_ttfb.py --chunk-delay-ms 0,20 --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tail_latency import RIG, free_port, wait_http

CONFIG = """environment = "bench"
default_route = "auto"
[ledger]
path = "{ledger}"
[backends.up]
type = "openai_compat"
base_url = "http://127.0.0.1:{upstream}/v1"
model = "fake-model"
provider = "openai"
[backends.spare]
type = "openai_compat"
base_url = "http://127.0.0.1:{upstream}/v1"
model = "fake-model"
provider = "openai"
[routes.auto]
try = ["up", "spare"]
{commit}
"""


def one(client: httpx.Client, url: str) -> tuple[float, float]:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    started = time.perf_counter()
    first = None
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - started) * 1000, (end - started) * 1000


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    }


def run_delay(delay_ms: float, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    up_port = free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(RIG / "upstream.py"),
                "--port",
                str(up_port),
                "--chunk-delay-ms",
                str(delay_ms),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    urls = {}
    variants = {"held": args.commit, "not_held": "commit_tokens = 0"}
    try:
        wait_http(f"http://127.0.0.1:{up_port}/health")
        for name, commit in variants.items():
            folder = work / f"{name}-{delay_ms}"
            folder.mkdir()
            config = folder / "hg.toml"
            config.write_text(CONFIG.format(ledger=folder / "l.db", upstream=up_port, commit=commit))
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "hybridgate",
                        "serve",
                        "--config",
                        str(config),
                        "--port",
                        str(port),
                    ],
                    env={**os.environ, "PYTHONPATH": str(Path(args.src).resolve())},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            urls[name] = f"http://127.0.0.1:{port}"
            wait_http(f"{urls[name]}/healthz")
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
        with httpx.Client(timeout=30) as client:
            for name in urls:
                for _ in range(10):
                    one(client, urls[name])  # warm-up
            for _ in range(args.requests):
                for name, url in urls.items():
                    times[name].append(one(client, url))
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    result: dict[str, Any] = {}
    for name, pairs in times.items():
        result[name] = {"ttfb_ms": summary([t for t, _ in pairs]), "total_ms": summary([t for _, t in pairs])}
    result["ttfb_added_p50_ms"] = round(
        result["held"]["ttfb_ms"]["p50"] - result["not_held"]["ttfb_ms"]["p50"], 2
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--chunk-delay-ms", default="0,20")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--commit", default="", help="TOML lines for [routes.auto], e.g. 'commit_tokens = 2'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hg-commit-") as tmp:
        results = {
            f"chunk_delay_{d}ms": run_delay(float(d), args, Path(tmp)) for d in args.chunk_delay_ms.split(",")
        }
    results["setup"] = {
        "requests_per_variant": args.requests,
        "commit": args.commit or "defaults",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
