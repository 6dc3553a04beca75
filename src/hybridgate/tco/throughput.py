"""Measure a self-hosted server's throughput: ``hybridgate tco --measure URL``.

Offline: a small, bounded load test against an OpenAI-compatible chat server the operator names
(vLLM, llama.cpp's ``llama-server``, llama-cpp-python's ``llama_cpp.server``), run on the hardware
whose price prices the local tier. At each concurrency it sends ``requests`` streamed chat
completions and records output tokens per second over the level's wall time and the time to the
first token. Never on the request path; nothing here reads or writes the ledger.

Bounds: at most ``MAX_REQUESTS`` requests a level and ``MAX_CONCURRENCY`` in flight, every request
within the remaining ``budget_s``; redirects are not followed (the URL is the operator's own
server, and nothing is sent anywhere else). Output tokens come from the server's streamed
``usage`` when it sends one (vLLM with ``stream_options.include_usage``), else from the content
chunks (one token each on llama.cpp servers); ``token_count`` says which.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from hybridgate.ledger.rollups import percentile

MAX_CONCURRENCY = 64
MAX_REQUESTS = 200
MAX_TOKENS_LIMIT = 4096
DEFAULT_PROMPT = (
    "Write a detailed, plain-prose description of how a lighthouse works, from the lamp and lens "
    "to the daily routine of its keeper. Keep going until you are told to stop."
)


class MeasureError(ValueError):
    """The server could not be measured: bad URL, unreachable, or no request succeeded."""


@dataclass(frozen=True)
class LoadPlan:
    """What to send: ``requests`` streamed completions at each concurrency, within ``budget_s``."""

    concurrency: tuple[int, ...] = (1, 2, 4)
    requests: int = 8
    max_tokens: int = 64
    budget_s: float = 120.0
    model: str | None = None  # None: the first model the server lists
    prompt: str = DEFAULT_PROMPT

    def __post_init__(self) -> None:
        if not self.concurrency or any(not 1 <= c <= MAX_CONCURRENCY for c in self.concurrency):
            raise ValueError(f"measure concurrency must be between 1 and {MAX_CONCURRENCY}")
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise ValueError(f"measure requests must be between 1 and {MAX_REQUESTS} per level")
        if not 1 <= self.max_tokens <= MAX_TOKENS_LIMIT:
            raise ValueError(f"measure max tokens must be between 1 and {MAX_TOKENS_LIMIT}")
        if not 0 < self.budget_s <= 3600:
            raise ValueError("measure budget must be between 0 and 3600 seconds")


@dataclass(frozen=True)
class Level:
    """One concurrency level's results."""

    concurrency: int
    requests: int  # answered successfully
    errors: int  # failed, timed out, or not sent because the budget ran out
    output_tokens: int
    wall_s: float
    output_tps: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    decode_tps_per_request: float | None  # median, after the first token


@dataclass(frozen=True)
class ServerThroughput:
    """A measured server: the levels, and the best aggregate output throughput among them."""

    url: str
    model: str
    token_count: str  # "usage" (the server's counts) or "chunks" (one per content chunk)
    max_tokens: int
    levels: list[Level] = field(default_factory=list)
    complete: bool = True  # False: the budget ran out or requests failed

    @property
    def best(self) -> Level:
        return max(self.levels, key=lambda level: level.output_tps)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "url": self.url,
            "model": self.model,
            "token_count": self.token_count,
            "max_tokens": self.max_tokens,
            "complete": self.complete,
            "best_concurrency": best.concurrency,
            "output_tps": round(best.output_tps, 2),
            "levels": [{k: _round(v) for k, v in asdict(level).items()} for level in self.levels],
        }


def _round(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def base_url(url: str) -> str:
    """``http://host:port`` or ``.../v1`` -> the API base ending in ``/v1``; anything else raises."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MeasureError(f"--measure needs an http(s) URL of an OpenAI-compatible server, got '{url}'")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise MeasureError("--measure URL must not carry credentials, a query or a fragment")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def measure_server(url: str, plan: LoadPlan, api_key: str | None = None) -> ServerThroughput:
    """Run the load test (blocking); raises ``MeasureError`` when nothing could be measured."""
    return asyncio.run(_measure(base_url(url), plan, api_key))


@dataclass
class _Outcome:
    ok: bool
    tokens: int = 0
    ttft_s: float | None = None
    total_s: float = 0.0
    from_usage: bool = False


async def _measure(base: str, plan: LoadPlan, api_key: str | None) -> ServerThroughput:
    deadline = time.monotonic() + plan.budget_s
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    connector = aiohttp.TCPConnector(limit=max(plan.concurrency))
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        model = plan.model or await _first_model(session, base, deadline)
        levels, used_usage, complete = [], False, True
        for concurrency in plan.concurrency:
            outcomes, wall = await _level(session, base, model, plan, concurrency, deadline)
            good = [o for o in outcomes if o.ok]
            complete = complete and len(good) == plan.requests
            used_usage = used_usage or any(o.from_usage for o in good)
            if good:
                levels.append(_summarise(concurrency, plan.requests, good, wall))
            if time.monotonic() >= deadline:
                complete = False
                break
    if not levels or max(level.output_tps for level in levels) <= 0:
        raise MeasureError(
            f"no streamed completion from {base} finished with tokens: is it an OpenAI-compatible chat "
            "server (and, for llama_cpp.server, started with --interrupt_requests False)?"
        )
    return ServerThroughput(
        base, model, "usage" if used_usage else "chunks", plan.max_tokens, levels, complete
    )


async def _first_model(session: aiohttp.ClientSession, base: str, deadline: float) -> str:
    try:
        async with session.get(
            f"{base}/models", allow_redirects=False, timeout=_timeout(deadline, cap=30)
        ) as reply:
            if reply.status != 200:
                raise MeasureError(f"{base}/models answered HTTP {reply.status}; pass --measure-model")
            body = await reply.json(content_type=None, loads=orjson.loads)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MeasureError(f"could not reach {base}: {type(exc).__name__} {exc}".strip()) from None
    except orjson.JSONDecodeError:
        raise MeasureError(f"{base}/models did not answer JSON; pass --measure-model") from None
    models = body.get("data") if isinstance(body, dict) else None
    if not isinstance(models, list) or not models or not isinstance(models[0], dict):
        raise MeasureError(f"{base}/models lists no model; pass --measure-model")
    return str(models[0].get("id"))


def _timeout(deadline: float, cap: float | None = None) -> aiohttp.ClientTimeout:
    left = max(deadline - time.monotonic(), 0.001)
    return aiohttp.ClientTimeout(total=left if cap is None else min(left, cap))


async def _level(
    session: aiohttp.ClientSession, base: str, model: str, plan: LoadPlan, concurrency: int, deadline: float
) -> tuple[list[_Outcome], float]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> _Outcome:
        async with gate:
            if time.monotonic() >= deadline:
                return _Outcome(ok=False)
            return await _request(session, base, model, plan, deadline)

    started = time.monotonic()
    outcomes = await asyncio.gather(*(one() for _ in range(plan.requests)))
    return list(outcomes), time.monotonic() - started


async def _request(
    session: aiohttp.ClientSession, base: str, model: str, plan: LoadPlan, deadline: float
) -> _Outcome:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": plan.prompt}],
        "max_tokens": plan.max_tokens,
        "temperature": 0.7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.monotonic()
    out = _Outcome(ok=False)
    try:
        async with session.post(
            f"{base}/chat/completions", json=body, allow_redirects=False, timeout=_timeout(deadline)
        ) as reply:
            if reply.status != 200:
                return out
            chunks, finished = 0, False
            async for line in reply.content:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    # A stream cut short (llama_cpp.server interrupts one when another request
                    # arrives, unless --interrupt_requests False) ends without a finish_reason.
                    out.ok = finished
                    break
                event = orjson.loads(data)
                finished = finished or _finish_reason(event) is not None
                if _has_content(event):
                    chunks += 1
                    if out.ttft_s is None:
                        out.ttft_s = time.monotonic() - started
                usage = event.get("usage") if isinstance(event, dict) else None
                if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
                    out.tokens, out.from_usage = usage["completion_tokens"], True
            if not out.from_usage:
                out.tokens = chunks
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        out.ok = False
    out.total_s = time.monotonic() - started
    return out


def _choice(event: Any) -> dict[str, Any]:
    choices = event.get("choices") if isinstance(event, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return {}
    return choices[0]


def _finish_reason(event: Any) -> Any:
    return _choice(event).get("finish_reason")


def _has_content(event: Any) -> bool:
    delta = _choice(event).get("delta")
    return isinstance(delta, dict) and bool(delta.get("content") or delta.get("reasoning_content"))


def _summarise(concurrency: int, sent: int, good: list[_Outcome], wall: float) -> Level:
    tokens = sum(o.tokens for o in good)
    ttfts = sorted(o.ttft_s * 1000 for o in good if o.ttft_s is not None)
    decode = sorted(
        (o.tokens - 1) / (o.total_s - o.ttft_s)
        for o in good
        if o.ttft_s is not None and o.tokens > 1 and o.total_s > o.ttft_s
    )
    return Level(
        concurrency=concurrency,
        requests=len(good),
        errors=sent - len(good),
        output_tokens=tokens,
        wall_s=wall,
        output_tps=tokens / wall if wall > 0 else 0.0,
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p95_ms=percentile(ttfts, 95),
        decode_tps_per_request=percentile(decode, 50),
    )
