"""How offline tools call the gateway: through its own pipeline, exactly as traffic would.

Offline tooling (evals, judge, replay); never imported by the request path. Each call gets its own
``RequestContext`` tagged with a ``feature`` (``eval``, ``eval-judge``, ``replay``) so the ledger
rows it leaves are easy to tell from real traffic.

Privacy: every call goes through the pipeline's screen and egress gate. ``policy`` (the effective
policy of the request a call derives from: the case a judge grades, the logged request a replay
repeats) joins the strictest-wins set, so a derived call is never held to a looser policy.

Which route answers: a named route is forced with ``route_override``, like the
``x-hybridgate-route`` header. The default route (``auto``) is not forced: the request names it as
its model so the routing rules run, because evaluating ``auto`` means evaluating the policy.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from hybridgate.config import GatewayConfig
from hybridgate.pipeline.core import Completion, Pipeline
from hybridgate.types import ChatRequest, RequestContext

AUTO = "auto"
ORIGINS = {"eval": "eval", "eval-judge": "judge", "replay": "replay"}


@dataclass(frozen=True)
class Called:
    completion: Completion
    latency_ms: float


def context(
    config: GatewayConfig, route: str | None, feature: str, policy: str | None = None
) -> RequestContext:
    """A fresh context; ``route`` None or the default route lets the router decide."""
    by_rules = route is None or route in (AUTO, config.default_route)
    return RequestContext(
        request_id=f"{feature}-{uuid.uuid4().hex[:16]}",
        environment=config.environment,
        feature=feature,
        route_override=None if by_rules else route,
        cache="no-store",  # evals measure the models, never an answer cached earlier
        privacy_policy=policy,
        origin=ORIGINS.get(feature, "eval"),
        started_at=time.time(),
        started_perf=time.perf_counter(),
    )


def addressed(request: ChatRequest, config: GatewayConfig, route: str | None) -> ChatRequest:
    """The request with ``model`` naming the route (or the default route, for the policy)."""
    return request.model_copy(update={"model": route or config.default_route})


async def ask(
    pipeline: Pipeline,
    config: GatewayConfig,
    request: ChatRequest,
    route: str | None,
    feature: str,
    policy: str | None = None,
) -> Called:
    """Send one request through the pipeline; errors (``GatewayError``) propagate to the caller."""
    ctx = context(config, route, feature, policy)
    completion = await pipeline.complete(addressed(request, config, route), ctx)
    return Called(completion, (time.perf_counter() - ctx.started_perf) * 1000)
