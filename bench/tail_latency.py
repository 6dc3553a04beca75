"""Tail latency under concurrency, and what stalls the event loop: p50/p99 at c = 1, 8, 64 with
wrk, and the gateway's own loop-lag and GC-pause histograms from /metrics. Prints JSON.

Offline tool, never imported by the gateway. Everything on 127.0.0.1: the shared rig's stand-in
upstream (``../shared/bench/gateway/upstream.py``, not OpenAI) and wrk pinned to CPU 0, the real
``python -m hybridgate serve`` (this checkout's ``src``, or ``--src``) pinned to CPU 1 (``--workers
2``: both CPUs). The rig's ``lua/chat.lua`` sends the rig's small fixed prompt; loop lag and GC
pauses are read per load level as the difference of the histograms' sums and counts.

    .venv/bin/python bench/tail_latency.py                        # c = 1,8,64, 10 s each
    .venv/bin/python bench/tail_latency.py --baseline-src /tmp/old/src   # + another checkout, same run
    .venv/bin/python bench/tail_latency.py --workers 2 --gateway-cpus 0,1
    .venv/bin/python bench/tail_latency.py --peers /tmp/peers    # + LiteLLM and Portkey, same run
    .venv/bin/python bench/tail_latency.py --concurrency 8 --profile /tmp/p   # + py-spy: /tmp/p.c8.json

``--peers DIR``: the rig's ``peers/setup_peers.sh`` install (``PEERS=DIR``); LiteLLM and Portkey
are started by the rig's own start scripts on CPU 1 beside hybridgate (each measured alone: the
targets take turns at each load level, after the upstream measured directly). CPU per request
is the gateway's main thread (the event loop) and, as ``process_cpu_ms_per_request``, every
thread (the ledger writer's too). ``--profile OUT`` records the gateway under test with py-spy
(speedscope JSON per level; ``--profile-native`` adds C frames); ``--ledger-batch-size N`` sets
``[ledger] batch_size``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# the shared rig beside the checkout (../shared/bench/gateway), also from a worktree one level down
RIG = next(
    (
        p / "shared" / "bench" / "gateway"
        for p in REPO.parents
        if (p / "shared" / "bench" / "gateway").is_dir()
    ),
    REPO.parent / "shared" / "bench" / "gateway",
)

CONFIG = """environment = "bench"
default_route = "auto"
[server]
host = "127.0.0.1"
[ledger]
path = "{ledger}"
[backends.up]
type = "openai_compat"
base_url = "http://127.0.0.1:{upstream}/v1"
model = "fake-model"
provider = "openai"
[routes.auto]
try = ["up"]
"""
BODY = {"model": "auto", "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


def histogram(metrics: str, name: str) -> dict[str, float]:
    """Sum and count of every series of histogram ``name`` (all labels together), or of one
    series: ``name{label="value"}``."""
    base, _, labels = name.partition("{")
    pattern = r"(?:{[^}]*})?" if not labels else re.escape("{" + labels)
    total = {"sum": 0.0, "count": 0.0}
    for kind in total:
        for match in re.finditer(rf"^{base}_{kind}{pattern} (\S+)$", metrics, re.M):
            total[kind] += float(match.group(1))
    return total


def buckets(metrics: str, name: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for match in re.finditer(rf'^{name}_bucket{{(?:[^}}]*,)?le="([^"]+)"}} (\S+)$', metrics, re.M):
        found[match.group(1)] = found.get(match.group(1), 0.0) + float(match.group(2))
    return found


def fast(metrics: str, name: str) -> float:
    """Observations of at most 5 ms."""
    return buckets(metrics, name).get("0.005", 0.0)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


@dataclass
class Target:
    name: str
    base_url: str  # ends in /v1
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    metrics_port: int | None = None  # hybridgate with one worker: read its loop metrics
    pid: int | None = None  # hybridgate with one worker: read its scheduler statistics


def schedstat(pid: int) -> tuple[int, int]:
    """Nanoseconds the process's main thread ran on a CPU, and waited runnable for one
    (/proc/PID/schedstat): the wait is time the machine's load took, whatever the gateway did."""
    ran, waited, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(ran), int(waited)


def process_cpu_ns(pid: int) -> int:
    """Nanoseconds every live thread of the process and of its child processes ran (the ledger
    writer's too, whether a thread or a process of its own)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
        with contextlib.suppress(OSError, ValueError):
            total += sum(process_cpu_ns(int(child)) for child in (task / "children").read_text().split())
    return total


def scheduler_entry(
    before: tuple[int, int, int], after: tuple[int, int, int], requests: int
) -> dict[str, Any]:
    per = max(requests, 1) * 1e6
    return {
        "cpu_ms_per_request": round((after[0] - before[0]) / per, 3),
        "process_cpu_ms_per_request": round((after[2] - before[2]) / per, 3),
        "runqueue_wait_ms_per_request": round((after[1] - before[1]) / per, 3),
    }


def wrk(target: Target, concurrency: int, duration_s: int, work: Path, cpu: str) -> dict[str, Any]:
    body, headers = work / f"{target.name}-body.json", work / f"{target.name}-headers.txt"
    body.write_text(json.dumps({**BODY, "model": target.model}))
    headers.write_text(
        "".join(f"{k}: {v}\n" for k, v in {"Content-Type": "application/json", **target.headers}.items())
    )
    env = {**os.environ, "BENCH_BODY_FILE": str(body), "BENCH_HEADERS_FILE": str(headers)}
    command = ["taskset", "-c", cpu, "wrk", "-t1", f"-c{concurrency}", f"-d{duration_s}s", "--latency"]
    command += ["-s", str(RIG / "lua" / "chat.lua"), f"{target.base_url}/chat/completions"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration_s + 60).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    return result


def start_peers(peers: Path, upstream: str, work: Path) -> tuple[list[Target], list[int]]:
    """LiteLLM and Portkey from the rig's scripts on CPU 1; their pids, to stop them."""
    env = {**os.environ, "PEERS": str(peers)}
    targets, pids = [], []
    for name, port in (("litellm", free_port()), ("portkey", free_port())):
        script = RIG / "peers" / f"start_{name}.sh"
        extra = [upstream] if name == "litellm" else []
        subprocess.run(
            ["bash", str(script), str(port), "1", *extra],
            env=env,
            check=True,
            timeout=180,
            stdout=subprocess.DEVNULL,
        )
        pids.append(int((RIG / "run" / f"{name}.pid").read_text()))
        spec = json.loads((RIG / "targets" / f"{name}.json").read_text())
        headers = dict(spec.get("headers", {}))
        if "x-portkey-custom-host" in headers:
            headers["x-portkey-custom-host"] = upstream
        targets.append(Target(name, f"http://127.0.0.1:{port}/v1", spec["model"], headers))
    return targets, pids


def level_entry(target: Target, point: dict[str, Any], duration_s: int) -> dict[str, Any]:
    return {
        "p50_ms": round(point["lat_us"]["p50"] / 1000, 2),
        "p99_ms": round(point["lat_us"]["p99"] / 1000, 2),
        "requests_per_s": round(point["requests"] / duration_s, 1),
        "non_2xx": point["non_2xx"],
    }


def loop_metrics(before: str, after: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, key in (
        ("hybridgate_event_loop_lag_seconds", "loop_lag"),
        ("hybridgate_gc_pause_seconds", "gc_pause"),
    ):
        a, b = histogram(after, name), histogram(before, name)
        count = a["count"] - b["count"]
        found[key] = {
            "samples": int(count),
            "mean_ms": round((a["sum"] - b["sum"]) / count * 1000, 3) if count else None,
            "over_5ms": int(count - (fast(after, name) - fast(before, name))),
        }
    # per generation: [collections, wall ms in all]; and the collector's own CPU ms in all
    found["gc_pause_cpu_ms"] = {}
    for generation in "012":
        a, b = (
            histogram(m, f'hybridgate_gc_pause_seconds{{generation="{generation}"}}') for m in (after, before)
        )
        count = a["count"] - b["count"]
        found["gc_pause"][f"gen{generation}"] = [int(count), round((a["sum"] - b["sum"]) * 1000, 1)]
        a, b = (
            histogram(m, f'hybridgate_gc_pause_cpu_seconds{{generation="{generation}"}}')
            for m in (after, before)
        )
        found["gc_pause_cpu_ms"][f"gen{generation}"] = round((a["sum"] - b["sum"]) * 1000, 1)
    return found


def profiler(args: argparse.Namespace, target: Target, level: int) -> subprocess.Popen[bytes] | None:
    """``--profile OUT``: py-spy samples the gateway under test (not the baseline) while wrk runs
    at the first concurrency level; a speedscope file per level (``OUT.c8.json``)."""
    if not args.profile or target.name != "hybridgate" or target.pid is None:
        return None
    command = [args.py_spy, "record", "--pid", str(target.pid), "--rate", "500", "--nonblocking"]
    command += ["--native"] if args.profile_native else []
    command += ["--duration", str(args.duration_s), "--format", "speedscope"]
    command += ["-o", f"{args.profile}.c{level}.json"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(args: argparse.Namespace) -> dict[str, Any]:
    src = Path(args.src).resolve()
    results: dict[str, Any] = {"levels": {}}
    processes: list[subprocess.Popen[bytes]] = []
    peer_pids: list[int] = []
    with tempfile.TemporaryDirectory(prefix="hg-tail-") as tmp:
        work = Path(tmp)
        up_port, gw_port = free_port(), free_port()
        upstream = f"http://127.0.0.1:{up_port}/v1"
        config = CONFIG.format(ledger=work / "ledger.db", upstream=up_port)
        if args.ledger_batch_size:  # the ledger writer's batch: how much work each write does at once
            config = config.replace("[ledger]\n", f"[ledger]\nbatch_size = {args.ledger_batch_size}\n")
        (work / "hg.toml").write_text(config)
        processes.append(
            subprocess.Popen(
                ["taskset", "-c", "0", sys.executable, str(RIG / "upstream.py"), "--port", str(up_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        base_port = free_port()
        gateways = [(src, gw_port)] + (
            [(Path(args.baseline_src).resolve(), base_port)] if args.baseline_src else []
        )
        for tree, port in gateways:
            serve = [sys.executable, "-m", "hybridgate", "serve", "--config", str(work / "hg.toml")]
            serve += ["--port", str(port), "--workers", str(args.workers)]
            processes.append(
                subprocess.Popen(
                    ["taskset", "-c", args.gateway_cpus, *serve],
                    env={**os.environ, "PYTHONPATH": str(tree)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        try:
            wait_http(f"http://127.0.0.1:{up_port}/health")
            for _, port in gateways:
                wait_http(f"http://127.0.0.1:{port}/healthz")
            targets = [
                Target("direct", upstream, "fake-model"),
                Target(
                    "hybridgate",
                    f"http://127.0.0.1:{gw_port}/v1",
                    "auto",
                    {},
                    gw_port if args.workers == 1 else None,
                    processes[1].pid if args.workers == 1 else None,
                ),
            ]
            if args.baseline_src:
                targets.append(
                    Target(
                        "hybridgate_baseline",
                        f"http://127.0.0.1:{base_port}/v1",
                        "auto",
                        {},
                        base_port if args.workers == 1 else None,
                        processes[2].pid if args.workers == 1 else None,
                    )
                )
            if args.peers:
                peers, peer_pids = start_peers(Path(args.peers), upstream, work)
                targets += peers
            for target in targets:
                wrk(target, 8, 3, work, "0")  # warm-up
            for level in [int(x) for x in args.concurrency.split(",")]:
                for target in targets:
                    before = scrape(target.metrics_port) if target.metrics_port else ""
                    sched = (*schedstat(target.pid), process_cpu_ns(target.pid)) if target.pid else (0, 0, 0)
                    spy = profiler(args, target, level)
                    point = wrk(target, level, args.duration_s, work, "0")
                    if spy is not None:
                        spy.wait(timeout=args.duration_s + 60)
                    entry = level_entry(target, point, args.duration_s)
                    if target.pid:
                        after = (*schedstat(target.pid), process_cpu_ns(target.pid))
                        entry.update(scheduler_entry(sched, after, point["requests"]))
                    if target.metrics_port:
                        entry.update(loop_metrics(before, scrape(target.metrics_port)))
                    results["levels"].setdefault(str(level), {})[target.name] = entry
        finally:
            for pid in peer_pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            for process in reversed(processes):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    results["setup"] = {
        "src": str(src),
        "baseline_src": args.baseline_src,
        "workers": args.workers,
        "gateway_cpus": args.gateway_cpus,
        "duration_s": args.duration_s,
        "peers": args.peers,
        "ledger_batch_size": args.ledger_batch_size,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", default=str(REPO / "src"))
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--duration-s", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gateway-cpus", default="1")
    parser.add_argument("--baseline-src", default=None, help="another checkout's src: measured beside")
    parser.add_argument("--peers", default=None, help="the rig's peers install dir: LiteLLM and Portkey too")
    parser.add_argument("--ledger-batch-size", type=int, default=None, help="[ledger] batch_size")
    parser.add_argument("--profile", default=None, help="py-spy speedscope output prefix (OUT.cN.json)")
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native (C frames too)")
    parser.add_argument("--py-spy", default=str(Path(sys.executable).parent / "py-spy"))
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
