"""What stalls the event loop, as metrics: loop lag and garbage-collector pauses.

``LoopLag`` wakes every ``interval_s`` and records how late it woke (the time some callback held
the loop: a long synchronous step, a GC pause, the GIL held by another thread) in the histogram
``hybridgate_event_loop_lag_seconds``. A ``gc.callbacks`` hook records each collection's pause
by generation in ``hybridgate_gc_pause_seconds`` (wall time) and the CPU time the collecting
thread spent in it in ``hybridgate_gc_pause_cpu_seconds``: on a loaded machine the wall pause
includes the time the process waited for a CPU, the CPU pause is the collector's own cost.
They live in the registry passed in; the hook is removed on ``aclose``. Started and stopped by
the gateway's lifespan.

``freeze_startup_heap`` is what those metrics led to: the objects built at start-up (config,
routers, the price catalogue (loaded by ``Pricer``), pydantic models, imported modules: hundreds
of thousands) are moved out of the collector's reach, so a full collection scans only what
requests allocate. Measured on the 2-core machine under load (docs/benchmarks.md), a full
collection took 350-420 ms before and stalled every request in flight. ``hybridgate serve``
calls it once per process, after the app is built; tests that build many gateways in one
process do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


# The youngest generation is collected when tracked allocations minus frees pass this (CPython's
# default: 700). Requests free almost everything they allocate by reference counting, so at c = 8
# the count passed 700 about 23 times a second (0.3 ms of CPU each) and 5,000 about once in 20 s;
# at c = 64 the collections are fewer and larger, with less CPU in all (docs/benchmarks.md).
YOUNG_GC_THRESHOLD = 5_000


def freeze_startup_heap() -> None:
    """Collect once, then freeze every object alive now (``gc.freeze``): the collector never
    scans them again; and raise the youngest generation's threshold to ``YOUNG_GC_THRESHOLD``.
    Call once per process, after start-up built the long-lived objects."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, oldest)


class LoopLag:
    def __init__(self, registry: CollectorRegistry, interval_s: float = 0.05) -> None:
        self._interval_s = interval_s
        self.lag = Histogram(
            "hybridgate_event_loop_lag_seconds",
            f"How late a timer due every {interval_s}s fired: how long something held the event loop.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.gc_pause = Histogram(
            "hybridgate_gc_pause_seconds",
            "Pauses of the garbage collector, by generation.",
            ["generation"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.gc_cpu = Histogram(
            "hybridgate_gc_pause_cpu_seconds",
            "CPU time of the garbage collector's pauses, by generation (no time spent waiting for a CPU).",
            ["generation"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self._gc_children = [self.gc_pause.labels(str(g)) for g in range(3)]
        self._gc_cpu_children = [self.gc_cpu.labels(str(g)) for g in range(3)]
        self._gc_started = self._gc_cpu_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self.worst_s = 0.0  # the largest lag seen, for logs and benches

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def aclose(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        while True:
            due = time.perf_counter() + self._interval_s
            await asyncio.sleep(self._interval_s)
            late = max(0.0, time.perf_counter() - due)
            self.worst_s = max(self.worst_s, late)
            self.lag.observe(late)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started, self._gc_cpu_started = time.perf_counter(), time.thread_time()
        elif self._gc_started:
            generation = min(int(info.get("generation", 0)), 2)
            self._gc_children[generation].observe(time.perf_counter() - self._gc_started)
            self._gc_cpu_children[generation].observe(time.thread_time() - self._gc_cpu_started)
