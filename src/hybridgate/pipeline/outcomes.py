"""Outcome sampling: grade a share of live answers in the background, and take callers' feedback.

For a route with ``[routes.X.outcomes]`` and at least two tiers (``try[0]`` cheap, ``try[-1]``
strong), ``sample_percent`` of its live answers are graded after the client has its answer:

- **check**: the cascade escalated past the cheap tier because its answer failed the route's
  checks: the cheap answer was bad, and grading costs nothing;
- **judge**: otherwise the missing tier's answer is fetched (the strong one when the cheap tier
  served, or the reverse) and the strong tier grades the cheap answer against its own (GOOD or
  BAD). These calls are traffic class ``judge`` in the ledger and their cost is the outcome's
  ``judge_cost_usd``: overhead, never charged to the caller's key. A request in which the privacy
  screen found PII, or held to ``local_only``/``block``/``redact``, is never sent to a judge
  that is not local;
- **feedback**: ``POST /v1/feedback`` rates the answer the caller got (``feedback``).

Nothing here delays or fails the request: grading runs as tasks after the answer, and any error
is logged and dropped. The router's features of the prompt are stored with the outcome (prompt
text only with ``[ledger] log_prompts``). A bounded memory of recent live requests (their id,
key, route, tier and the router's window of the last user turn) lets feedback find its request
and features without the prompt ever reaching disk.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from hybridgate.config import GatewayConfig, RouteConfig
from hybridgate.errors import GatewayError, RequestError, StoreUnavailableError
from hybridgate.ledger.decision_metrics import DecisionMetrics
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.outcomes import Outcome, Outcomes, PostgresOutcomes, SqliteOutcomes
from hybridgate.types import ChatRequest, Decision, Message, RequestContext

if TYPE_CHECKING:
    from hybridgate.pipeline.core import Pipeline
    from hybridgate.router import RuleRouter

log = logging.getLogger("hybridgate.outcomes")

REMEMBERED = 10_000  # recent live requests kept for feedback (text cut to the router's window)
MAX_GRADING = 32  # gradings in flight per process; a sample beyond this is skipped, never queued
STRICT = ("local_only", "block", "redact")
JUDGE_SYSTEM = (
    "You check a cheaper model's answer against your own answer to the same question. Reply with one "
    "word on the first line: GOOD if the cheaper answer is as correct and useful as yours, BAD if not. "
    "On the second line say why, in one short sentence."
)
VERDICT = re.compile(r"\b(GOOD|BAD|PASS|FAIL)\b", re.I)
HEAD_TAIL_CHARS = 4000


Complete = Callable[[ChatRequest, RequestContext], Awaitable[Any]]


@dataclass(frozen=True)
class LiveAnswer:
    """A live answer, as grading needs it."""

    request: ChatRequest
    ctx: RequestContext
    decision: Decision
    backend: str
    answer: str | None  # the answer's text (None: a stream the gateway did not assemble)
    escalated: bool  # the cascade moved past the cheap tier (its answer failed a check)
    pii: bool  # the privacy screen found PII (or a strict policy applies without a screen)
    policy: str | None  # the request's effective privacy policy, which judge calls keep


@dataclass(frozen=True)
class Remembered:
    route: str
    feature: str | None
    tier: str
    backend: str
    text: str
    ts: float


def verdict(text: str) -> float | None:
    """1.0 for GOOD (or PASS), 0.0 for BAD (or FAIL), None when the judge gave neither."""
    match = VERDICT.search(text.replace("*", ""))
    return None if match is None else float(match.group(1).upper() in ("GOOD", "PASS"))


def _cut(text: str) -> str:
    if len(text) <= 2 * HEAD_TAIL_CHARS:
        return text
    return text[:HEAD_TAIL_CHARS] + "\n...\n" + text[-HEAD_TAIL_CHARS:]


def answer_text(response: Any) -> str:
    choices = response.body.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


class OutcomeSampler:
    def __init__(
        self,
        config: GatewayConfig,
        complete: Complete,
        store: Outcomes,
        router: RuleRouter,
        metrics: DecisionMetrics,
        rng: random.Random,
    ) -> None:
        self._config = config
        self._complete = complete
        self.store = self._store = store
        self._router = router
        self._metrics = metrics
        self._rng = rng
        self._recent: OrderedDict[tuple[str, str], Remembered] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0  # samples not graded because MAX_GRADING were in flight

    def tiers(self, route_name: str) -> tuple[str, str] | None:
        route = self._config.routes.get(route_name)
        return (route.try_[0], route.try_[-1]) if route is not None and len(route.try_) > 1 else None

    def wants_answer(self, route_name: str) -> bool:
        """Whether a stream on this route should be assembled for grading."""
        route = self._config.routes.get(route_name)
        return route is not None and route.outcomes is not None and route.outcomes.sample_percent > 0

    def observe(self, served: LiveAnswer) -> None:
        """Count a live answer by tier, remember it for feedback, and maybe grade it."""
        ctx, decision = served.ctx, served.decision
        tiers = self.tiers(decision.route)
        if ctx.origin != "live" or ctx.shadow_of or tiers is None or decision.rule == "concrete":
            return
        tier = "strong" if served.backend == tiers[1] else "cheap"
        self._metrics.served(decision.route, ctx.feature, tier)
        text = served.request.last_user_text() or served.request.prompt_text()
        self._remember(
            # A prompt with PII is not kept even in memory: its features would carry its words.
            ctx,
            Remembered(
                decision.route,
                ctx.feature,
                tier,
                served.backend,
                "" if served.pii else _cut(text),
                time.time(),
            ),
        )
        route = self._config.routes[decision.route]
        if route.outcomes is None or self._rng.random() * 100 >= route.outcomes.sample_percent:
            return
        if len(self._tasks) >= MAX_GRADING:
            self.skipped += 1  # a burst: grading must not pile up behind the traffic
            return
        self._spawn(self._grade(served, route, tiers, tier))

    def _remember(self, ctx: RequestContext, item: Remembered) -> None:
        key = (ctx.request_id, ctx.api_key_id or "")
        self._recent[key] = item
        self._recent.move_to_end(key)
        while len(self._recent) > REMEMBERED:
            self._recent.popitem(last=False)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(work: Awaitable[None]) -> None:
        try:
            await work
        except (GatewayError, StoreUnavailableError, OSError) as exc:
            log.info("outcome not recorded: %s", exc)
        except Exception:  # grading must never take anything else down
            log.exception("outcome grading failed")

    async def _grade(self, served: LiveAnswer, route: RouteConfig, tiers: tuple[str, str], tier: str) -> None:
        ctx = served.ctx
        base = await asyncio.to_thread(self._outcome, served, tier)
        if served.escalated:
            detail = "the cheap answer failed the route's checks (escalated)"
            await self._save(replace(base, source="check", cheap_score=0.0, detail=detail))
            return
        assert route.outcomes is not None
        # No text to compare (a stream not assembled, an answer that only calls tools): no grade.
        if not route.outcomes.judge or not served.answer or not self._may_judge(served, tiers):
            return
        cost = 0.0
        other = tiers[0] if tier == "strong" else tiers[1]
        answered = await self._complete(
            self._as_backend(served.request, other), self._judge_ctx(ctx, served, "answer")
        )
        cost += answered.cost_usd
        other_text = answer_text(answered.response)
        if not other_text:
            return
        cheap, strong = (served.answer, other_text) if tier == "cheap" else (other_text, served.answer)
        question = served.request.last_user_text() or served.request.prompt_text()
        judged = await self._complete(
            self._judge_request(question, strong, cheap, tiers[1], route.outcomes.judge_max_tokens),
            self._judge_ctx(ctx, served, "judge"),
        )
        cost += judged.cost_usd
        words = answer_text(judged.response)
        score = verdict(words)
        if score is None:
            log.info("judge gave no verdict for %s: %r", ctx.request_id, words[:120])
            return
        await self._save(
            replace(base, source="judge", cheap_score=score, judge_cost_usd=cost, detail=words[:200])
        )

    def _may_judge(self, served: LiveAnswer, tiers: tuple[str, str]) -> bool:
        """Never a request with PII (or under a strict policy) to a judge off the machine."""
        remote = any(not self._config.backends[name].local for name in tiers)
        return not (remote and (served.pii or (served.policy in STRICT)))

    def _outcome(self, served: LiveAnswer, tier: str) -> Outcome:
        ctx, route = served.ctx, served.decision.route
        text = served.request.last_user_text() or served.request.prompt_text()
        # The token n-grams are a bag of the prompt's words: none for a prompt with PII.
        features, sha = (None, None) if served.pii else self._features(route, text)
        return Outcome(
            request_id=ctx.request_id,
            api_key_id=ctx.api_key_id or "",
            source="judge",
            ts=ctx.started_at or time.time(),
            route=route,
            feature=ctx.feature,
            served=tier,
            backend=served.backend,
            router_sha256=sha,
            features=features,
            prompt_text=text if self._config.ledger.log_prompts else None,
        )

    def _features(self, route: str, text: str) -> tuple[str | None, str | None]:
        learned = self._router.learned.get(route)
        if learned is None:
            return None, None
        from hybridgate.router.stored_features import encode

        spec = learned.featurizer.spec
        return encode(learned.featurizer.one(text), spec), learned.artifact.sha256

    def _judge_ctx(self, ctx: RequestContext, served: LiveAnswer, step: str) -> RequestContext:
        return RequestContext(
            request_id=f"{ctx.request_id}-{step}-{uuid.uuid4().hex[:6]}",
            environment=ctx.environment,
            feature=ctx.feature,
            privacy_policy=served.policy or ctx.privacy_policy,
            origin="judge",
            cache="no-store",
            started_at=time.time(),
            started_perf=time.perf_counter(),
        )

    @staticmethod
    def _as_backend(request: ChatRequest, backend: str) -> ChatRequest:
        return request.model_copy(update={"model": backend, "stream": False, "stream_options": None})

    @staticmethod
    def _judge_request(question: str, strong: str, cheap: str, judge: str, max_tokens: int) -> ChatRequest:
        text = (
            f"Question:\n{_cut(question)}\n\nYour answer:\n{_cut(strong) or '(empty)'}\n\n"
            f"Cheaper model's answer:\n{_cut(cheap) or '(empty)'}"
        )
        return ChatRequest(
            model=judge,
            messages=[Message(role="system", content=JUDGE_SYSTEM), Message(role="user", content=text)],
            max_tokens=max_tokens,
            temperature=0,
        )

    async def _save(self, outcome: Outcome) -> None:
        await self._store.save(outcome)
        # /metrics counts each sampled grade once; feedback (repeatable) is counted by `usage`
        if outcome.source != "feedback" and outcome.route is not None and outcome.cheap_score is not None:
            self._metrics.graded(outcome.route, outcome.feature, outcome.served, outcome.cheap_score)

    async def feedback(self, request_id: str, api_key_id: str, score: float) -> Outcome | None:
        """Record the caller's score for its own request; None when the key made no such request."""
        found = self._recent.get((request_id, api_key_id))
        if found is None:
            row = await self._store.owned_request(request_id, api_key_id)
            if row is None:
                return None
            tiers = self.tiers(str(row["route"])) if row["route"] else None
            if tiers is None:
                raise RequestError(
                    f"request '{request_id}' was answered on route '{row['route']}', which has one "
                    "tier: there is no routing decision to learn from",
                    param="request_id",
                )
            tier = "strong" if row["backend"] == tiers[1] else "cheap"
            found = Remembered(str(row["route"]), row["feature"], tier, str(row["backend"]), "", 0.0)
        features, sha = (
            await asyncio.to_thread(self._features, found.route, found.text) if found.text else (None, None)
        )
        outcome = Outcome(
            request_id=request_id,
            api_key_id=api_key_id,
            source="feedback",
            ts=found.ts or time.time(),
            route=found.route,
            feature=found.feature,
            served=found.tier,
            backend=found.backend,
            cheap_score=score if found.tier == "cheap" else None,
            strong_score=score if found.tier == "strong" else None,
            router_sha256=sha,
            features=features,
            prompt_text=found.text if self._config.ledger.log_prompts and found.text else None,
        )
        await self._save(outcome)
        return outcome

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for grading still running (at shutdown), then cancel the stragglers."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()


def build_outcome_sampler(
    config: GatewayConfig,
    env: Mapping[str, str],
    pipeline: Pipeline,
    router: RuleRouter,
    metrics: GatewayMetrics,
) -> OutcomeSampler:
    """Outcomes live in the ledger's database: its SQLite file, or the shared PostgreSQL."""
    store = outcome_store(config, env)
    known = config.known_features()

    def label(feature: str | None) -> str:
        return "none" if feature is None else feature if feature in known else "other"

    decisions = DecisionMetrics(metrics.registry, label)
    return OutcomeSampler(config, pipeline.complete, store, router, decisions, random.Random())


def outcome_store(config: GatewayConfig, env: Mapping[str, str]) -> Outcomes:
    if config.ledger.store == "sqlite":
        return SqliteOutcomes(config.ledger.path)
    assert config.postgres is not None  # the config validator requires [postgres] for this store
    server = config.postgres
    password = env.get(server.password_env) if server.password_env else None
    return PostgresOutcomes(server.dsn, password=password, timeout_s=server.timeout_s)
