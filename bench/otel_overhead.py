"""What tracing costs per request: two gateway processes, [telemetry] off and on, side by side.

Offline tool, never imported by the gateway. Starts an OpenAI-compatible stand-in upstream and a
stand-in OTLP/HTTP receiver (both from tests/, in this process), then two `hybridgate serve`
processes on the same upstream: one without `[telemetry]`, one exporting every request's span to
the receiver. Sequential requests on one keep-alive connection per gateway, alternated in blocks
so both see the same machine noise; reports per side the median and p99 latency and the gateway
process's CPU time per request (user + system, from /proc), and the ratios. Prints one JSON object.

    .venv/bin/python bench/otel_overhead.py --requests 2000 --block 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gateway_process import GatewayProcess, run_gateway, upstream_config
from tests.otlp_receiver import run_otlp_receiver
from tests.standins.openai_upstream import run_openai_standin

CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY = {"model": "auto", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per gateway")
    parser.add_argument("--block", type=int, default=50, help="requests per block before switching")
    parser.add_argument("--stream-share", type=float, default=0.0, help="share of streamed requests")
    parser.add_argument("--sample-ratio", type=float, default=1.0, help="[telemetry] sample_ratio")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="hg-otel-") as tmp:
        upstream = stack.enter_context(run_openai_standin(record=False))
        receiver = stack.enter_context(run_otlp_receiver())
        base = upstream_config(upstream.base_url, Path(tmp) / "off.db")
        traced = upstream_config(upstream.base_url, Path(tmp) / "on.db").replace(
            "[routes.auto]",
            f'[telemetry]\nendpoint = "{receiver.url}"\nsample_ratio = {args.sample_ratio}\n\n[routes.auto]',
        )
        gateways: dict[str, GatewayProcess] = {}
        for name, text in (("off", base), ("on", traced)):
            workdir = Path(tmp) / name
            workdir.mkdir()
            gateways[name] = stack.enter_context(run_gateway(text, workdir))
        result = measure(gateways, args)
        time.sleep(2)  # the last batch of spans
        result["spans_received"] = len(receiver.spans)
        result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()}
        print(json.dumps(result, indent=2))


def measure(gateways: dict[str, GatewayProcess], args: argparse.Namespace) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {name: [] for name in gateways}
    cpu: dict[str, float] = dict.fromkeys(gateways, 0.0)
    clients = {name: httpx.Client(base_url=gw.url, timeout=30) for name, gw in gateways.items()}
    for name in gateways:  # warm up: connections, first-request imports
        for _ in range(20):
            clients[name].post("/v1/chat/completions", json=BODY).raise_for_status()
    sent = 0
    while sent < args.requests:
        for name, gateway in gateways.items():
            before = cpu_s(gateway.pid)
            for i in range(args.block):
                stream = (sent + i) % 100 < args.stream_share * 100
                started = time.perf_counter()
                if stream:
                    with clients[name].stream(
                        "POST", "/v1/chat/completions", json={**BODY, "stream": True}
                    ) as r:
                        r.raise_for_status()
                        for _ in r.iter_bytes():
                            pass
                else:
                    clients[name].post("/v1/chat/completions", json=BODY).raise_for_status()
                latencies[name].append((time.perf_counter() - started) * 1000)
            cpu[name] += cpu_s(gateway.pid) - before
        sent += args.block
    sides = {
        name: {
            "requests": len(values),
            "latency_p50_ms": round(statistics.median(values), 3),
            "latency_p99_ms": round(percentile(values, 0.99), 3),
            "gateway_cpu_ms_per_request": round(cpu[name] * 1000 / len(values), 3),
        }
        for name, values in latencies.items()
    }
    off, on = sides["off"], sides["on"]
    return {
        "sides": sides,
        "on_vs_off": {
            "p50_ratio": round(on["latency_p50_ms"] / off["latency_p50_ms"], 3),
            "p50_delta_ms": round(on["latency_p50_ms"] - off["latency_p50_ms"], 3),
            "cpu_ratio": round(on["gateway_cpu_ms_per_request"] / off["gateway_cpu_ms_per_request"], 3),
            "cpu_delta_ms": round(on["gateway_cpu_ms_per_request"] - off["gateway_cpu_ms_per_request"], 3),
        },
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


if __name__ == "__main__":
    main()
