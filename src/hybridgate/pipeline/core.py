"""The request flow, readable in one screen: decide -> cache -> run the cascade -> price -> record.

The pipeline speaks only provider-neutral types (``ChatRequest`` in, OpenAI-shaped responses and
chunks out); the API layer owns the wire formats. Every request that reaches the gateway leaves
exactly one ledger record (written by ``recorder.Recorder``), whether it succeeded, failed
upstream, was rejected as malformed, or was cancelled by a client that hung up mid-stream.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hybridgate.cache import CachedAnswer, Hit, Lookup, ResponseCache, replay_chunks
from hybridgate.cascade.core import Cascade
from hybridgate.config import GatewayConfig
from hybridgate.errors import ClientClosedError, GatewayError, PermissionDeniedError
from hybridgate.pipeline.outcomes import LiveAnswer, OutcomeSampler, answer_text
from hybridgate.pipeline.recorder import Ending, Recorder
from hybridgate.pipeline.shadow import Shadow
from hybridgate.pipeline.stream import PipelineStream, iterate, note_answer
from hybridgate.pipeline.trace import Trace
from hybridgate.privacy.restore import restore_completion
from hybridgate.router import RuleRouter
from hybridgate.types import ChatRequest, ChatResponse, Decision, Json, RequestContext

if TYPE_CHECKING:
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
        recorder: Recorder,
        guard: PrivacyGuard | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self._router = router
        self._cascade = cascade
        self.recorder = recorder
        self._guard = guard
        self.cache = cache
        self.shadow = Shadow(config.routes, self.complete, random.Random())
        self.outcomes: OutcomeSampler | None = None  # set by the gateway: grading for retraining

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

    def _trace(self, ctx: RequestContext, request: ChatRequest) -> Trace:
        tracer = self.recorder.tracer
        keep = tracer is not None and tracer.captures_content  # spans may carry the answer
        return Trace(ctx, request, answer=[] if keep else None)

    async def complete(self, request: ChatRequest, ctx: RequestContext) -> Completion:
        trace = self._trace(ctx, request)
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
            self.recorder.record_failure(trace, exc)
            raise
        except asyncio.CancelledError:  # the caller hung up: still one ledger row
            self.recorder.record_failure(trace, ClientClosedError("cancelled before the answer was ready"))
            raise
        except Exception:  # a bug: the API answers a plain 500, and the ledger still has the row
            self.recorder.record_failure(trace, GatewayError("internal error"))
            raise
        ending = Ending(
            response.usage, reported_model=response.model, fingerprint=response.system_fingerprint
        )
        note_answer(trace, response.body)
        cost = self.recorder.record(trace, ending)
        self.store(lookup, trace, response, cost)
        self.shadow.maybe(request, ctx, decision, trace.policy)
        self.graded(trace, decision, response.body)
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
        note_answer(trace, response.body)
        self.recorder.record(
            trace, Ending(reported_model=response.model, fingerprint=response.system_fingerprint)
        )
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
        trace = self._trace(ctx, request)
        try:
            decision = self._decide(trace, request)
            lookup = await self._look_up(trace, request, decision)
            if trace.hit is not None:
                chunks = replay_chunks(trace.hit.response(ctx.request_id))
                return PipelineStream(self, trace, decision, chunks[0], iterate(chunks[1:]))
            await self._reserve(trace, request, decision)
            started = await self._cascade.stream(decision, request, trace.trail, trace.clearance())
        except GatewayError as exc:
            self.recorder.record_failure(trace, exc)
            raise
        except asyncio.CancelledError:
            self.recorder.record_failure(trace, ClientClosedError("cancelled before the first chunk"))
            raise
        except Exception:
            self.recorder.record_failure(trace, GatewayError("internal error"))
            raise
        trace.served = started.served
        self.shadow.maybe(request, ctx, decision, trace.policy)
        return PipelineStream(self, trace, decision, started.first, started.rest, lookup)

    def wants_answer(self, route: str) -> bool:
        """Whether a stream on ``route`` is assembled for outcome sampling."""
        return self.outcomes is not None and self.outcomes.wants_answer(route)

    def graded(self, trace: Trace, decision: Decision, body: Json | None) -> None:
        """Hand a live answer to outcome sampling (``body``: None for a stream not assembled)."""
        if self.outcomes is not None and trace.request is not None:
            clearance = trace.clearance()
            text = answer_text(ChatResponse(body)) if body is not None else None
            escalated = trace.trail.escalations > 0
            pii = bool(clearance and clearance.pii)
            self.outcomes.observe(
                LiveAnswer(
                    trace.request, trace.ctx, decision, trace.backend, text, escalated, pii, trace.policy
                )
            )

    def answered(self, ctx: RequestContext, request: ChatRequest | None = None) -> None:
        """Record a request the edge answered itself (model list, token count, stored response)."""
        self.recorder.record(Trace(ctx, request), Ending())

    def reject(self, ctx: RequestContext, error: GatewayError, request: ChatRequest | None = None) -> None:
        """Record a request refused before it reached the router (bad JSON, auth, size)."""
        self.recorder.record_failure(Trace(ctx, request), error)

    async def _reserve(self, trace: Trace, request: ChatRequest, decision: Decision) -> None:
        route = [self._cascade.served(name, decision) for name in decision.backends]
        await self.recorder.reserve(trace, request, route)
