"""What the embedded engine's process boundary costs, per request and per token. Prints JSON.

Two ways to run the same generation, alternated request by request in one run so the machine's
noise hits both alike: ``in_process`` calls ``LocalModel.generate`` on a thread of this process
(how the embedded backend worked before issue 14), ``engine_process`` sends the job to an
``EngineProcess`` child and reads its lines back (how it works now), streamed piece by piece.
Same GGUF (the packaged SmolLM2-135M-Instruct), same prompt, greedy decoding, ``n_threads`` 1.

- the boundary itself: for each engine job, the wall time seen from the gateway's side minus the
  engine's own time for it (``engine_s``): serialising, pipes, the reader thread, the event loop.
  Per request: its median for 1-token replies; per token: (median for N tokens - that) / (N-1);
- against in-process: median wall times of 1-token and N-token replies both ways, and the slope.
  This process calls ``setsid()`` first: the engine has a session of its own, and under the
  kernel's autogroup scheduling each session is a CPU share of its own.

    .venv/bin/python bench/embedded_process.py                 # 30 rounds, N = 64
    .venv/bin/python bench/embedded_process.py --rounds 60 --tokens 128
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybridgate.backends.embedded.llama import LocalModel, Sampling, packaged_model_file
from hybridgate.backends.embedded.process import EngineProcess

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def sampling(tokens: int) -> Sampling:
    return Sampling(max_tokens=tokens, temperature=0.0, top_p=1.0, seed=1)


def in_process(model: LocalModel, tokens: int) -> tuple[float, int]:
    pieces: list[str] = []
    started = time.perf_counter()
    outcome = model.generate(
        model.prompt(MESSAGES), sampling(tokens), threading.Event(), lambda t, _: pieces.append(t)
    )
    return time.perf_counter() - started, outcome.completion_tokens


async def engine_process(engine: EngineProcess, tokens: int, boundary: list[float]) -> tuple[float, int]:
    """Wall time seen from the gateway's side; ``boundary`` gets that minus the engine's own time."""
    job = {"messages": MESSAGES, "sampling": dataclasses.asdict(sampling(tokens)), "stream": True}
    started = time.perf_counter()
    async for message in engine.run(job):
        if "outcome" in message:
            seconds = time.perf_counter() - started
            boundary.append(seconds - float(message["engine_s"]))
            return seconds, int(message["outcome"]["completion_tokens"])
    raise RuntimeError("no outcome")


async def measure(rounds: int, tokens: int) -> dict[str, Any]:
    path = packaged_model_file()
    model = LocalModel(path, 1024, 1)
    engine = EngineProcess("bench", {"model_path": str(path), "n_ctx": 1024, "n_threads": 1})
    await engine.start()
    times: dict[str, dict[int, list[float]]] = {
        "in_process": {1: [], tokens: []},
        "engine_process": {1: [], tokens: []},
    }
    boundary: dict[int, list[float]] = {1: [], tokens: []}
    produced: dict[str, set[int]] = {"in_process": set(), "engine_process": set()}
    try:
        for _ in range(2):  # warm-up
            await asyncio.to_thread(in_process, model, tokens)
            await engine_process(engine, tokens, [])
        for _ in range(rounds):
            for n in (1, tokens):
                seconds, count = await asyncio.to_thread(in_process, model, n)
                times["in_process"][n].append(seconds)
                produced["in_process"].add(count)
                seconds, count = await engine_process(engine, n, boundary[n])
                times["engine_process"][n].append(seconds)
                produced["engine_process"].add(count)
    finally:
        await engine.aclose()
        model.close()
    return summarize(times, boundary, produced, tokens, rounds)


def summarize(
    times: dict[str, dict[int, list[float]]],
    boundary: dict[int, list[float]],
    produced: dict[str, set[int]],
    tokens: int,
    rounds: int,
) -> dict[str, Any]:
    median_ms = {
        way: {n: statistics.median(v) * 1000 for n, v in by_n.items()} for way, by_n in times.items()
    }
    per_token = {way: (m[tokens] - m[1]) / (tokens - 1) for way, m in median_ms.items()}
    crossing_ms = {n: statistics.median(v) * 1000 for n, v in boundary.items()}
    return {
        "bench": "embedded_process",
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": rounds,
        "tokens": tokens,
        "completion_tokens_seen": {way: sorted(v) for way, v in produced.items()},
        "median_ms": {way: {str(n): round(v, 3) for n, v in m.items()} for way, m in median_ms.items()},
        "boundary_median_ms": {str(n): round(v, 3) for n, v in crossing_ms.items()},
        "boundary_per_request_ms": round(crossing_ms[1], 3),
        "boundary_per_token_ms": round((crossing_ms[tokens] - crossing_ms[1]) / (tokens - 1), 4),
        "per_request_vs_in_process_ms": round(median_ms["engine_process"][1] - median_ms["in_process"][1], 3),
        "per_token_ms": {way: round(v, 4) for way, v in per_token.items()},
        "per_token_vs_in_process_ms": round(per_token["engine_process"] - per_token["in_process"], 4),
        "ratio_engine_to_in_process": {
            str(n): round(median_ms["engine_process"][n] / median_ms["in_process"][n], 3) for n in (1, tokens)
        },
    }


def main() -> None:
    # The engine child runs in a session of its own, and under autogroup scheduling a session is a
    # CPU share of its own; so is this process, or the in-process baseline would get less CPU.
    if os.getsid(0) != os.getpid():
        os.setsid()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.rounds, args.tokens)), indent=2))


if __name__ == "__main__":
    main()
