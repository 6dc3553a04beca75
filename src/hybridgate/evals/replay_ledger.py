"""Replay logged traffic through the current config and a candidate config, offline.

Offline tooling (``hybridgate replay --policy candidate.toml --from-ledger``); reads the ledger
(SQLite or PostgreSQL, through the ``Ledger`` read methods) and never touches the request path.
Only prompts logged by opt-in (``ledger.log_prompts = true``, column ``prompt_text``) can be
replayed, and the ledger keeps no answers, so nothing here can be graded: the report gives cost,
latency and routing for both policies, and how often the candidate's answer agrees with the
current policy's answer (both produced now). The report says so in its ``note``. Each replayed
prompt keeps the privacy policy recorded on its row (column ``privacy``, the effective policy the
live gateway applied); a row without one is replayed as ``local_only``. Logged prompts
are the messages' text joined, so they are replayed as a single user message: roles, tools and
response formats of the original requests are lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hybridgate.config import GatewayConfig
from hybridgate.errors import GatewayError
from hybridgate.evals.calls import ask
from hybridgate.evals.graders import Answer
from hybridgate.evals.report import percentile
from hybridgate.gateway import build_gateway
from hybridgate.ledger.base import Ledger
from hybridgate.ledger.money import usd
from hybridgate.types import ChatRequest, Json, Message

OFFLINE_FEATURES = ("eval", "eval-judge", "replay")
# A row that does not say which privacy policy covered its prompt: treat the text as PII that must
# stay on the machine.
UNRECORDED = "local_only"
NOTE = (
    "Logged traffic has no expected answers, so quality is not graded. 'agreement' compares the "
    "candidate's answer with the current policy's answer, both generated during this replay. "
    "Prompts are replayed as one user message (roles, tools and response formats were not logged)."
)


@dataclass(frozen=True)
class Logged:
    request_id: str
    prompt: str
    cost_usd: float
    latency_ms: float
    privacy: str = UNRECORDED  # the effective privacy policy the live gateway applied


@dataclass(frozen=True)
class Answered:
    text: str | None  # None when the request failed
    cost_usd: float = 0.0
    latency_ms: float | None = None
    backend: str = "(error)"


def logged_prompts(ledger: Ledger, limit: int) -> list[Logged]:
    """The newest ``limit`` successful requests whose prompt text was logged (not evals)."""
    rows = ledger.logged_prompts(limit, OFFLINE_FEATURES)
    return [
        Logged(
            str(r["request_id"]),
            str(r["prompt_text"]),
            float(r["cost_usd"]),
            float(r["latency_ms"]),
            str(r.get("privacy") or UNRECORDED),
        )
        for r in rows
    ]


async def answer_all(
    config: GatewayConfig,
    prompts: Sequence[Logged],
    *,
    env: Mapping[str, str] | None,
    concurrency: int,
    max_tokens: int,
) -> list[Answered]:
    gateway = build_gateway(config, env)
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(logged: Logged) -> Answered:
        prompt = logged.prompt
        request = ChatRequest(
            model="auto", messages=[Message(role="user", content=prompt)], max_tokens=max_tokens
        )
        async with slots:
            try:
                called = await ask(gateway.pipeline, config, request, None, "replay", logged.privacy)
            except GatewayError:
                return Answered(None)
        done = called.completion
        text = Answer.from_response(done.response).text()
        return Answered(text, done.cost_usd, called.latency_ms, done.backend)

    await gateway.start()
    try:
        return list(await asyncio.gather(*(one(p) for p in prompts)))
    finally:
        await gateway.aclose()


def _words(text: str) -> set[str]:
    return set(text.casefold().split())


def overlap(a: str, b: str) -> float:
    """Jaccard overlap of the two answers' word sets: 1.0 identical wording, 0.0 nothing shared."""
    left, right = _words(a), _words(b)
    return 1.0 if not left and not right else len(left & right) / len(left | right)


def _side(answers: Sequence[Answered]) -> Json:
    latencies = [a.latency_ms for a in answers if a.latency_ms is not None]
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    return {
        "cost_usd": round(sum(a.cost_usd for a in answers), 8),
        "errors": sum(1 for a in answers if a.text is None),
        "latency_p50_ms": None if p50 is None else round(p50, 1),
        "latency_p95_ms": None if p95 is None else round(p95, 1),
        "backends": dict(Counter(a.backend for a in answers)),
    }


def compare_answers(
    logged: Sequence[Logged], current: Sequence[Answered], candidate: Sequence[Answered]
) -> Json:
    pairs = [
        (a.text, b.text)
        for a, b in zip(current, candidate, strict=True)
        if a.text is not None and b.text is not None
    ]
    same = sum(1 for a, b in pairs if " ".join(a.split()).casefold() == " ".join(b.split()).casefold())
    recorded = percentile([r.latency_ms for r in logged], 0.5)
    return {
        "mode": "ledger",
        "graded": False,
        "note": NOTE,
        "prompts": len(logged),
        "recorded": {
            "cost_usd": round(sum(r.cost_usd for r in logged), 8),
            "latency_p50_ms": None if recorded is None else round(recorded, 1),
        },
        "current": _side(current),
        "candidate": _side(candidate),
        "agreement": {
            "compared": len(pairs),
            "exact": round(same / len(pairs), 4) if pairs else None,
            "mean_overlap": round(sum(overlap(a, b) for a, b in pairs) / len(pairs), 4) if pairs else None,
        },
    }


async def replay_ledger(
    current: GatewayConfig,
    candidate: GatewayConfig,
    logged: Sequence[Logged],
    *,
    env: Mapping[str, str] | None = None,
    concurrency: int = 4,
    max_tokens: int = 256,
) -> Json:
    mine = await answer_all(current, logged, env=env, concurrency=concurrency, max_tokens=max_tokens)
    theirs = await answer_all(candidate, logged, env=env, concurrency=concurrency, max_tokens=max_tokens)
    return compare_answers(logged, mine, theirs)


def render_ledger_replay(report: Json) -> str:
    lines = [f"replay of {report['prompts']} logged prompt(s): current config vs candidate policy"]
    lines.append(f"NOTE: {report['note']}")
    rec = report["recorded"]
    lines.append(
        f"  recorded   cost {usd(rec['cost_usd'])}  p50 {rec['latency_p50_ms']} ms (when first served)"
    )
    for side in ("current", "candidate"):
        s = report[side]
        lines.append(
            f"  {side:<10} cost {usd(s['cost_usd'])}  p50 {s['latency_p50_ms']} ms  "
            f"errors {s['errors']}  backends {s['backends']}"
        )
    agree = report["agreement"]
    lines.append(
        f"  agreement  {agree['compared']} compared, exact {agree['exact']}, "
        f"mean word overlap {agree['mean_overlap']}"
    )
    return "\n".join(lines)
