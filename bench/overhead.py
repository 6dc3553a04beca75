"""Measure the latency hybridgate adds in front of an upstream, on loopback, at concurrency 1.

Offline tool, never imported by the gateway. Starts the shared stand-in upstream
(``../shared/bench/gateway/upstream.py``) on CPU 0 and hybridgate on CPU 1, then times
sequential requests on one keep-alive connection per target, direct-to-upstream and
through-gateway, interleaved in blocks (see overhead_probe.py). Prints one JSON object.

    .venv/bin/python bench/overhead.py                        # 2000 JSON + 500 SSE requests each
    .venv/bin/python bench/overhead.py --fifo 10              # the same at real-time priority
    .venv/bin/python bench/overhead.py --servers uvicorn,granian --granian-site DIR
    .venv/bin/python bench/overhead.py --wrk --peers /tmp/peers    # + the rig's wrk run, c=1,8,64

Each gateway is probed twice, through ``/v1/chat/completions`` and through ``/v1/responses``
(the same request in the Responses API's words), interleaved; ``delta_vs_chat_ms`` is what the
Responses path adds (``--no-responses`` skips it; ``--responses-store local`` keeps answers).

Servers: ``uvicorn`` is ``hybridgate serve`` itself (uvloop + httptools); ``uvicorn-h11`` is
uvicorn on asyncio + h11; ``granian`` is granian's ASGI interface on uvloop (needs granian on
``--granian-site``). ``--peers DIR`` also starts LiteLLM and Portkey from the rig's
``peers/setup_peers.sh`` install, so they are measured in the same run. Every process is stopped
at the end, also on error or Ctrl-C. Results and their reading: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import overhead_probe
import overhead_wrk
from overhead_servers import (
    Fleet,
    Target,
    free_port,
    start_gateway,
    start_litellm,
    start_portkey,
    start_upstream,
    tree_cpu_s,
)


def main() -> None:
    args = _parser().parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="hgbench-") as tmp:
        fleet = Fleet(Path(tmp), _priority(args))
        try:
            result = measure(args, fleet)
        finally:
            fleet.close()
        result["ledger_rows"] = {t: _ledger_rows(Path(p)) for t, p in result.pop("_ledgers").items()}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


def _priority(args: argparse.Namespace) -> list[str]:
    """The same scheduling for every process of the run (client, upstream, gateways, peers).

    On a machine shared with other work, a c=1 request's latency is mostly wake-ups waiting for
    a CPU. ``nice`` does not help under sched_autogroup (each session is its own group and nice
    counts only inside it); SCHED_FIFO does, so the probe measures the gateway's own cost.
    """
    if not args.fifo:
        return []
    if args.wrk or args.peers:
        # wrk at c=64 keeps both cores busy, which SCHED_FIFO would turn into starving the rest
        # of the machine; and Portkey's node process stops answering under SCHED_FIFO.
        raise SystemExit("--fifo is for hybridgate's sequential probe only; drop --wrk/--peers")
    return ["chrt", "-f", str(args.fifo)]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def measure(args: argparse.Namespace, fleet: Fleet) -> dict[str, Any]:
    started = time.monotonic()
    os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
    if args.fifo:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.fifo))
    upstream, _ = start_upstream(fleet, args.upstream_port or free_port(), args.upstream_cpu)
    servers = [s for s in args.servers.split(",") if s]
    gateways = [
        start_gateway(
            fleet, s, upstream.base_url[:-3], args.gateway_cpu, args.granian_site, args.responses_store
        )
        for s in servers
    ]
    peers = _start_peers(args, fleet, upstream) if args.peers else []
    # The same gateway process again, asked through POST /v1/responses: what that path adds.
    responses = [
        replace(g, name=f"{g.name}/responses", pid=None, ledger=None, api="responses") for g in gateways
    ]
    probed = [
        upstream,
        *gateways,
        *(responses if args.responses else []),
        *(peers if args.probe_peers else []),
    ]
    result: dict[str, Any] = {
        "machine": machine(),
        "layout": _layout(args),
        "targets": _describe(probed + peers),
    }
    before = _upstream_count(upstream)
    for mode, stream, n in (("nonstream", False, args.n), ("stream", True, args.n_stream)):
        with overhead_probe.Probe(probed, stream) as probe:
            probe.run(args.warmup, args.block)  # discarded
            cpu0 = {t.name: tree_cpu_s(t.pid) for t in probed[1:] if t.pid}
            samples = probe.run(n, args.block)
            reconnects = probe.reconnects()
        section = overhead_probe.report(samples, upstream.name, stream)
        for gateway in gateways if args.responses else []:
            name = f"{gateway.name}/responses"
            section[name]["delta_vs_chat_ms"] = overhead_probe.versus(samples, name, gateway.name)
        for name, count in reconnects.items():
            section[name]["reconnects"] = count
        for target in probed[1:]:
            if target.pid:
                cpu_ms = (tree_cpu_s(target.pid) - cpu0[target.name]) * 1000 / n
                section[target.name]["cpu_ms_per_req"] = round(cpu_ms, 3)
        result[f"probe_{mode}"] = section
    sent = (args.n + args.n_stream + 2 * args.warmup) * len(probed)
    result["upstream_requests"] = {"seen": _upstream_count(upstream) - before, "sent": sent}
    if args.wrk:
        out = args.wrk_out or Path(fleet.workdir) / "wrk"
        result["wrk"] = overhead_wrk.run(
            gateways + peers,
            upstream,
            out,
            args.upstream_cpu,
            args.wrk_levels,
            args.wrk_duration,
            args.wrk_warmup,
        )
    result["_ledgers"] = {g.name: str(g.ledger) for g in gateways if g.ledger}
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    result["cpu_pressure_at_end"] = cpu_pressure()
    return result


def _start_peers(args: argparse.Namespace, fleet: Fleet, upstream: Target) -> list[Target]:
    base, peers = upstream.base_url[:-3], []
    if (args.peers / "litellm/venv/bin/litellm").exists():
        peers.append(start_litellm(fleet, args.peers, base, args.gateway_cpu))
    if (args.peers / "portkey/node_modules/@portkey-ai/gateway/build/start-server.js").exists():
        peers.append(start_portkey(fleet, args.peers, base, args.gateway_cpu))
    if not peers:
        raise RuntimeError(f"no peers installed under {args.peers}; run the rig's peers/setup_peers.sh")
    return peers


def _upstream_count(upstream: Target) -> int:
    with urllib.request.urlopen(upstream.base_url[:-3] + "/__admin/config", timeout=5) as response:
        stats = json.loads(response.read())["stats"]
    return int(stats["chat"] + stats["chat_stream"])


def _ledger_rows(path: Path) -> int | None:
    if not path.exists():
        return None
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM requests").fetchone()[0])


def machine() -> dict[str, Any]:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "cpu_pressure_at_start": cpu_pressure(),
        "hybridgate_git": _git_revision(),
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    code = (
        "import importlib.metadata as m\n"
        "for p in ('hybridgate', 'uvicorn', 'uvloop', 'httptools', 'starlette', 'httpx', 'h11'):\n"
        "    print(p, m.version(p))"
    )
    python = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False, timeout=30)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def cpu_pressure() -> str:
    """The kernel's CPU pressure line: the share of time some runnable task waited for a CPU."""
    path = Path("/proc/pressure/cpu")
    return path.read_text().splitlines()[0] if path.exists() else "n/a"


def _git_revision() -> str:
    repo = Path(__file__).resolve().parents[1]
    cmd = ["git", "-C", str(repo), "describe", "--always", "--dirty"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=10).stdout.strip()


def _layout(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "upstream_cpu": args.upstream_cpu,
        "gateway_cpu": args.gateway_cpu,
        "client_cpu": args.client_cpu,
        "fifo_priority": args.fifo,
        "n_nonstream": args.n,
        "n_stream": args.n_stream,
        "responses_store": args.responses_store,
        "warmup_per_target": args.warmup,
        "block": args.block,
        "argv": sys.argv,
    }


def _describe(targets: list[Target]) -> dict[str, Any]:
    return {
        t.name: {
            "url": t.base_url + ("/responses" if t.api == "responses" else "/chat/completions"),
            "model": t.model,
            "pid": t.pid,
        }
        for t in targets
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add = parser.add_argument
    add("--n", type=int, default=2000, help="measured non-streaming requests per target")
    add("--n-stream", type=int, default=500, help="measured streaming requests per target")
    add("--warmup", type=int, default=200, help="unrecorded requests per target and mode")
    add("--block", type=int, default=50, help="requests per target before switching to the next")
    add("--servers", default="uvicorn", help="comma list: uvicorn (= hybridgate serve), uvicorn-h11, granian")
    add("--granian-site", type=Path, help="site-packages folder holding granian (kept out of .venv)")
    add("--upstream-port", type=int, help="default: a free port")
    add("--upstream-cpu", default="0")
    add("--gateway-cpu", default="1")
    add("--client-cpu", default="0")
    add("--fifo", type=int, default=0, help="run the probe's processes SCHED_FIFO at this priority (1-99)")
    add("--peers", type=Path, help="folder of the rig's peers install: also run LiteLLM and Portkey")
    add("--probe-peers", action="store_true", help="include the peers in the sequential probe too")
    add("--wrk", action="store_true", help="also run the rig's bench.py (wrk closed loop)")
    add("--wrk-levels", default="1,8,64")
    add("--wrk-duration", type=int, default=5, help="measured seconds per wrk point")
    add("--wrk-warmup", type=int, default=2, help="unrecorded seconds before each wrk point")
    add("--wrk-out", type=Path, help="keep the rig's results here (default: deleted temp dir)")
    add("--out", type=Path, help="also write the JSON here")
    add("--no-responses", dest="responses", action="store_false", help="skip the /v1/responses targets")
    add("--responses-store", choices=("off", "local"), default="off", help="the gateways' [responses] store")
    return parser


if __name__ == "__main__":
    main()
