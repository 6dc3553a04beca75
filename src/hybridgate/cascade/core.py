"""Run a Decision: try the route's backends in order until one answers well enough.

A backend failure that is the upstream's trouble (``BackendError.retryable``) moves on to the next
backend; an error caused by the request itself is raised at once, since every backend would refuse
it alike; a backend whose kind refuses a field the request uses (wire/fields.py) is skipped.
Answers are checked (``checks``: JSON / schema for ``response_format``, tool calls against
their schemas; on ``cascade = true`` routes also non-empty, not cut off, and the mean token
probability against ``min_confidence``). A failed check escalates to the next backend; the last
backend's answer is returned even when it fails, since a best effort beats an error the caller
cannot act on.

Streams: on a cascade route every tier but the last is buffered and checked before a byte is
sent, then replayed; the last tier streams directly. Elsewhere a stream from a backend that still
has a fallback is held back until its commit point (the route's ``commit_tokens`` content chunks,
or the first chunk ``commit_ms`` after the first one, or its end): a failure before it moves on
to the next backend unseen by the caller; after it, the stream is the caller's and a failure ends
it with an error event. The last backend streams directly.

A backend whose egress policy refuses a media URL of the request (backends/egress.py) is
skipped; when every backend of the route refuses it, the caller gets the 400 before any upstream
was sent anything.

``Trail`` records every attempt (an ``Attempt``: ok, error, retry, check_failed, refused; the
ledger writes it as ``"backend:error:<type>"`` etc.) and what escalations wasted, for the ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from functools import partial

from hybridgate.backends.base import Backend
from hybridgate.backends.egress import MediaPolicy, media_urls
from hybridgate.cascade.attempt import Attempt
from hybridgate.cascade.checks import CHECK_TIMEOUT_S, CheckResult, has_schemas, run_checks
from hybridgate.cascade.resilience import Protected
from hybridgate.config import GatewayConfig, RouteConfig
from hybridgate.errors import BackendError, MediaURLError, RequestError, UpstreamUnavailableError
from hybridgate.privacy.gate import Clearance, EgressGate, gated
from hybridgate.types import ChatRequest, ChatResponse, Decision, Json, Usage
from hybridgate.wire.assembly import StreamAssembler
from hybridgate.wire.choices import merge_choices
from hybridgate.wire.fields import refusal as field_refusal


@dataclass
class Served:
    """Which backend answered, with which upstream model."""

    backend: Backend
    model: str


@dataclass
class StartedStream:
    served: Served
    first: Json
    rest: AsyncGenerator[Json, None]


@dataclass
class Trail:
    attempts: list[Attempt] = field(default_factory=list)
    egress: list[str] = field(default_factory=list)  # the gate's decisions: backend:path:decision
    wasted: list[tuple[Served, Usage]] = field(default_factory=list)  # answers escalated past
    wasted_ms: float = 0.0
    answered: tuple[Served, Usage] | None = None  # the last answer billed and not yet accounted

    def settle_answer(self) -> None:
        """The billed answer goes into the row of a request that failed after it arrived."""
        if self.answered is None:
            return
        name = self.answered[0].backend.name
        last = self.attempts[-1] if self.attempts else None
        if last is None or last.backend != name or last.kind == "retry":
            self.attempts.append(Attempt.ok(name))
        self.answered = None

    @property
    def escalations(self) -> int:
        return len(self.wasted)

    @property
    def wasted_tokens(self) -> int:
        return sum(usage.total_tokens for _, usage in self.wasted)

    @property
    def clean(self) -> bool:
        """The answer passed its checks, and no backend failed on the way: worth caching. (A
        fallback's answer after an error is not: it would outlive the failure by the TTL.)"""
        return (
            bool(self.attempts)
            and self.attempts[-1].kind == "ok"
            and not any(attempt.kind == "error" for attempt in self.attempts)
        )

    def escalate(self, served: Served, failed: CheckResult, response: ChatResponse, started: float) -> None:
        self.attempts.append(Attempt(served.backend.name, "check_failed", failed.name))
        self.wasted.append((served, response.usage))
        self.answered = None
        self.wasted_ms += (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class Policy:
    strict: bool = False
    min_confidence: float | None = None

    @classmethod
    def of(cls, route: RouteConfig | None) -> Policy:
        if route is None or not route.cascade:
            return cls()
        return cls(strict=True, min_confidence=route.min_confidence)

    async def first_failure(
        self, request: ChatRequest, response: ChatResponse
    ) -> tuple[ChatResponse, CheckResult | None]:
        """Run the checks on a thread (schema validation is CPU work) within ``CHECK_TIMEOUT_S``."""
        failed = None
        checking = partial(run_checks, strict=self.strict, min_confidence=self.min_confidence)
        try:
            if has_schemas(request):
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    checks = await asyncio.to_thread(checking, request, response)
            else:  # nothing to validate against a schema: cheap, stays on the loop (no await: no timeout)
                checks = checking(request, response)
        except TimeoutError as exc:
            error = RequestError(
                f"checking the answer against the request's JSON schemas took over {CHECK_TIMEOUT_S:g}s; "
                "simplify the schema",
                param="response_format",
            )
            error.code = "schema_too_complex"
            raise error from exc
        for check in checks:
            response = check.repaired or response
            failed = failed or (None if check.passed else check)
        return response, failed

    def outbound(self, request: ChatRequest, is_last: bool) -> ChatRequest:
        """Ask a cheaper tier for logprobs when its confidence decides escalation."""
        if self.min_confidence is None or is_last or request.logprobs:
            return request
        return request.model_copy(update={"logprobs": True})


class Cascade:
    def __init__(
        self, backends: Mapping[str, Backend], config: GatewayConfig, gate: EgressGate | None = None
    ) -> None:
        # A non-local backend is reachable only through the egress gate (privacy/gate.py).
        self._backends = gated(backends)
        self.gate = gate or EgressGate()
        self._routes = config.routes
        # every call goes through its backend's breaker, admission limit and retry policy
        self.protected = {name: Protected(b, config.backends[name]) for name, b in self._backends.items()}
        self._media = {name: MediaPolicy(config.backends[name].media_url_allow) for name in backends}
        self._kinds = {name: config.backends[name].type for name in backends}

    def served(self, name: str, decision: Decision) -> Served:
        """Backend ``name`` as ``decision`` would call it."""
        backend = self._backends[name]
        return Served(backend, decision.model_override or backend.model)

    def _plan(self, decision: Decision, request: ChatRequest, trail: Trail) -> tuple[list[Served], Policy]:
        served = [
            Served(backend, decision.model_override or backend.model)
            for backend in (self._backends[name] for name in decision.backends)
        ]
        served = self._admitted(self._servable(served, request), request, trail)
        policy = Policy.of(self._routes.get(decision.route)) if len(served) > 1 else Policy()
        return served, policy

    def _servable(self, served: list[Served], request: ChatRequest) -> list[Served]:
        """The backends whose kind can serve every field the request uses (wire/fields.py);
        none: the last one's refusal, a 400 naming the field."""
        kept = [c for c in served if field_refusal(request, self._kinds[c.backend.name]) is None]
        if served and not kept:
            raise field_refusal(request, self._kinds[served[-1].backend.name]) or UpstreamUnavailableError(
                "no backend can serve this request"
            )
        return kept

    def _admitted(self, served: list[Served], request: ChatRequest, trail: Trail) -> list[Served]:
        """The backends the request's media URLs may be sent to; none: the first refusal."""
        if next(media_urls(request), None) is None:
            return served
        admitted: list[Served] = []
        refusal: MediaURLError | None = None
        for candidate in served:
            try:
                self._media[candidate.backend.name].check(request, candidate.backend.name)
            except MediaURLError as exc:
                trail.attempts.append(Attempt(candidate.backend.name, "refused", "media_url"))
                refusal = refusal or exc
                continue
            admitted.append(candidate)
        if refusal is not None and not admitted:
            raise refusal
        return admitted

    def _commit_point(self, decision: Decision) -> tuple[int, float] | None:
        route = self._routes.get(decision.route)
        tokens, ms = (route.commit_tokens, route.commit_ms) if route else (4, 150.0)
        return (tokens, ms) if tokens > 0 else None

    def _last_chance(self, candidates: list[Served], position: int) -> bool:
        """No later backend of the route has a circuit that is not open: call this one whatever
        its circuit says, so ejection never leaves a route without a backend (its errors pass)."""
        later = candidates[position:]
        return all(self.protected[s.backend.name].breaker.state == "open" for s in later)

    async def _complete(
        self, served: Served, request: ChatRequest, trail: Trail, last_chance: bool
    ) -> ChatResponse:
        """One answer, or ``n`` answers by repeated calls where the backend kind has no ``n``."""
        protected = self.protected[served.backend.name]
        n = request.n or 1
        if n == 1 or self._kinds[served.backend.name] == "openai_compat":
            return await protected.complete(request, served.model, trail.attempts, last_chance)
        single = request.model_copy(update={"n": None})
        answers = [
            await protected.complete(single, served.model, trail.attempts, last_chance) for _ in range(n)
        ]
        return merge_choices(answers)

    async def complete(
        self, decision: Decision, request: ChatRequest, trail: Trail, clearance: Clearance | None = None
    ) -> tuple[Served, ChatResponse]:
        """``clearance``: the request's effective privacy policy, applied by the gate to each
        non-local backend tried."""
        last: BackendError | None = None
        candidates, policy = self._plan(decision, request, trail)
        self.gate.withhold(clearance, trail.egress)
        for position, served in enumerate(candidates, start=1):
            is_last = position == len(candidates)
            started = time.perf_counter()
            if (cleared := self._clear(served, request, clearance, position, trail)) is None:
                continue  # the privacy policy keeps the request off this backend
            outbound = policy.outbound(cleared, is_last)
            try:
                response = await self._complete(
                    served, outbound, trail, self._last_chance(candidates, position)
                )
            except BackendError as exc:
                trail.attempts.append(Attempt.error(served.backend.name, exc))
                if not exc.retryable:
                    raise
                last = exc
                continue
            trail.answered = (served, response.usage)
            response, failed = await policy.first_failure(request, response)
            if failed is not None and not is_last:
                trail.escalate(served, failed, response, started)
                continue
            name = served.backend.name
            trail.attempts.append(Attempt(name, "check_failed", failed.name) if failed else Attempt.ok(name))
            return served, _without_unasked_logprobs(request, response)
        raise (
            last
            or self.gate.refusal(decision.route, trail.egress)
            or UpstreamUnavailableError(f"route '{decision.route}' has no backend to try")
        )

    async def stream(
        self, decision: Decision, request: ChatRequest, trail: Trail, clearance: Clearance | None = None
    ) -> StartedStream:
        last: BackendError | None = None
        candidates, policy = self._plan(decision, request, trail)
        self.gate.withhold(clearance, trail.egress)
        for position, served in enumerate(candidates, start=1):
            is_last = position == len(candidates)
            if (outbound := self._clear(served, request, clearance, position, trail)) is None:
                continue
            try:
                if policy.strict and not is_last:
                    if buffered := await self._buffered(served, outbound, policy, trail):
                        return buffered
                    continue
                force = self._last_chance(candidates, position)
                chunks = self.protected[served.backend.name].stream(
                    outbound, served.model, trail.attempts, force
                )
                if not is_last and (point := self._commit_point(decision)) is not None:
                    chunks = _held(chunks, *point)
                first = await anext(chunks)
            except StopAsyncIteration:
                trail.attempts.append(Attempt(served.backend.name, "error", "empty_stream"))
                last = BackendError(f"backend '{served.backend.name}' sent an empty stream")
                continue
            except BackendError as exc:
                trail.attempts.append(Attempt.error(served.backend.name, exc))
                if not exc.retryable:
                    raise
                last = exc
                continue
            trail.attempts.append(Attempt.ok(served.backend.name))
            return StartedStream(served, first, chunks)
        raise (
            last
            or self.gate.refusal(decision.route, trail.egress)
            or UpstreamUnavailableError(f"route '{decision.route}' has no backend to try")
        )

    def _clear(
        self, served: Served, request: ChatRequest, clearance: Clearance | None, position: int, trail: Trail
    ) -> ChatRequest | None:
        """The one place a request is handed to a backend: through the egress gate."""
        step = "primary" if position == 1 else "escalation" if trail.escalations else "fallback"
        return self.gate.clear(served.backend, request, clearance, step, trail.egress)

    async def _buffered(
        self, served: Served, request: ChatRequest, policy: Policy, trail: Trail
    ) -> StartedStream | None:
        """Stream a cheaper tier into a buffer, check it, and replay it only if it passes."""
        started = time.perf_counter()
        assembler = StreamAssembler()
        async for chunk in self.protected[served.backend.name].stream(
            policy.outbound(request, False), served.model, trail.attempts
        ):
            assembler.add(chunk)
        if not assembler.chunks:
            trail.attempts.append(Attempt(served.backend.name, "error", "empty_stream"))
            return None
        response, failed = await policy.first_failure(request, assembler.response())
        if failed is not None:
            trail.escalate(served, failed, response, started)
            return None
        trail.attempts.append(Attempt.ok(served.backend.name))
        replay = _replay(assembler.chunks[1:], strip_logprobs=not request.logprobs)
        first = _strip_logprobs(assembler.chunks[0]) if not request.logprobs else assembler.chunks[0]
        return StartedStream(served, first, replay)


async def _held(chunks: AsyncGenerator[Json, None], tokens: int, ms: float) -> AsyncGenerator[Json, None]:
    """``chunks``, but nothing comes out before the commit point: ``tokens`` content chunks, or
    the first chunk ``ms`` after the first one, or the end. An error before it is raised from the
    first ``anext``, so the cascade can still move on."""
    held: list[Json] = []
    seen = 0
    since = 0.0
    try:
        async for chunk in chunks:
            held.append(chunk)
            since = since or time.perf_counter()
            seen += _is_content(chunk)
            if seen >= tokens or (time.perf_counter() - since) * 1000 >= ms:
                break
        for chunk in held:
            yield chunk
        async for chunk in chunks:
            yield chunk
    finally:
        await chunks.aclose()


def _is_content(chunk: Json) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False


async def _replay(chunks: list[Json], *, strip_logprobs: bool) -> AsyncGenerator[Json, None]:
    for chunk in chunks:
        yield _strip_logprobs(chunk) if strip_logprobs else chunk


def _strip_logprobs(chunk: Json) -> Json:
    if not any("logprobs" in c for c in chunk.get("choices") or ()):
        return chunk
    return {**chunk, "choices": [{k: v for k, v in c.items() if k != "logprobs"} for c in chunk["choices"]]}


def _without_unasked_logprobs(request: ChatRequest, response: ChatResponse) -> ChatResponse:
    if request.logprobs or not any("logprobs" in c for c in response.body.get("choices") or ()):
        return response
    return ChatResponse(_strip_logprobs(response.body))
