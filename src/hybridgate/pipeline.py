"""The request flow, readable in one screen: decide -> run the cascade -> price -> record.

The pipeline speaks only provider-neutral types (``ChatRequest`` in, OpenAI-shaped responses and
chunks out); the API layer owns the wire formats. Every request that reaches the gateway leaves
exactly one ledger record, whether it succeeded, failed upstream, was rejected as malformed, or
was cancelled by a client that hung up mid-stream.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hybridgate.cascade import Cascade, Served, StartedStream, Trail
from hybridgate.config import GatewayConfig
from hybridgate.errors import ClientClosedError, GatewayError, PermissionDeniedError
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.records import LedgerRecord, prompt_hmac
from hybridgate.ledger.store import SqliteLedger
from hybridgate.privacy.redact import RedactionMap
from hybridgate.privacy.restore import ChunkRestorer, restore_completion
from hybridgate.router import RuleRouter
from hybridgate.shadow import Shadow
from hybridgate.types import ChatRequest, ChatResponse, Decision, Json, RequestContext, Usage

if TYPE_CHECKING:
    from hybridgate.auth import Limiter

    # the guard is built only when [privacy] is configured: Presidio is slow to import
    from hybridgate.privacy.policy import PrivacyGuard, Screening

CLIENT_CLOSED = 499  # nginx's convention for "the client hung up before the answer was complete"


@dataclass
class Completion:
    response: ChatResponse
    decision: Decision
    served: Served
    cost_usd: float


@dataclass
class Trace:
    """What is known about one request so far; becomes its ledger record."""

    ctx: RequestContext
    request: ChatRequest | None
    decision: Decision | None = None
    served: Served | None = None
    trail: Trail = field(default_factory=Trail)
    screening: Screening | None = None
    ttft_ms: float | None = None

    def redactions_for(self, served: Served | None) -> RedactionMap | None:
        """The placeholders to restore in the answer: only a cloud backend saw them."""
        if self.screening is None or served is None or served.backend.local:
            return None
        return self.screening.redactions


class Pipeline:
    def __init__(
        self,
        config: GatewayConfig,
        router: RuleRouter,
        cascade: Cascade,
        ledger: SqliteLedger,
        metrics: GatewayMetrics,
        pricer: Pricer,
        prompt_secret: bytes,
        guard: PrivacyGuard | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self._config = config
        self._router = router
        self._cascade = cascade
        self._ledger = ledger
        self._metrics = metrics
        self._pricer = pricer
        self._secret = prompt_secret
        self._guard = guard
        self._limiter = limiter
        self._charges: set[asyncio.Task[None]] = set()
        self.shadow = Shadow(config.routes, self.complete, random.Random())

    def _decide(self, trace: Trace, request: ChatRequest) -> Decision:
        trace.decision = self._router.decide(request, trace.ctx)
        allowed = trace.ctx.allowed_routes
        if allowed and trace.decision.route not in allowed:
            raise PermissionDeniedError(
                f"key {trace.ctx.api_key_id} may not use route '{trace.decision.route}'; "
                f"it may use: {', '.join(allowed)}"
            )
        if self._guard is not None:
            trace.screening = self._guard.screen(request, trace.ctx, trace.decision)
            trace.decision = trace.screening.decision
        return trace.decision

    async def complete(self, request: ChatRequest, ctx: RequestContext) -> Completion:
        trace = Trace(ctx, request)
        try:
            decision = self._decide(trace, request)
            redacted = trace.screening.redacted if trace.screening else None
            trace.served, response = await self._cascade.complete(decision, request, trace.trail, redacted)
        except GatewayError as exc:
            self.record_failure(trace, exc)
            raise
        except asyncio.CancelledError:  # the caller hung up: still one ledger row
            self.record_failure(trace, ClientClosedError("cancelled before the answer was ready"))
            raise
        except Exception:  # a bug: the API answers a plain 500, and the ledger still has the row
            self.record_failure(trace, GatewayError("internal error"))
            raise
        if (redactions := trace.redactions_for(trace.served)) is not None:
            response = ChatResponse(restore_completion(response.body, redactions))
        cost = self.record(trace, response.usage, 200, None, response.model, response.system_fingerprint)
        self.shadow.maybe(request, ctx, decision)
        return Completion(response, decision, trace.served, cost)

    async def stream(self, request: ChatRequest, ctx: RequestContext) -> PipelineStream:
        trace = Trace(ctx, request)
        try:
            decision = self._decide(trace, request)
            redacted = trace.screening.redacted if trace.screening else None
            started = await self._cascade.stream(decision, request, trace.trail, redacted)
        except GatewayError as exc:
            self.record_failure(trace, exc)
            raise
        except asyncio.CancelledError:
            self.record_failure(trace, ClientClosedError("cancelled before the first chunk"))
            raise
        except Exception:
            self.record_failure(trace, GatewayError("internal error"))
            raise
        trace.served = started.served
        self.shadow.maybe(request, ctx, decision)
        return PipelineStream(self, trace, decision, started)

    def reject(self, ctx: RequestContext, error: GatewayError, request: ChatRequest | None = None) -> None:
        """Record a request refused before it reached the router (bad JSON, auth, size)."""
        self.record_failure(Trace(ctx, request), error)

    def record_failure(self, trace: Trace, error: GatewayError) -> None:
        self.record(trace, Usage(), error.status_code, error.type, None, None)

    def record(
        self,
        trace: Trace,
        usage: Usage,
        status: int,
        error_type: str | None,
        reported_model: str | None,
        fingerprint: str | None,
        *,
        stream: bool = False,
    ) -> float:
        """Write the request's one ledger row and its metrics; returns its cost in USD."""
        ctx, decision, served = trace.ctx, trace.decision, trace.served
        # Escalated answers were paid for too: a cascade's cost includes its cheaper attempts.
        cost = self._price(served, usage) + sum(self._price(s, u) for s, u in trace.trail.wasted)
        prompt = trace.request.prompt_text() if trace.request else None
        record = LedgerRecord(
            ts=ctx.started_at,
            request_id=ctx.request_id,
            api=ctx.api,
            api_key_id=ctx.api_key_id,
            environment=ctx.environment,
            feature=ctx.feature,
            cohort=ctx.cohort,
            route=decision.route if decision else None,
            backend=served.backend.name if served else None,
            model=served.model if served else (trace.request.model if trace.request else None),
            reported_model=reported_model,
            system_fingerprint=fingerprint,
            prompt_hash=prompt_hmac(self._secret, prompt) if prompt is not None else None,
            prompt_text=prompt if self._config.ledger.log_prompts else None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            ttft_ms=trace.ttft_ms,
            latency_ms=(time.perf_counter() - ctx.started_perf) * 1000,
            cost_usd=cost,
            status=status,
            error_type=error_type,
            stream=stream,
            cache=None,
            rule=decision.rule if decision else None,
            reasons=list(decision.reasons) if decision else [],
            attempts=trace.trail.attempts,
            escalations=trace.trail.escalations,
            wasted_tokens=trace.trail.wasted_tokens,
            wasted_ms=trace.trail.wasted_ms,
            pii=trace.screening.pii if trace.screening else None,
            privacy=trace.screening.policy if trace.screening else None,
            shadow_of=ctx.shadow_of,
        )
        self._ledger.record(record)
        self._metrics.observe(record)
        self._charge(record)
        return cost

    def _charge(self, record: LedgerRecord) -> None:
        """Count the request's spend against its key's budgets, off the response path."""
        if self._limiter is None or record.api_key_id is None or record.shadow_of:
            return
        tokens = record.prompt_tokens + record.completion_tokens
        task = asyncio.get_running_loop().create_task(
            self._limiter.charge(record.api_key_id, record.cost_usd, tokens)
        )
        self._charges.add(task)
        task.add_done_callback(self._charges.discard)

    def _price(self, served: Served | None, usage: Usage) -> float:
        if served is None or usage.total_tokens == 0:
            return 0.0
        backend = self._config.backends[served.backend.name]
        provider = getattr(backend, "provider", None) or (
            "anthropic" if backend.type == "anthropic" else None
        )
        override = backend.price
        if override is None and backend.local:
            return 0.0  # a local tier is free unless config prices it (TCO values it later)
        return self._pricer.price(provider, served.model, usage, override)


class PipelineStream:
    """An answer being streamed: yields OpenAI chunks, records the ledger row when done."""

    def __init__(self, pipeline: Pipeline, trace: Trace, decision: Decision, started: StartedStream) -> None:
        self._pipeline = pipeline
        self.trace = trace
        self._started = started
        self.served = started.served
        self.decision = decision
        self.usage = Usage()
        self.cost_usd = 0.0

    async def chunks(self) -> AsyncIterator[Json]:
        trace, status = self.trace, CLIENT_CLOSED
        error_type: str | None = "client_closed"
        reported: str | None = None
        fingerprint: str | None = None
        try:
            async for chunk in self._with_first():
                if trace.ttft_ms is None and _has_output(chunk):
                    trace.ttft_ms = (time.perf_counter() - trace.ctx.started_perf) * 1000
                if usage := chunk.get("usage"):
                    self.usage = Usage.from_openai(usage)
                reported = chunk.get("model") or reported
                fingerprint = chunk.get("system_fingerprint") or fingerprint
                yield chunk
            status, error_type = 200, None
        except GatewayError as exc:
            status, error_type = exc.status_code, exc.type
            raise
        finally:
            await self._started.rest.aclose()  # frees the upstream connection if we stopped early
            self.cost_usd = self._pipeline.record(
                trace, self.usage, status, error_type, reported, fingerprint, stream=True
            )

    async def _with_first(self) -> AsyncIterator[Json]:
        redactions = self.trace.redactions_for(self.served)
        restorer = ChunkRestorer(redactions) if redactions is not None else None
        last = self._started.first
        yield restorer.feed(last) if restorer else last
        async for chunk in self._started.rest:
            last = chunk
            yield restorer.feed(chunk) if restorer else chunk
        if restorer and (tail := restorer.flush_chunk(last)):
            yield tail


def _has_output(chunk: Json) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False
