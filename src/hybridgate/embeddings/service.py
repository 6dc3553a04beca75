"""One embeddings request, start to finish: resolve the model, screen, cache, embed, record.

Routing: ``model`` names an embeddings route, ``embedder/model``, or a model an embedder serves
(``text-embedding-3-small``); any other name goes to ``default_route``, and the decision's reasons
say so. A route's embedders all serve one model, so a fallback changes the server, never the
vectors. The privacy screen is the chat path's (the same ``PrivacyGuard``): texts with PII go only
to local embedders under ``local_only``, placeholders under ``redact``; token arrays cannot be
scanned, so they reach a non-local embedder only where the policy is ``allow``. Misses are sent in
batches of the embedder's ``max_batch``, at most ``max_concurrency`` at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from hybridgate.backends.embeddings import Embedded, Embedder
from hybridgate.cache import VectorCache, tenant_of
from hybridgate.cache.embeddings import to_entry, vector_key
from hybridgate.cascade.attempt import Attempt, as_text
from hybridgate.config import EmbedderConfig, EmbeddingsConfig
from hybridgate.embeddings.request import EmbeddingInput, EmbeddingRequest, inputs_of
from hybridgate.errors import (
    BackendError,
    GatewayError,
    ModelNotFoundError,
    PermissionDeniedError,
    PrivacyPolicyError,
    RequestError,
)
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.records import LedgerRecord, cohort_label, prompt_hmac
from hybridgate.privacy.gate import EgressGate
from hybridgate.types import ChatRequest, Decision, Message, RequestContext, Usage

if TYPE_CHECKING:
    from hybridgate.privacy.policy import PrivacyGuard, Screening

Recorder = Callable[[LedgerRecord], None]
GUARD_PREFIX = "embeddings:"


def guard_name(embedder: str) -> str:
    """How the privacy guard knows an embedder (chat backends and embedders share no names there)."""
    return GUARD_PREFIX + embedder


@dataclass
class EmbeddingResult:
    vectors: NDArray[np.float32]
    model: str
    prompt_tokens: int  # every input's tokens, hits included: what the caller's usage says
    decision: Decision
    backend: str
    cost_usd: float
    cache: str | None  # hit | partial | miss; None when the cache was not consulted


@dataclass
class _Work:
    """What is known about one request so far; becomes its ledger row."""

    ctx: RequestContext
    items: list[EmbeddingInput] = field(default_factory=list)
    decision: Decision | None = None
    backend: str | None = None
    model: str | None = None
    sent_tokens: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    cached: int = 0
    cache: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    screening: Screening | None = None
    egress: list[str] = field(default_factory=list)  # the egress gate's decisions (privacy/gate.py)


class Embeddings:
    def __init__(
        self,
        config: EmbeddingsConfig,
        configs: dict[str, EmbedderConfig],
        embedders: dict[str, Embedder],
        recorder: Recorder,
        pricer: Pricer,
        prompt_secret: bytes,
        *,
        cache: VectorCache | None = None,
        guard: PrivacyGuard | None = None,
        log_prompts: bool = False,
        cache_pii: bool = False,
        gate: EgressGate | None = None,
        cohort_labels: Collection[str] = (),
    ) -> None:
        self._config = config
        self._configs = configs
        self.embedders = embedders
        self._record = recorder
        self._pricer = pricer
        self._secret = prompt_secret
        self.cache = cache
        self._guard = guard
        self._log_prompts = log_prompts
        self._cache_pii = cache_pii
        self._gate = gate or EgressGate()
        self._cohorts = frozenset(cohort_labels)

    async def start(self) -> None:
        for embedder in self.embedders.values():
            await embedder.start()

    async def aclose(self) -> None:
        if self.cache is not None:
            await self.cache.aclose()
        for embedder in self.embedders.values():
            await embedder.aclose()

    def models(self) -> list[str]:
        """Names a client may send as ``model``: routes, then the models the embedders serve."""
        served = dict.fromkeys(embedder.model for embedder in self.embedders.values())
        return [*self._config.routes, *served]

    async def embed(self, request: EmbeddingRequest, ctx: RequestContext) -> EmbeddingResult:
        work = _Work(ctx)
        try:
            return await self._embed(request, work)
        except GatewayError as exc:
            self._write(work, exc.status_code, exc.type)
            raise
        except asyncio.CancelledError:
            self._write(work, 499, "client_closed")
            raise
        except Exception:
            self._write(work, 500, "internal_error")
            raise

    async def _embed(self, request: EmbeddingRequest, work: _Work) -> EmbeddingResult:
        work.items = inputs_of(request, self._config.max_inputs)
        decision = self.resolve(request.model)
        work.decision = decision
        self._check_access(work.ctx, decision)
        sent = self._screen(work, decision)
        candidates = self._candidates(work, request.dimensions, sent)
        model = candidates[0].model
        work.model = model
        vectors: list[NDArray[np.float32] | None] = [None] * len(work.items)
        tokens = [0] * len(work.items)
        keys = self._keys(work, model, request.dimensions, sent)
        if keys is not None and self.cache is not None:
            for i, hit in enumerate(await self.cache.get_many(keys)):
                if hit is not None:
                    vectors[i], tokens[i] = hit.vector, hit.tokens
            work.cached = sum(v is not None for v in vectors)
            work.saved_usd = self._price(candidates[0].name, sum(tokens))
        misses = [i for i, vector in enumerate(vectors) if vector is None]
        if misses:
            await self._fill(work, candidates, misses, sent, request.dimensions, vectors, tokens)
        else:
            work.backend = candidates[0].name
        if keys is not None and self.cache is not None:
            work.cache = "hit" if not misses else "miss" if work.cached == 0 else "partial"
            self.cache.put_many([(keys[i], to_entry(vectors[i], tokens[i])) for i in misses])  # type: ignore[arg-type]
        result = EmbeddingResult(
            np.stack(vectors),  # type: ignore[arg-type]
            model,
            sum(tokens),
            decision,
            work.backend or candidates[0].name,
            work.cost_usd,
            work.cache,
        )
        self._write(work, 200, None)
        return result

    def resolve(self, name: str) -> Decision:
        """Which embeddings route serves ``model`` (see the module docstring)."""
        routes = self._config.routes
        if name in routes:
            return Decision(name, tuple(routes[name].try_), "model")
        backend, _, model = name.partition("/")
        if model and backend in self.embedders:
            if self.embedders[backend].model != model:
                raise ModelNotFoundError(
                    f"embedder '{backend}' serves '{self.embedders[backend].model}', not '{model}'",
                    param="model",
                )
            return Decision(backend, (backend,), "backend")
        serving = tuple(n for n, e in self.embedders.items() if e.model == name)
        if serving:
            route = next((r for r, cfg in routes.items() if set(cfg.try_) & set(serving)), None)
            if route is not None:
                return Decision(route, tuple(routes[route].try_), "served-model")
            return Decision(serving[0], serving, "served-model")
        default = self._config.default_route
        reason = f"model '{name}' is not served here -> default embeddings route '{default}'"
        return Decision(default, tuple(routes[default].try_), "default", (reason,))

    def _check_access(self, ctx: RequestContext, decision: Decision) -> None:
        if ctx.allowed_routes and decision.route not in ctx.allowed_routes:
            raise PermissionDeniedError(
                f"key {ctx.api_key_id} may not use route '{decision.route}'; "
                f"it may use: {', '.join(ctx.allowed_routes)}"
            )

    def _screen(self, work: _Work, decision: Decision) -> list[EmbeddingInput]:
        """The inputs as non-local embedders may see them; narrows ``work.decision`` under local_only."""
        if self._guard is None:
            return work.items
        # The guard knows embedders by a name of their own: a chat backend may share theirs.
        guarded = replace(decision, backends=tuple(guard_name(b) for b in decision.backends))
        texts = [item.text for item in work.items if item.text is not None]
        if not texts:  # token arrays: nothing to scan, so only an allow policy lets them leave
            policy = self._guard.policy_for(work.ctx, guarded)
            if policy != "allow":
                local = tuple(b for b in decision.backends if self._guard.is_local(guard_name(b)))
                if not local:
                    raise PrivacyPolicyError(
                        f"token arrays cannot be scanned for PII and the privacy policy is '{policy}', "
                        f"but route '{decision.route}' has no local embedder"
                    )
                reasons = (*decision.reasons, f"tokens unscanned -> {policy}")
                work.decision = replace(decision, backends=local, reasons=reasons)
            return work.items
        as_chat = ChatRequest(model=decision.route, messages=[Message(role="user", content=t) for t in texts])
        screening = self._guard.screen(as_chat, work.ctx, guarded)
        backends = tuple(b.removeprefix(GUARD_PREFIX) for b in screening.decision.backends)
        work.screening, work.decision = screening, replace(screening.decision, backends=backends)
        withheld = tuple(b.removeprefix(GUARD_PREFIX) for b in screening.withheld)
        self._gate.withhold(replace(screening.clearance(work.ctx.origin), withheld=withheld), work.egress)
        if not backends:
            raise PrivacyPolicyError(
                f"the inputs contain PII ({screening.pii}) and must stay local, but route "
                f"'{decision.route}' has no local embedder"
            )
        if screening.redacted is None:
            return work.items
        return [EmbeddingInput(text=m.text()) for m in screening.redacted.messages]

    def _candidates(self, work: _Work, dimensions: int | None, sent: list[EmbeddingInput]) -> list[Embedder]:
        assert work.decision is not None
        tokens = work.items[0].tokens is not None
        candidates, refusals = [], []
        for name in work.decision.backends:
            embedder = self.embedders[name]
            if (why := embedder.refusal(dimensions, tokens)) is None:
                candidates.append(embedder)
            else:
                refusals.append(why)
        if not candidates:
            raise RequestError(
                "; ".join(refusals), param="dimensions" if dimensions and not tokens else "input"
            )
        if not tokens:
            self._check_lengths(candidates[0], sent)
        return candidates

    def _check_lengths(self, embedder: Embedder, sent: list[EmbeddingInput]) -> None:
        limit = self._config.max_input_tokens
        counter = getattr(embedder, "count_tokens", None)
        for i, item in enumerate(sent):
            text = item.text or ""
            # Cheap first: no tokenizer yields more tokens than characters.
            if len(text) > limit and (counter is None or counter(text) > limit):
                raise RequestError(
                    f"input[{i}] is longer than the {limit}-token limit for embeddings", param="input"
                )

    def _keys(
        self, work: _Work, model: str, dimensions: int | None, sent: list[EmbeddingInput]
    ) -> list[str] | None:
        if self.cache is None or work.ctx.cache in ("no-store", "no-cache"):
            return None
        if work.screening is not None and work.screening.findings and not self._cache_pii:
            return None
        tenant = tenant_of(work.ctx)
        return [vector_key(tenant, model, dimensions, item.cache_text()) for item in sent]

    async def _fill(
        self,
        work: _Work,
        candidates: list[Embedder],
        misses: list[int],
        sent: list[EmbeddingInput],
        dimensions: int | None,
        vectors: list[NDArray[np.float32] | None],
        tokens: list[int],
    ) -> None:
        first = candidates[0]
        size = first.max_batch
        batches = [misses[i : i + size] for i in range(0, len(misses), size)]
        slots = asyncio.Semaphore(getattr(first, "max_concurrency", 1))

        async def one(batch: list[int]) -> None:
            async with slots:
                used, embedded = await self._call(work, candidates, [sent[i] for i in batch], dimensions)
            for row, i in enumerate(batch):
                vectors[i], tokens[i] = embedded.vectors[row], embedded.tokens[row]
            spent = sum(embedded.tokens)
            work.sent_tokens += spent
            work.cost_usd += self._price(used.name, spent)
            work.backend = used.name

        await asyncio.gather(*(one(batch) for batch in batches))

    async def _call(
        self,
        work: _Work,
        candidates: Sequence[Embedder],
        inputs: list[EmbeddingInput],
        dimensions: int | None,
    ) -> tuple[Embedder, Embedded]:
        """One batch along the route: a retryable failure moves to the next embedder (same model)."""
        error: BackendError | None = None
        clearance = work.screening.clearance(work.ctx.origin) if work.screening else None
        for position, embedder in enumerate(candidates):
            step = "fallback" if position else "primary"
            if not self._gate.admits(embedder.name, embedder.local, clearance, step, work.egress):
                continue  # the privacy policy keeps the inputs off this embedder
            try:
                embedded = await embedder.embed(inputs, dimensions)
            except BackendError as exc:
                work.attempts.append(Attempt.error(embedder.name, exc))
                error = exc
                if not exc.retryable:
                    raise
                continue
            work.attempts.append(Attempt.ok(embedder.name))
            return embedder, embedded
        raise (
            error
            or self._gate.refusal(work.decision.route if work.decision else "", work.egress)
            or BackendError("no embedder to try")
        )

    def _price(self, backend: str, tokens: int) -> float:
        model = self.embedders[backend].model
        return self._pricer.price_backend(self._configs[backend], model, Usage(tokens, 0))

    def _write(self, work: _Work, status: int, error_type: str | None) -> None:
        ctx, decision = work.ctx, work.decision
        texts = "\n".join(item.text or "" for item in work.items)
        self._record(
            LedgerRecord(
                ts=ctx.started_at,
                request_id=ctx.request_id,
                api="embeddings",
                api_key_id=ctx.api_key_id,
                environment=ctx.environment,
                feature=ctx.feature,
                cohort=cohort_label(self._secret, self._cohorts, ctx.cohort),
                traffic=ctx.origin,
                route=decision.route if decision else None,
                backend=work.backend,
                model=work.model,
                reported_model=work.model,
                prompt_hash=prompt_hmac(self._secret, texts) if work.items else None,
                prompt_text=texts if self._log_prompts and work.items else None,
                prompt_tokens=work.sent_tokens,
                latency_ms=(time.perf_counter() - ctx.started_perf) * 1000,
                cost_usd=work.cost_usd,
                status=status,
                error_type=error_type,
                cache=work.cache,
                saved_usd=work.saved_usd,
                rule=decision.rule if decision else None,
                reasons=list(decision.reasons) if decision else [],
                attempts=as_text(work.attempts),
                pii=work.screening.pii if work.screening else None,
                privacy=work.screening.policy if work.screening else None,
                texts=len(work.items),
                cached_texts=work.cached,
                egress=work.egress,
            )
        )
