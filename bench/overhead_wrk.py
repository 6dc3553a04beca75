"""The optional wrk part of the overhead benchmark: the shared rig's bench.py, run where it lives.

Offline tool, never imported by the gateway. bench.py drives wrk (closed loop, c = 1, 8, 64)
against the upstream directly and against each target, one after another per load level, and
writes results.jsonl plus a summary.md into ``out``. This module only builds its command line
and condenses its results; it adds no measurement of its own.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from overhead_servers import RIG, Target


def run(
    targets: list[Target], upstream: Target, out: Path, cpu: str, levels: str, duration_s: int, warmup_s: int
) -> dict[str, Any]:
    cmd = ["taskset", "-c", cpu, sys.executable, str(RIG / "bench.py")]
    for target in targets:
        cmd += ["--target", target.rig_json()]
    cmd += [
        "--upstream",
        upstream.base_url.removesuffix("/v1"),
        "--upstream-pid-file",
        str(out / "upstream.pid"),
    ]
    cmd += ["--modes", "nonstream,stream", "--concurrency", levels, "--delays", "0", "--repeats", "1"]
    cmd += ["--duration", str(duration_s), "--warmup", str(warmup_s), "--global-warmup", str(warmup_s)]
    cmd += ["--ttft-probe", "0", "--wrk-cpu", cpu, "--out", str(out)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "upstream.pid").write_text(str(upstream.pid))
    points = len(levels.split(",")) * 2 * (len(targets) + 1)
    limit_s = 120 + points * (duration_s + warmup_s + 70)
    with (out / "bench.log").open("wb") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=limit_s, check=False)
    if done.returncode != 0:
        tail = (out / "bench.log").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"bench.py failed ({done.returncode}):\n" + "\n".join(tail))
    return {"command": shlex.join(cmd), "out": str(out), "points": condense(out / "results.jsonl")}


def condense(results: Path) -> list[dict[str, Any]]:
    """One row per (mode, c, target) with Δ against direct at the same point."""
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    points = [r for r in rows if r.get("kind") == "conc" and "p50_ms" in r]
    direct = {(r["mode"], r["level"]): r for r in points if r["target"] == "direct"}
    out = []
    for r in points:
        base = direct.get((r["mode"], r["level"]))
        row = {
            "mode": r["mode"],
            "c": r["level"],
            "target": r["target"],
            "p50_ms": r["p50_ms"],
            "p90_ms": r["p90_ms"],
            "p99_ms": r["p99_ms"],
            "rps": r["rps"],
            "errors": r["n_errors"],
            "cpu_cores": (r.get("gateway") or {}).get("cpu_cores"),
            "rss_max_mb": (r.get("gateway") or {}).get("rss_max_mb"),
            "upstream_per_req": round(r["upstream_requests"] / r["requests"], 3) if r["requests"] else None,
        }
        if base is not None and r["target"] != "direct":
            row["delta_p50_ms"] = round(r["p50_ms"] - base["p50_ms"], 3)
            row["delta_p99_ms"] = round(r["p99_ms"] - base["p99_ms"], 3)
        out.append(row)
    return out
