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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hg-replicas-") as tmp, ExitStack() as stack:
        servers = [stack.enter_context(run_fault_upstream(free_port())) for _ in range(args.servers)]
        workdir = Path(tmp)
        with run_gateway(pool_config(servers, workdir / "ledger.db", args.privacy), workdir) as gateway:
            rss_start = gateway.rss_kb()
            started = time.perf_counter()
            progress = asyncio.run(
                drive(gateway.url, args.requests, args.concurrency, stream_share=args.stream_share)
            )
            elapsed = time.perf_counter() - started
            rss_end = gateway.rss_kb()
    result = summarize(progress.outcomes, elapsed)
    result["gateway_rss_kib"] = {"at_start": rss_start, "after_run": rss_end}
    result["setup"] = {
        "servers": args.servers,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "stream_share": args.stream_share,
        "privacy_ner_model": args.privacy,
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
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
