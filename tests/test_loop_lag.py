"""Loop lag and GC pauses as metrics: a callback that holds the event loop shows up in the lag
histogram, a collection in the GC-pause histogram, and both are served on /metrics (through a
real gateway on loopback; its upstream is the OpenAI stand-in from tests/standins, not OpenAI)."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import httpx
from prometheus_client import CollectorRegistry

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.loop_lag import LoopLag
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import run_openai_standin


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    return registry.get_sample_value(name, labels or {}) or 0.0


async def test_a_blocked_loop_and_a_collection_are_measured() -> None:
    registry = CollectorRegistry()
    lag = LoopLag(registry, interval_s=0.01)
    lag.start()
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.08)  # a synchronous step holding the loop
        await asyncio.sleep(0.03)
        gc.collect()
    finally:
        await lag.aclose()
    assert lag.worst_s >= 0.05
    held = sample(registry, "hybridgate_event_loop_lag_seconds_count") - sample(
        registry, "hybridgate_event_loop_lag_seconds_bucket", {"le": "0.05"}
    )
    assert held >= 1
    assert sample(registry, "hybridgate_gc_pause_seconds_count", {"generation": "2"}) >= 1
    assert lag._on_gc not in gc.callbacks  # removed on close


async def test_the_cpu_pause_leaves_out_time_the_thread_did_not_run() -> None:
    """A collection during which the thread is off the CPU (here: another gc callback sleeping,
    as a loaded machine preempts it) has a long wall pause and a short CPU pause."""
    registry = CollectorRegistry()
    lag = LoopLag(registry)
    lag.start()

    def off_cpu(phase: Literal["start", "stop"], info: dict[str, int]) -> None:
        if phase == "start":
            time.sleep(0.2)

    gc.callbacks.append(off_cpu)  # after the LoopLag hook: inside its measured interval
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(off_cpu)
        await lag.aclose()
    labels = {"generation": "2"}
    wall = sample(registry, "hybridgate_gc_pause_seconds_sum", labels)
    cpu = sample(registry, "hybridgate_gc_pause_cpu_seconds_sum", labels)
    assert sample(registry, "hybridgate_gc_pause_cpu_seconds_count", labels) == 1
    assert wall >= 0.2 and wall - cpu >= 0.15  # the sleep is in the wall pause only


def test_metrics_serve_the_loop_lag(tmp_path: Path) -> None:
    with run_openai_standin() as upstream:
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(tmp_path / "gw.db")},
                "backends": {"up": {"type": "openai_compat", "base_url": upstream.base_url, "model": "m"}},
                "routes": {"auto": {"try": ["up"]}},
            }
        )
        with serve_in_thread(create_app(config, env={})) as url:
            time.sleep(0.2)
            metrics = httpx.get(f"{url}/metrics").text
    assert "hybridgate_event_loop_lag_seconds_count" in metrics
    assert "hybridgate_gc_pause_seconds_bucket" in metrics
    assert "hybridgate_gc_pause_cpu_seconds_bucket" in metrics


def test_serve_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    """In a fresh interpreter (it changes process-wide collector settings): what `serve` calls."""
    script = (
        "import gc\n"
        "from hybridgate.loop_lag import YOUNG_GC_THRESHOLD, freeze_startup_heap\n"
        "freeze_startup_heap()\n"
        "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
        "assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, 10, 10), gc.get_threshold()\n"
        "assert YOUNG_GC_THRESHOLD > 700\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
