"""A closed-loop load driver for the fault and soak benches (offline tool, never imported by the
gateway): ``concurrency`` workers send chat completions to a gateway until ``total`` are done and
classify each as the client sees it.

A request counts as a client-visible error unless it ends with HTTP 200 and a complete answer: a
``chat.completion`` with the echoed text, or a stream that ends with ``data: [DONE]`` and carries no
error event. Transport errors (refused, reset, timed out) are errors too.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class Outcome:
    ok: bool
    status: int | None  # None: the request never got a status line
    latency_ms: float
    stream: bool
    backend: str | None
    error: str | None = None


@dataclass
class Progress:
    """Shared with a sampler thread: how many requests are done so far."""

    done: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


def body(index: int, stream: bool) -> bytes:
    content = f"request {index}: the quick brown fox jumps over the lazy dog"
    return orjson.dumps(
        {"model": "auto", "messages": [{"role": "user", "content": content}], "stream": stream}
    )


def judge(response: httpx.Response, stream: bool) -> str | None:
    """None if the client got a complete answer, else what was wrong with it."""
    if response.status_code != 200:
        return f"http_{response.status_code}"
    if stream:
        text = response.text
        if '"error"' in text:
            return "stream_error_event"
        return None if text.endswith("data: [DONE]\n\n") else "stream_incomplete"
    try:
        content = orjson.loads(response.content)["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return "bad_body"
    return None if isinstance(content, str) and content.startswith("echo: request") else "wrong_content"


async def one(
    client: httpx.AsyncClient, url: str, index: int, stream: bool, feature: str | None = None
) -> Outcome:
    headers = {"content-type": "application/json"}
    if feature is not None:
        headers["x-hybridgate-feature"] = feature
    started = time.perf_counter()
    try:
        response = await client.post(url, content=body(index, stream), headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, (time.perf_counter() - started) * 1000, stream, None, type(exc).__name__)
    latency = (time.perf_counter() - started) * 1000
    error = judge(response, stream)
    return Outcome(
        error is None,
        response.status_code,
        latency,
        stream,
        response.headers.get("x-hybridgate-backend"),
        error,
    )


async def drive(
    base_url: str,
    total: int,
    concurrency: int,
    *,
    stream_share: float = 0.0,
    seed: int = 7,
    timeout_s: float = 60.0,
    progress: Progress | None = None,
    deadline_s: float | None = None,
    features: int = 0,
) -> Progress:
    """Send ``total`` requests (fewer if ``deadline_s`` passes first) from ``concurrency`` workers.

    ``features`` > 0 tags request ``i`` with the feature ``f{i % features}`` (the
    ``x-hybridgate-feature`` header): a way to see what many distinct callers' labels cost.
    """
    progress = progress or Progress()
    rng = random.Random(seed)
    url = f"{base_url}/v1/chat/completions"
    issued = 0
    stop_at = None if deadline_s is None else time.monotonic() + deadline_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < total and (stop_at is None or time.monotonic() < stop_at):
            index, issued = issued, issued + 1
            feature = f"f{index % features}" if features else None
            outcome = await one(client, url, index, rng.random() < stream_share, feature)
            progress.outcomes.append(outcome)
            progress.done += 1

    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return progress


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def summarize(outcomes: list[Outcome], elapsed_s: float) -> dict[str, Any]:
    latencies = [o.latency_ms for o in outcomes]
    errors = [o for o in outcomes if not o.ok]
    return {
        "requests": len(outcomes),
        "streamed": sum(o.stream for o in outcomes),
        "client_errors": len(errors),
        "client_error_rate": len(errors) / len(outcomes) if outcomes else None,
        "errors_by_kind": dict(Counter(o.error or "?" for o in errors)),
        "served_by": dict(Counter(o.backend or "-" for o in outcomes if o.ok)),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p90": round(percentile(latencies, 90), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies, default=float("nan")), 2),
        },
        "elapsed_s": round(elapsed_s, 2),
        "requests_per_s": round(len(outcomes) / elapsed_s, 1) if elapsed_s else None,
    }
