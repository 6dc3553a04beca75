"""CPU per request of two checkouts side by side, at the same time: a paired comparison that the
machine's load cannot tilt. Prints JSON.

Offline tool, never imported by the gateway. Everything on 127.0.0.1, set up as
``bench/tail_latency.py`` does (the shared rig's stand-in upstream, not OpenAI, and wrk on CPU 0;
the gateways on CPU 1, same config). Unlike it, both gateways are driven at once, each by its own
wrk at the same concurrency, so both see the same machine in every round; each gateway's CPU per
request is read from ``/proc/PID/schedstat`` (its main thread: the event loop) and from every
thread (the ledger writer's too). Rounds alternate which gateway's wrk starts first.

    .venv/bin/python bench/cpu_per_request.py --baseline-src /tmp/old/src --rounds 10
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
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tail_latency import CONFIG, REPO, RIG, Target, free_port, process_cpu_ns, schedstat, wait_http, wrk


def cpu(pid: int) -> tuple[int, int]:
    """Nanoseconds on a CPU: the main thread's, and every live thread's."""
    return schedstat(pid)[0], process_cpu_ns(pid)


def measure(targets: list[Target], level: int, duration_s: int, work: Path) -> dict[str, dict[str, float]]:
    """Both targets driven at once; per target: requests and CPU ms per request."""
    before = {t.name: cpu(t.pid) for t in targets if t.pid}
    points: dict[str, dict[str, Any]] = {}

    def drive(target: Target) -> None:
        points[target.name] = wrk(target, level, duration_s, work, "0")

    threads = [threading.Thread(target=drive, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = {}
    for target in targets:
        assert target.pid is not None
        after, start = cpu(target.pid), before[target.name]
        requests = max(points[target.name]["requests"], 1)
        found[target.name] = {
            "requests": requests,
            "non_2xx": points[target.name]["non_2xx"],
            "cpu_ms_per_request": round((after[0] - start[0]) / requests / 1e6, 4),
            "process_cpu_ms_per_request": round((after[1] - start[1]) / requests / 1e6, 4),
        }
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    trees = {"new": Path(args.src).resolve(), "baseline": Path(args.baseline_src).resolve()}
    processes: list[subprocess.Popen[bytes]] = []
    rounds: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="hg-cpu-") as tmp:
        work = Path(tmp)
        up_port = free_port()
        processes.append(
            subprocess.Popen(
                ["taskset", "-c", "0", sys.executable, str(RIG / "upstream.py"), "--port", str(up_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        targets = []
        for name, tree in trees.items():
            port = free_port()
            config = work / f"{name}.toml"
            config.write_text(CONFIG.format(ledger=work / f"{name}.db", upstream=up_port))
            serve = [sys.executable, "-m", "hybridgate", "serve", "--config", str(config)]
            serve += ["--port", str(port)]
            process = subprocess.Popen(
                ["taskset", "-c", "1", *serve],
                env={**os.environ, "PYTHONPATH": str(tree)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            processes.append(process)
            targets.append(Target(name, f"http://127.0.0.1:{port}/v1", "auto", {}, port, process.pid))
        try:
            wait_http(f"http://127.0.0.1:{up_port}/health")
            for target in targets:
                wait_http(f"http://127.0.0.1:{target.metrics_port}/healthz")
            measure(targets, 8, 3, work)  # warm-up
            for number in range(args.rounds):
                order = targets if number % 2 == 0 else targets[::-1]
                for level in [int(x) for x in args.concurrency.split(",")]:
                    found = measure(order, level, args.duration_s, work)
                    ratio = {
                        key: round(found["new"][key] / found["baseline"][key], 4)
                        for key in ("cpu_ms_per_request", "process_cpu_ms_per_request")
                    }
                    rounds.setdefault(str(level), []).append({**found, "ratio": ratio})
        finally:
            for process in reversed(processes):
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    summary: dict[str, Any] = {}
    for concurrency, entries in rounds.items():
        summary[concurrency] = {
            name: {
                key: statistics.median(r[name][key] for r in entries)
                for key in ("cpu_ms_per_request", "process_cpu_ms_per_request")
            }
            for name in ("new", "baseline", "ratio")
        }
    return {
        "median": summary,
        "rounds": rounds,
        "setup": {
            "src": str(trees["new"]),
            "baseline_src": str(trees["baseline"]),
            "duration_s": args.duration_s,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
            "python": platform.python_version(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", default=str(REPO / "src"))
    parser.add_argument("--baseline-src", required=True, help="the other checkout's src")
    parser.add_argument("--concurrency", default="1,8", help="per gateway")
    parser.add_argument("--duration-s", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
