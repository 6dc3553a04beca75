"""The request flow, readable in one screen: decide -> cache -> run the cascade -> price -> record.

The pipeline speaks only provider-neutral types (``ChatRequest`` in, OpenAI-shaped responses and
chunks out); the API layer owns the wire formats. Every request that reaches the gateway leaves
exactly one ledger record, whether it succeeded, failed upstream, was rejected as malformed, or
was cancelled by a client that hung up mid-stream.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from hybridgate.cache import CachedAnswer, Hit, Lookup, ResponseCache, replay_chunks
from hybridgate.cascade.core import Cascade, Served
from hybridgate.config import GatewayConfig
from hybridgate.errors import ClientClosedError, GatewayError, PermissionDeniedError
from hybridgate.ledger.base import Ledger
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.records import LedgerRecord, cohort_label, prompt_hmac
from hybridgate.pipeline.shadow import Shadow
from hybridgate.pipeline.stream import PipelineStream, iterate
from hybridgate.pipeline.trace import Trace
from hybridgate.privacy.restore import restore_completion
from hybridgate.router import RuleRouter
from hybridgate.types import ChatRequest, ChatResponse, Decision, RequestContext, Usage

if TYPE_CHECKING:
    from hybridgate.auth import Limiter, Reservation

    # the guard is built only when [privacy] is configured: Presidio is slow to import
    from hybridgate.privacy.policy import PrivacyGuard, Screening

__all__ = ["Completion", "Pipeline", "PipelineStream", "Trace"]


@dataclass
class Completion:
    response: ChatResponse
    decision: Decision
    backend: str
    model: str
    cost_usd: float
    cache: str | None = None  # hit | semantic-hit | miss | bypass; None without a cache
    privacy: str | None = None  # the effective privacy policy (judges and replays keep it)
    screening: Screening | None = None  # what the privacy screen found, when [privacy] is on


class Pipeline:
    def __init__(
        self,
        config: GatewayConfig,
        router: RuleRouter,
        cascade: Cascade,
        ledger: Ledger,
        metrics: GatewayMetrics,
        pricer: Pricer,
        prompt_secret: bytes,
        guard: PrivacyGuard | None = None,
        limiter: Limiter | None = None,
        cache: ResponseCache | None = None,
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
        self.cache = cache
        self._charges: set[asyncio.Task[None]] = set()
        self._reserve_output = config.auth.reserve_output_tokens
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

    async def _look_up(self, trace: Trace, request: ChatRequest, decision: Decision) -> Lookup | None:
        """Plan the request's use of the cache and try it; ``trace.hit`` is set on a hit."""
        if self.cache is None:
            return None
        pii = bool(trace.screening and trace.screening.pii)
        lookup = self.cache.plan(request, decision, trace.ctx, trace.ctx.cache, pii)
        hit: Hit | None = await self.cache.get(lookup) if lookup else None
        trace.cache = "bypass" if lookup is None else hit.result if hit else "miss"
        trace.hit = hit.answer if hit else None
        return lookup

    def store(self, lookup: Lookup | None, trace: Trace, response: ChatResponse, cost: float) -> None:
        if self.cache is not None and lookup is not None and trace.served is not None and trace.trail.clean:
            self.cache.put(lookup, response, trace.backend, trace.served.model, cost)

    async def complete(self, request: ChatRequest, ctx: RequestContext) -> Completion:
        trace = Trace(ctx, request)
        try:
            decision = self._decide(trace, request)
            lookup = await self._look_up(trace, request, decision)
            if trace.hit is not None:
                return self._answer_from_cache(trace, decision, trace.hit)
            await self._reserve(trace, request, decision)
            trace.served, response = await self._cascade.complete(
                decision, request, trace.trail, trace.clearance()
            )
            if (redactions := trace.redactions_for(trace.served)) is not None:
                response = ChatResponse(restore_completion(response.body, redactions))
        except GatewayError as exc:
            self.record_failure(trace, exc)
            raise
        except asyncio.CancelledError:  # the caller hung up: still one ledger row
            self.record_failure(trace, ClientClosedError("cancelled before the answer was ready"))
            raise
        except Exception:  # a bug: the API answers a plain 500, and the ledger still has the row
            self.record_failure(trace, GatewayError("internal error"))
            raise
        cost = self.record(trace, response.usage, 200, None, response.model, response.system_fingerprint)
        self.store(lookup, trace, response, cost)
        self.shadow.maybe(request, ctx, decision, trace.policy)
        return Completion(
            response,
            decision,
            trace.backend,
            trace.served.model,
            cost,
            trace.cache,
            privacy=trace.policy,
            screening=trace.screening,
        )

    def _answer_from_cache(self, trace: Trace, decision: Decision, hit: CachedAnswer) -> Completion:
        response = hit.response(trace.ctx.request_id)
        self.record(trace, Usage(), 200, None, response.model, response.system_fingerprint)
        return Completion(
            response,
            decision,
            hit.backend,
            hit.model,
            0.0,
            trace.cache,
            privacy=trace.policy,
            screening=trace.screening,
        )

    async def stream(self, request: ChatRequest, ctx: RequestContext) -> PipelineStream:
        trace = Trace(ctx, request)
        try:
            decision = self._decide(trace, request)
            lookup = await self._look_up(trace, request, decision)
            if trace.hit is not None:
                chunks = replay_chunks(trace.hit.response(ctx.request_id))
                return PipelineStream(self, trace, decision, chunks[0], iterate(chunks[1:]))
            await self._reserve(trace, request, decision)
            started = await self._cascade.stream(decision, request, trace.trail, trace.clearance())
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
        self.shadow.maybe(request, ctx, decision, trace.policy)
        return PipelineStream(self, trace, decision, started.first, started.rest, lookup)

    def answered(self, ctx: RequestContext, request: ChatRequest | None = None) -> None:
        """Record a request the edge answered itself (model list, token count, stored response)."""
        self.record(Trace(ctx, request), Usage(), 200, None, None, None)

    def reject(self, ctx: RequestContext, error: GatewayError, request: ChatRequest | None = None) -> None:
        """Record a request refused before it reached the router (bad JSON, auth, size)."""
        self.record_failure(Trace(ctx, request), error)

    def record_failure(self, trace: Trace, error: GatewayError) -> None:
        """One row for a request that failed; an answer the upstream gave (and billed) before
        a later step failed is recorded and charged with it."""
        usage = Usage()
        if trace.trail.answered is not None:
            trace.served, usage = trace.trail.answered
            trace.trail.settle_answer()
        self.record(trace, usage, error.status_code, error.type, None, None)

    async def _reserve(self, trace: Trace, request: ChatRequest, decision: Decision) -> None:
        """Hold the request's worst case against its key's budgets and tokens per minute."""
        key = trace.ctx.key
        if self._limiter is None or key is None or trace.ctx.shadow_of:
            return
        usage = Usage(prompt_token_bound(request), request.output_limit() or self._reserve_output)
        # Every backend of the route may bill (escalations, a failed check): the sum bounds it.
        usd = sum(self._price(self._cascade.served(name, decision), usage) for name in decision.backends)
        trace.reservation = await self._limiter.reserve(key, usd, usage.total_tokens)

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
            cohort=cohort_label(self._secret, self._config.ledger.cohort_labels, ctx.cohort),
            route=decision.route if decision else None,
            backend=trace.backend or None,
            model=trace.model,
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
            cache=trace.cache if trace.cache != "bypass" else None,
            saved_usd=trace.hit.cost_usd if trace.hit else 0.0,
            rule=decision.rule if decision else None,
            reasons=list(decision.reasons) if decision else [],
            attempts=trace.trail.attempts,
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
        self.commit(record, reservation, charge=ctx.key is not None)
        return cost

    def commit(
        self, record: LedgerRecord, reservation: Reservation | None = None, *, charge: bool = True
    ) -> None:
        """Write a finished request's one row, its metrics and its spend (every endpoint's).
        ``charge=False`` for a key nobody verified: a made-up key must reach no limiter state."""
        self._ledger.record(record)
        self._metrics.observe(record)
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


def prompt_token_bound(request: ChatRequest) -> int:
    """At least the prompt's tokens for any byte-level tokenizer (a token covers a byte or more):
    its UTF-8 bytes with the tools, plus a few tokens of framing per message. Images are not
    counted."""
    size = len(request.prompt_text().encode()) + 8 * len(request.messages)
    if request.tools:
        size += len(orjson.dumps(request.tools))
    return size
