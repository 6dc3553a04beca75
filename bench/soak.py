"""Soak: tens of thousands of requests through one gateway process while its memory is sampled.
Prints JSON. Offline tool, never imported by the gateway.

Set-up, all on 127.0.0.1: a stand-in upstream that never fails (bench/fault_upstream.py, the
OpenAI stand-in from tests/standins in its own process, not OpenAI), the real
``python -m hybridgate serve`` in front of it, and the closed-loop load driver
(bench/load_driver.py) with a share of streamed requests. The gateway's resident memory (VmRSS
from /proc/PID/status) is sampled every second. Goal (issue 9): RSS growth < 10% from the end of
the warm-up to the end of the run. Also reported: the trend after warm-up (KiB per 1,000
requests, a least-squares fit; a leak shows as a steady positive slope) and whether the ledger
holds one row per request after a SIGTERM.

    .venv/bin/python bench/soak.py                           # 30,000 requests, at most 280 s
    .venv/bin/python bench/soak.py --requests 100000 --max-seconds 1800
    .venv/bin/python bench/soak.py --features 1000000   # every request from a new feature tag
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fault_upstream import run_fault_upstream
from bench.load_driver import Progress, drive, summarize
from tests.gateway_process import GatewayProcess, free_port, ledger_rows, run_gateway, upstream_config

Sample = tuple[float, int, int]  # (seconds since start, requests done, RSS KiB)


def sample_rss(
    gateway: GatewayProcess, progress: Progress, stop: threading.Event, into: list[Sample]
) -> None:
    started = time.monotonic()
    while not stop.is_set():
        into.append((time.monotonic() - started, progress.done, gateway.rss_kb()))
        stop.wait(1.0)


def slope_kib_per_1k(samples: list[Sample]) -> float | None:
    """Least-squares slope of RSS against requests done, in KiB per 1,000 requests."""
    if len(samples) < 3:
        return None
    xs = [float(done) for _, done, _ in samples]
    ys = [float(rss) for _, _, rss in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * 1000


def memory_report(samples: list[Sample], warmup: int) -> dict[str, Any]:
    after = [s for s in samples if s[1] >= warmup]
    if len(after) < 2:
        return {"error": "too few samples after warm-up; raise --requests"}
    warm, end = after[0][2], samples[-1][2]
    return {
        "rss_start_kib": samples[0][2],
        "rss_warm_kib": warm,
        "rss_end_kib": end,
        "rss_peak_kib": max(s[2] for s in samples),
        "growth_pct": round((end - warm) / warm * 100, 2),
        "slope_kib_per_1k_requests": round(slope_kib_per_1k(after) or 0.0, 2),
        "samples": len(samples),
        "series": [
            {"t_s": round(t), "done": d, "rss_kib": r} for t, d, r in samples[:: max(1, len(samples) // 20)]
        ],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    warmup = args.warmup or max(1000, args.requests // 10)
    with tempfile.TemporaryDirectory(prefix="hg-soak-") as tmp, run_fault_upstream(free_port()) as upstream:
        workdir = Path(tmp)
        ledger = workdir / "ledger.db"
        with run_gateway(upstream_config(upstream, ledger, timeout_s=30), workdir) as gateway:
            samples: list[Sample] = []
            progress, stop = Progress(), threading.Event()
            sampler = threading.Thread(
                target=sample_rss, args=(gateway, progress, stop, samples), daemon=True
            )
            sampler.start()
            started = time.perf_counter()
            asyncio.run(
                drive(
                    gateway.url,
                    args.requests,
                    args.concurrency,
                    stream_share=args.stream_share,
                    progress=progress,
                    deadline_s=args.max_seconds,
                    features=args.features,
                )
            )
            elapsed = time.perf_counter() - started
            time.sleep(1.5)  # one more sample at rest
            stop.set()
            sampler.join()
            gateway.terminate()
            gateway.wait(timeout_s=60)
            tracebacks = gateway.output().count("Traceback")
        rows = len(ledger_rows(ledger))
    result = summarize(progress.outcomes, elapsed)
    result["memory"] = memory_report(samples, warmup)
    result["ledger_rows"] = rows
    result["ledger_rows_lost"] = progress.done - rows
    result["gateway_tracebacks"] = tracebacks
    growth = result["memory"].get("growth_pct")
    result["goal"] = {"rss_growth_pct_max": 10, "met": growth is not None and growth < 10}
    result["setup"] = {
        "requests_asked": args.requests,
        "warmup_requests": warmup,
        "concurrency": args.concurrency,
        "stream_share": args.stream_share,
        "max_seconds": args.max_seconds,
        "distinct_features": args.features,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stream-share", type=float, default=0.2)
    parser.add_argument("--warmup", type=int, default=0, help="requests before the baseline (default N/10)")
    parser.add_argument("--max-seconds", type=float, default=280.0)
    parser.add_argument(
        "--features", type=int, default=0, help="tag requests with this many distinct features (0: none)"
    )
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
