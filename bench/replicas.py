"""Sizing numbers for docs/operations.md: one gateway process in front of a pool of servers.

Offline tool, never imported by the gateway. Prints JSON. Set-up, all on 127.0.0.1: ``--servers``
stand-in upstreams that never fail (bench/fault_upstream.py, the OpenAI stand-in from
tests/standins in its own process each: not vLLM, not OpenAI, answering at once), the real
``python -m hybridgate serve`` with one ``openai_compat`` backend listing them as ``replicas``,
and the closed-loop load driver (bench/load_driver.py). Reported: requests per second and
latency as the client sees them, and the gateway's resident memory (VmRSS) at start, and after
the run. What it measures is the gateway's own cost per request (the upstreams answer at once);
with a real engine the engine is the bottleneck long before the gateway.

    .venv/bin/python bench/replicas.py                          # 2 servers, 3000 requests, c=8
    .venv/bin/python bench/replicas.py --servers 1 --concurrency 32
    .venv/bin/python bench/replicas.py --privacy none             # with the PII scanner (patterns)
    .venv/bin/python bench/replicas.py --servers 1 --gateway-cpu 0  # the gateway alone on CPU 0

``--gateway-cpu N`` pins the gateway process (every thread) to CPU N and this process and the
stand-ins to the other CPUs, so the requests per second are one core's; ``gateway_cpu_ms_per_request``
(the gateway's user+system CPU time over the run, from /proc, divided by the requests) is the
figure to size from on a shared machine: 1000 / it is what one fully busy core can serve.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fault_upstream import run_fault_upstream
from bench.load_driver import drive, summarize
from tests.gateway_process import free_port, run_gateway

PRIVACY = """[privacy]
policy = "allow"
ner_model = "{ner}"
"""


def pool_config(servers: list[str], ledger: Path, ner_model: str | None) -> str:
    replicas = ", ".join(f'"{url}"' for url in servers[1:])
    return f"""environment = "bench"
[ledger]
path = "{ledger}"
[backends.local]
type = "openai_compat"
base_url = "{servers[0]}"
replicas = [{replicas}]
model = "gpt-4o-mini"
api_key_env = "UP_KEY"
local = true
health_path = "/v1/models"
timeout_s = 30
[routes.auto]
try = ["local"]
""" + (PRIVACY.format(ner=ner_model) if ner_model else "")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (all its threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.gateway_cpu is not None:  # everything but the gateway on the other CPUs
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - {args.gateway_cpu})
    with tempfile.TemporaryDirectory(prefix="hg-replicas-") as tmp, ExitStack() as stack:
        servers = [stack.enter_context(run_fault_upstream(free_port())) for _ in range(args.servers)]
        workdir = Path(tmp)
        with run_gateway(pool_config(servers, workdir / "ledger.db", args.privacy), workdir) as gateway:
            if args.gateway_cpu is not None:
                pin = ["taskset", "-a", "-cp", str(args.gateway_cpu), str(gateway.pid)]
                subprocess.run(pin, check=True, capture_output=True)
            rss_start = gateway.rss_kb()
            cpu_start = cpu_seconds(gateway.pid)
            started = time.perf_counter()
            progress = asyncio.run(
                drive(gateway.url, args.requests, args.concurrency, stream_share=args.stream_share)
            )
            elapsed = time.perf_counter() - started
            cpu_used = cpu_seconds(gateway.pid) - cpu_start
            rss_end = gateway.rss_kb()
    result = summarize(progress.outcomes, elapsed)
    result["gateway_rss_kib"] = {"at_start": rss_start, "after_run": rss_end}
    result["gateway_cpu_ms_per_request"] = round(cpu_used * 1000 / args.requests, 3)
    result["setup"] = {
        "servers": args.servers,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "stream_share": args.stream_share,
        "privacy_ner_model": args.privacy,
        "gateway_cpu": args.gateway_cpu,
        "cpus": os.cpu_count(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stream-share", type=float, default=0.2)
    parser.add_argument(
        "--privacy", metavar="NER", help='scan prompts for PII: "none" (patterns only) or a spaCy model'
    )
    parser.add_argument("--gateway-cpu", type=int, help="pin the gateway to this CPU, the rest elsewhere")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
