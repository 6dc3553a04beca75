"""Shadow traffic: copy a sample of a route's requests to a candidate route, in the background.

The client's answer never waits for, nor depends on, the shadow copy: it runs as a task after the
live answer is ready, as a non-streamed request whose ledger row carries ``shadow_of`` (the live
request's id), so ``hybridgate usage`` and evals can compare both outcomes. The copy goes through
the same pipeline and egress gate, carrying the live request's effective privacy policy (in
``privacy_policy``, where the strictest applies): a copy to a more permissive candidate route is
held to the policy the live request was held to.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from hybridgate.config import RouteConfig
from hybridgate.errors import GatewayError
from hybridgate.types import ChatRequest, Decision, RequestContext

log = logging.getLogger("hybridgate.pipeline.shadow")

Complete = Callable[[ChatRequest, RequestContext], Awaitable[object]]


class Shadow:
    def __init__(self, routes: Mapping[str, RouteConfig], complete: Complete, rng: random.Random) -> None:
        self._routes = routes
        self._complete = complete
        self._rng = rng
        self._tasks: set[asyncio.Task[None]] = set()

    def maybe(
        self, request: ChatRequest, ctx: RequestContext, decision: Decision, policy: str | None = None
    ) -> None:
        """``policy``: the live request's effective privacy policy, which the copy keeps."""
        route = self._routes.get(decision.route)
        if ctx.shadow_of or route is None or route.shadow is None:
            return
        if self._rng.random() * 100 >= route.shadow.percent:
            return
        copy = request.model_copy(update={"stream": False, "stream_options": None})
        shadow_ctx = replace(
            ctx,
            request_id=f"{ctx.request_id}-shadow",
            route_override=route.shadow.route,
            shadow_of=ctx.request_id,
            origin="shadow",
            privacy_policy=policy or ctx.privacy_policy,
            started_at=time.time(),
            started_perf=time.perf_counter(),
        )
        task = asyncio.get_running_loop().create_task(self._run(copy, shadow_ctx))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, request: ChatRequest, ctx: RequestContext) -> None:
        try:
            await self._complete(request, ctx)
        except GatewayError as exc:  # the pipeline has recorded it in the ledger already
            log.info("shadow request %s failed: %s", ctx.request_id, exc.type)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for shadow requests still running (at shutdown), then cancel the stragglers."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
