"""Run a golden set against routes through the gateway's own pipeline, and grade every answer.

Offline tooling (``hybridgate eval`` / ``replay``); never imported by the request path. Cases run
concurrently up to a bound, each as its own pipeline request (ledger feature ``eval``). A case
that errors, upstream or in its grader, is recorded as a fail with the reason and the run goes
on: one broken case must never cost the results of the other forty-nine.

Latency is wall time through the pipeline as a client would see it at the chosen concurrency;
a single-threaded local model queues concurrent cases, so use ``--concurrency 1`` to measure it
unloaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError, GatewayError
from hybridgate.evals.calls import AUTO, ask
from hybridgate.evals.golden import Case, GoldenSet, case_request
from hybridgate.evals.graders import Answer, Grade, Verdict, grade
from hybridgate.evals.judge import judge
from hybridgate.evals.safety import LeakGrader, expectations, judged_refusal
from hybridgate.evals.specs import Judge, Leak
from hybridgate.gateway import Gateway, build_gateway
from hybridgate.types import ChatRequest, Json


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    route: str
    verdict: Verdict
    reason: str
    prompt: str
    tags: list[str] = field(default_factory=list)
    answer: str = ""
    cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float | None = None
    backend: str | None = None
    model: str | None = None
    error: str | None = None
    # Safety cases (refusal, leak): what was expected and what happened, for per-route rates.
    should_refuse: bool | None = None
    leak_check: bool = False
    refused: bool | None = None
    leaks: list[str] | None = None  # kinds that leaked ("canary", "EMAIL_ADDRESS"), never values

    def to_json(self) -> Json:
        return asdict(self)


OnDone = Callable[[CaseResult], None]


def check_routes(config: GatewayConfig, routes: Sequence[str]) -> None:
    """Raise ``ConfigError`` for a route the config does not define (``auto`` is the policy)."""
    for route in routes:
        if route not in config.routes and route != AUTO:
            known = ", ".join(config.routes)
            raise ConfigError(f"no route '{route}'; configured routes: {known}")


def judge_warnings(config: GatewayConfig, golden: GoldenSet, judge_route: str | None) -> list[str]:
    """Judge cases whose judge route is missing; they will fail, and the user should know why."""
    warnings = []
    for case in golden.cases:
        if isinstance(case.expect, Judge):
            route = judge_route or case.expect.route or golden.defaults.judge_route
            if route is None or (route not in config.routes and route != AUTO):
                warnings.append(f"case '{case.id}': judge route {route!r} is not configured")
    return warnings


class Runner:
    def __init__(
        self,
        gateway: Gateway,
        golden: GoldenSet,
        *,
        concurrency: int = 4,
        judge_route: str | None = None,
        feature: str = "eval",
    ) -> None:
        self._gateway = gateway
        self._golden = golden
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._judge_route = judge_route
        self._feature = feature
        self._leaks = LeakGrader()

    async def run(self, routes: Sequence[str], on_done: OnDone | None = None) -> list[CaseResult]:
        """Every case on every route; results in route order, then file order."""
        self._leaks.prepare(case.expect for case in self._golden.cases)
        jobs = [self._slot(case, route, on_done) for route in routes for case in self._golden.cases]
        return list(await asyncio.gather(*jobs))

    async def _slot(self, case: Case, route: str, on_done: OnDone | None) -> CaseResult:
        async with self._slots:
            result = await self._guarded(case, route)
        if on_done is not None:
            on_done(result)
        return result

    async def _guarded(self, case: Case, route: str) -> CaseResult:
        refuse, leak = expectations(case.expect)
        base = CaseResult(case.id, route, "fail", "", "", list(case.tags))
        base = replace(base, should_refuse=refuse, leak_check=leak)
        try:
            request = case_request(self._golden, case, route)
            base = replace(base, prompt=request.prompt_text())
            return await self._run_case(case, route, request, base)
        except Exception as exc:  # a bug in one case or grader must not abort the whole run
            return replace(base, reason=f"{type(exc).__name__}: {exc}", error=type(exc).__name__)

    async def _run_case(self, case: Case, route: str, request: ChatRequest, base: CaseResult) -> CaseResult:
        gw = self._gateway
        try:
            called = await ask(gw.pipeline, gw.config, request, route, self._feature)
        except GatewayError as exc:
            return replace(base, reason=f"{exc.type}: {exc.message}", error=exc.type)
        done = called.completion
        answer = Answer.from_response(done.response)
        usage = done.response.usage
        result = replace(
            base,
            answer=answer.text(),
            cost_usd=done.cost_usd,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=called.latency_ms,
            backend=done.backend,
            model=done.response.model or done.model,
        )
        try:
            verdict, judge_cost = await self._grade(case, request, answer, done.privacy)
        except GatewayError as exc:
            return replace(result, reason=f"judge failed: {exc.type}: {exc.message}", error=exc.type)
        return replace(
            result,
            verdict=verdict.verdict,
            reason=verdict.reason,
            judge_cost_usd=judge_cost,
            refused=verdict.refused,
            leaks=list(verdict.leaks) if verdict.leaks is not None else None,
        )

    async def _grade(
        self, case: Case, request: ChatRequest, answer: Answer, policy: str | None
    ) -> tuple[Grade, float]:
        spec = case.expect
        if isinstance(spec, Leak):
            return self._leaks.grade(spec, answer, request.prompt_text()), 0.0
        if not isinstance(spec, Judge):
            return grade(spec, answer), 0.0
        route = self._judge_route or spec.route or self._golden.defaults.judge_route
        if route is None:
            return Grade("fail", "no judge route: set defaults.judge_route or --judge-route"), 0.0
        gw, question = self._gateway, request.last_user_text()
        verdict, cost = await judge(gw.pipeline, gw.config, spec, route, question, answer, policy)
        return judged_refusal(spec, verdict), cost


async def run_golden(
    config: GatewayConfig,
    golden: GoldenSet,
    routes: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    concurrency: int = 4,
    judge_route: str | None = None,
    feature: str = "eval",
    on_done: OnDone | None = None,
) -> list[CaseResult]:
    """Build a gateway from ``config``, run the golden set on ``routes``, close the gateway."""
    check_routes(config, routes)
    gateway = build_gateway(config, env)
    await gateway.start()
    try:
        runner = Runner(gateway, golden, concurrency=concurrency, judge_route=judge_route, feature=feature)
        return await runner.run(routes, on_done)
    finally:
        await gateway.aclose()
