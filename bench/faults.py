"""Fault-injection measurement: what the client sees when one upstream fails 20% of requests, with
a fallback on the route or without one. Prints JSON. Offline tool, never imported by the gateway.

Set-up, all on 127.0.0.1: two fault-injecting stand-in upstreams (bench/fault_upstream.py, the
OpenAI stand-in from tests/standins in its own process, not OpenAI): ``flaky`` fails
``--fail-rate`` of its requests (500, 503, timeouts past the backend's ``timeout_s``, an HTML
page instead of JSON, a dropped connection, and for streams faults just after the first chunk and
mid-stream: see that file), ``backup`` never fails. The gateway is the real ``python -m hybridgate
serve`` with ``routes.auto.try = ["flaky", "backup"]`` (``--no-fallback``: ``["flaky"]``). The load driver
(bench/load_driver.py) sends ``--requests`` at ``--concurrency`` and counts every answer that is
not a complete 200 as a client-visible error. Goal (issue 9): error rate <= 0.1%.

    .venv/bin/python bench/faults.py                     # 2000 requests, concurrency 8, 20% faults
    .venv/bin/python bench/faults.py --stream-share 0.5  # half of them streamed
    .venv/bin/python bench/faults.py --flaky-config 'retries = 1'   # extra keys for [backends.flaky]
    .venv/bin/python bench/faults.py --stream-share 0.5 --no-fallback  # the route has only flaky

Streams that failed are told apart: ``stream_error_event`` (ended by an error event, as the
gateway does past a stream's commit point) and ``stream_incomplete`` (cut without one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fault_upstream import FAULTS, run_fault_upstream
from bench.load_driver import drive, summarize
from tests.gateway_process import free_port, ledger_rows, run_gateway

CONFIG = """environment = "bench"
[ledger]
path = "{ledger}"
flush_interval_s = 0.1
[backends.flaky]
type = "openai_compat"
base_url = "{flaky}"
model = "gpt-4o-mini"
api_key_env = "UP_KEY"
provider = "openai"
timeout_s = {timeout_s}
{flaky_extra}
[backends.backup]
type = "openai_compat"
base_url = "{backup}"
model = "gpt-4o-mini"
api_key_env = "UP_KEY"
provider = "openai"
timeout_s = 10
[routes.auto]
try = {route}
"""


def attempts_summary(ledger: Path) -> dict[str, Any]:
    """What the ledger says: rows, statuses, and the attempt trails behind them."""
    with closing(sqlite3.connect(ledger)) as conn:
        trails = Counter(str(r[0]) for r in conn.execute("SELECT attempts FROM requests"))
    statuses = Counter(status for _, status, _ in ledger_rows(ledger))
    return {
        "rows": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "top_attempt_trails": dict(trails.most_common(8)),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hg-faults-") as tmp:
        workdir = Path(tmp)
        ledger = workdir / "ledger.db"
        delay = args.timeout_s + 1.0
        with (
            run_fault_upstream(
                free_port(),
                fail_rate=args.fail_rate,
                faults=args.faults,
                timeout_delay_s=delay,
                seed=args.seed,
                reply_delay_s=getattr(args, "reply_delay_s", 0.0),
            ) as flaky,
            run_fault_upstream(free_port()) as backup,
        ):
            config = CONFIG.format(
                ledger=ledger,
                flaky=flaky,
                backup=backup,
                timeout_s=args.timeout_s,
                flaky_extra=args.flaky_config.replace(";", "\n"),
                route='["flaky"]' if getattr(args, "no_fallback", False) else '["flaky", "backup"]',
            )
            with run_gateway(config, workdir) as gateway:
                started = time.perf_counter()
                progress = asyncio.run(
                    drive(gateway.url, args.requests, args.concurrency, stream_share=args.stream_share)
                )
                elapsed = time.perf_counter() - started
                gateway.terminate()
                gateway.wait(timeout_s=60)
                log = gateway.output()
        result = summarize(progress.outcomes, elapsed)
        result["ledger"] = attempts_summary(ledger)
        result["gateway_tracebacks"] = log.count("Traceback")
    if getattr(args, "no_fallback", False):
        # without a fallback every injected fault reaches the client, and nothing more should
        injected = args.fail_rate * 100
        rate = result["client_error_rate"] * 100
        result["goal"] = {"within_2_points_of_injected": True, "met": rate <= injected + 2}
    else:
        result["goal"] = {"client_error_rate_max": 0.001, "met": result["client_error_rate"] <= 0.001}
    result["setup"] = {
        "fail_rate": args.fail_rate,
        "faults": args.faults.split(","),
        "flaky_timeout_s": args.timeout_s,
        "injected_timeout_delay_s": args.timeout_s + 1.0,
        "concurrency": args.concurrency,
        "stream_share": args.stream_share,
        "fallback": not getattr(args, "no_fallback", False),
        "reply_delay_s": getattr(args, "reply_delay_s", 0.0),
        "flaky_config": args.flaky_config or None,
        "seed": args.seed,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--timeout-s", type=float, default=1.0, help="the flaky backend's timeout_s")
    parser.add_argument("--stream-share", type=float, default=0.0)
    parser.add_argument(
        "--flaky-config", default="", help="extra TOML lines for [backends.flaky]; ';' separates"
    )
    parser.add_argument("--no-fallback", action="store_true", help="route auto tries only flaky")
    parser.add_argument(
        "--reply-delay-s",
        type=float,
        default=0.0,
        help="flaky's normal replies wait this long; faults do not",
    )
    parser.add_argument("--seed", type=int, default=1)
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
