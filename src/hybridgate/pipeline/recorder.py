"""A finished request's money and record: its price, its one ledger row, its metrics and its charge.

One ``Recorder`` is built in gateway.py from the config and passed to the pipeline (chat and its
stream) and to the embeddings flow (``commit``). It also holds a request's worst case against its
key's budgets before the cascade runs (``reserve``), and settles that hold with the real cost once
the row is written, off the response path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from hybridgate.cascade.attempt import as_text
from hybridgate.cascade.core import Served
from hybridgate.config import GatewayConfig
from hybridgate.errors import GatewayError
from hybridgate.ledger.base import Ledger
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.records import LedgerRecord, cohort_label, prompt_hmac
from hybridgate.ledger.spans import SpanFacts
from hybridgate.pipeline.trace import Trace
from hybridgate.types import ChatRequest, Usage

if TYPE_CHECKING:
    from hybridgate.auth import Limiter, Reservation
    from hybridgate.ledger.tracing import RequestTracer


@dataclass(frozen=True)
class Ending:
    """How a request ended: what the upstream billed, the status, what it reported."""

    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error_type: str | None = None
    reported_model: str | None = None
    fingerprint: str | None = None
    stream: bool = False


class Recorder:
    def __init__(
        self,
        config: GatewayConfig,
        ledger: Ledger,
        metrics: GatewayMetrics,
        pricer: Pricer,
        prompt_secret: bytes,
        limiter: Limiter | None = None,
        tracer: RequestTracer | None = None,
    ) -> None:
        self._config = config
        self.tracer = tracer  # [telemetry]: each row also becomes a span
        self._ledger = ledger
        self._metrics = metrics
        self._pricer = pricer
        self._secret = prompt_secret
        self._limiter = limiter
        self._charges: set[asyncio.Task[None]] = set()
        self._reserve_output = config.auth.reserve_output_tokens

    async def reserve(self, trace: Trace, request: ChatRequest, route: Iterable[Served]) -> None:
        """Hold the request's worst case against its key's budgets and tokens per minute."""
        key = trace.ctx.key
        if self._limiter is None or key is None or trace.ctx.shadow_of:
            return
        usage = Usage(prompt_token_bound(request), request.output_limit() or self._reserve_output)
        # Every backend of the route may bill (escalations, a failed check): the sum bounds it.
        usd = sum(self.price(served, usage) for served in route)
        trace.reservation = await self._limiter.reserve(key, usd, usage.total_tokens)

    def record_failure(self, trace: Trace, error: GatewayError) -> None:
        """One row for a request that failed; an answer the upstream gave (and billed) before
        a later step failed is recorded and charged with it."""
        usage = Usage()
        if trace.trail.answered is not None:
            trace.served, usage = trace.trail.answered
            trace.trail.settle_answer()
        self.record(trace, Ending(usage, error.status_code, error.type))

    def record(self, trace: Trace, ending: Ending) -> float:
        """Write the request's one ledger row and its metrics; returns its cost in USD."""
        ctx, decision, served, usage = trace.ctx, trace.decision, trace.served, ending.usage
        # Escalated answers were paid for too: a cascade's cost includes its cheaper attempts.
        cost = self.price(served, usage) + sum(self.price(s, u) for s, u in trace.trail.wasted)
        prompt = trace.request.prompt_text() if trace.request else None
        record = LedgerRecord(
            ts=ctx.started_at,
            request_id=ctx.request_id,
            api=ctx.api,
            api_key_id=ctx.api_key_id,
            environment=ctx.environment,
            feature=ctx.feature,
            cohort=cohort_label(self._secret, self._config.ledger.cohort_labels, ctx.cohort),
            route=decision.route if decision else None,
            backend=trace.backend or None,
            model=trace.model,
            reported_model=ending.reported_model,
            system_fingerprint=ending.fingerprint,
            prompt_hash=prompt_hmac(self._secret, prompt) if prompt is not None else None,
            prompt_text=prompt if self._config.ledger.log_prompts else None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            ttft_ms=trace.ttft_ms,
            latency_ms=(time.perf_counter() - ctx.started_perf) * 1000,
            cost_usd=cost,
            status=ending.status,
            error_type=ending.error_type,
            stream=ending.stream,
            cache=trace.cache if trace.cache != "bypass" else None,
            saved_usd=trace.hit.cost_usd if trace.hit else 0.0,
            rule=decision.rule if decision else None,
            reasons=list(decision.reasons) if decision else [],
            attempts=as_text(trace.trail.attempts),
            escalations=trace.trail.escalations,
            wasted_tokens=trace.trail.wasted_tokens,
            wasted_ms=trace.trail.wasted_ms,
            pii=trace.screening.pii if trace.screening else None,
            privacy=trace.screening.policy if trace.screening else None,
            shadow_of=ctx.shadow_of,
            egress=list(trace.trail.egress),
            traffic=ctx.origin,
        )
        reservation, trace.reservation = trace.reservation, None
        self.commit(record, reservation, charge=ctx.key is not None, facts=self._facts(trace))
        return cost

    def _facts(self, trace: Trace) -> SpanFacts | None:
        if self.tracer is None:
            return None
        clearance = trace.clearance()
        return SpanFacts(
            trace.request,
            trace.finish_reasons,
            trace.response_id,
            "".join(trace.answer) if trace.answer is not None else None,
            sensitive=clearance is not None and clearance.pii,
            carrier=trace.ctx.extra,
        )

    def commit(
        self,
        record: LedgerRecord,
        reservation: Reservation | None = None,
        *,
        charge: bool = True,
        facts: SpanFacts | None = None,
    ) -> None:
        """Write a finished request's one row, its metrics, its span and its spend (every
        endpoint's). ``charge=False`` for a key nobody verified: a made-up key must reach no
        limiter state."""
        self._ledger.record(record)
        self._metrics.observe(record)
        if self.tracer is not None:
            self.tracer.finish(record, facts or SpanFacts(sensitive=True))
        if charge:
            self._settle(reservation, record)

    def _settle(self, reservation: Reservation | None, record: LedgerRecord) -> None:
        """Replace the request's reservation with what it cost, off the response path; without
        one (embeddings reserve nothing) charge what it cost. A request that cost nothing and
        reserved nothing (refused before, a cached answer) leaves the limiter be."""
        tokens = record.prompt_tokens + record.completion_tokens
        if self._limiter is None or record.shadow_of:
            return
        if reservation is not None:
            settle = self._limiter.settle(reservation, record.cost_usd, tokens)
        elif record.api_key_id is not None and (record.cost_usd > 0 or tokens > 0):
            settle = self._limiter.charge(record.api_key_id, record.cost_usd, tokens)
        else:
            return
        task = asyncio.get_running_loop().create_task(settle)
        self._charges.add(task)
        task.add_done_callback(self._charges.discard)

    async def drain_charges(self, timeout_s: float = 5.0) -> None:
        """Wait for spend still being charged to the limiter (shutdown: before it closes)."""
        if self._charges:
            await asyncio.wait(list(self._charges), timeout=timeout_s)

    async def close_tracer(self, timeout_s: float = 5.0) -> None:
        """Export the spans still queued (shutdown), in a thread: the SDK's flush blocks."""
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.shutdown, timeout_s)

    def price(self, served: Served | None, usage: Usage) -> float:
        if served is None:
            return 0.0
        return self._pricer.price_backend(self._config.backends[served.backend.name], served.model, usage)


def prompt_token_bound(request: ChatRequest) -> int:
    """At least the prompt's tokens for any byte-level tokenizer (a token covers a byte or more):
    its UTF-8 bytes with the tools, plus a few tokens of framing per message. Images are not
    counted."""
    size = len(request.prompt_text().encode()) + 8 * len(request.messages)
    if request.tools:
        size += len(orjson.dumps(request.tools))
    return size
