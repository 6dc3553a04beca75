"""The sequential probe of the overhead benchmark: one keep-alive connection per target, c=1.

Offline tool, never imported by the gateway. Requests to all targets are interleaved in blocks
(direct, gateway, gateway, direct, ...), so every target sees the same machine noise and the
overhead Δ = gateway - direct compares requests made within milliseconds of each other. The
client's own cost (http.client, reading lines) is the same for every target and cancels in Δ.
"""

from __future__ import annotations

import gc
import http.client
import json
import statistics
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from overhead_servers import Target

TIMEOUT_S = 30
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write one short sentence about benchmarking LLM gateways."},
]


class ProbeError(RuntimeError):
    """A target answered wrongly: the run stops rather than time a broken answer."""


class Client:
    """POSTs chat completions to one target over one persistent HTTP/1.1 connection."""

    def __init__(self, target: Target) -> None:
        url = urllib.parse.urlsplit(target.base_url)
        self.target = target
        self._conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=TIMEOUT_S)
        self._responses = target.api == "responses"
        endpoint = "/responses" if self._responses else "/chat/completions"
        self._path = url.path.rstrip("/") + endpoint
        self._headers = {"Content-Type": "application/json", **target.headers}
        body = {"model": target.model, "messages": MESSAGES, "max_tokens": 64, "temperature": 0}
        if self._responses:  # the same request in the Responses API's words
            system, user = (m["content"] for m in MESSAGES)
            body = {"model": target.model, "instructions": system, "input": user, "max_output_tokens": 64}
            body["temperature"] = 0
        self._plain = json.dumps(body).encode()
        self._stream = json.dumps(body | {"stream": True}).encode()
        self.reconnects = 0

    def close(self) -> None:
        self._conn.close()

    def _send(self, body: bytes) -> tuple[float, http.client.HTTPResponse]:
        """POST and wait for the status line; returns when the request started and the response.

        A server may close an idle keep-alive connection between blocks (5 s is common); the
        request is then sent again on a new connection, timed from the second start, and counted.
        """
        for attempt in (1, 2):
            start = time.perf_counter()
            try:
                self._conn.request("POST", self._path, body, self._headers)
                return start, self._conn.getresponse()
            except TimeoutError as exc:
                raise ProbeError(f"{self.target.name}: no answer within {TIMEOUT_S} s") from exc
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self._conn.close()
                self.reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def plain(self) -> tuple[float, float]:
        """(time to the whole body, same) in ms for a non-streaming request."""
        start, response = self._send(self._plain)
        data = response.read()
        total = (time.perf_counter() - start) * 1000
        if response.status != 200 or (b'"output"' if self._responses else b'"choices"') not in data:
            raise ProbeError(f"{self.target.name}: HTTP {response.status}: {data[:300]!r}")
        return total, total

    def stream(self) -> tuple[float, float]:
        """(time to the first content delta, time to the end of the stream) in ms."""
        start, response = self._send(self._stream)
        if response.status != 200:
            raise ProbeError(f"{self.target.name}: HTTP {response.status}: {response.read()[:300]!r}")
        first = None
        while first is None:
            line = response.readline()
            if not line:
                raise ProbeError(f"{self.target.name}: stream ended before any content")
            if self._responses:  # the event line names it: no need to parse the larger events
                if line.startswith(b"event: response.output_text.delta"):
                    first = time.perf_counter()
            elif line.startswith(b"data: {") and _has_content(line[6:]):
                first = time.perf_counter()
        rest = response.read()
        total = (time.perf_counter() - start) * 1000
        end = b"response.completed" if self._responses else b"data: [DONE]"
        if end not in rest:
            raise ProbeError(f"{self.target.name}: stream without {end!r}: {rest[-300:]!r}")
        return (first - start) * 1000, total


def _has_content(payload: bytes) -> bool:
    chunk = json.loads(payload)
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ())


@dataclass
class Samples:
    ttfb_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    block_medians: list[float] = field(default_factory=list)


class Probe:
    """One client per target, kept across the warm-up and the measured run, so no timed request
    pays for a TCP handshake."""

    def __init__(self, targets: list[Target], stream: bool) -> None:
        self._clients = [Client(target) for target in targets]
        self._calls = {c.target.name: (c.stream if stream else c.plain) for c in self._clients}

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._clients:
            client.close()

    def reconnects(self) -> dict[str, int]:
        return {c.target.name: c.reconnects for c in self._clients}

    def run(self, n: int, block: int) -> dict[str, Samples]:
        """``n`` requests per target, interleaved in blocks of ``block``."""
        samples = {name: Samples() for name in self._calls}
        names = list(self._calls)
        for index in range(0, n, block):
            # Rotate the order each block so no target always follows another one.
            shift = (index // block) % len(names)
            for name in names[shift:] + names[:shift]:
                _block(self._calls[name], min(block, n - index), samples[name])
        return samples


def _block(call: Callable[[], tuple[float, float]], count: int, into: Samples) -> None:
    # The collector runs between blocks, not inside a timed request.
    gc.collect()
    gc.disable()
    try:
        totals = []
        for _ in range(count):
            ttfb, total = call()
            into.ttfb_ms.append(ttfb)
            totals.append(total)
        into.total_ms.extend(totals)
        into.block_medians.append(statistics.median(totals))
    finally:
        gc.enable()


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile, as the rig's bench.py computes it."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary(values: list[float]) -> dict[str, float]:
    stats = {f"p{p}": percentile(values, p) for p in (50, 90, 99)}
    stats |= {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}
    return {k: round(v, 3) for k, v in stats.items()}


def report(samples: dict[str, Samples], baseline: str, stream: bool) -> dict[str, dict[str, object]]:
    """Percentiles per target and Δ against the baseline; ``paired`` is the median of per-block Δs."""
    base = samples[baseline]
    out: dict[str, dict[str, object]] = {}
    for name, got in samples.items():
        entry: dict[str, object] = {"n": len(got.total_ms), "total_ms": summary(got.total_ms)}
        if stream:
            entry["ttfb_ms"] = summary(got.ttfb_ms)
        if name != baseline:
            entry["delta_ms"] = _deltas(got, base, stream)
        out[name] = entry
    return out


def versus(samples: dict[str, Samples], name: str, baseline: str) -> dict[str, float]:
    """What target ``name`` adds over ``baseline`` (the Responses path over the chat path of
    the same gateway): p50 difference and the median of per-block differences."""
    got, base = samples[name], samples[baseline]
    paired = [g - b for g, b in zip(got.block_medians, base.block_medians, strict=True)]
    return {
        "total_p50": round(percentile(got.total_ms, 50) - percentile(base.total_ms, 50), 3),
        "total_p50_paired_blocks": round(statistics.median(paired), 3),
    }


def _deltas(got: Samples, base: Samples, stream: bool) -> dict[str, float]:
    kinds = [("total", got.total_ms, base.total_ms)]
    if stream:
        kinds.append(("ttfb", got.ttfb_ms, base.ttfb_ms))
    delta = {}
    for kind, mine, theirs in kinds:
        for p in (50, 99):
            delta[f"{kind}_p{p}"] = round(percentile(mine, p) - percentile(theirs, p), 3)
    paired = [g - b for g, b in zip(got.block_medians, base.block_medians, strict=True)]
    delta["total_p50_paired_blocks"] = round(statistics.median(paired), 3)
    return delta
