"""Run a Decision: try the route's backends in order until one answers.

A backend failure that is the upstream's trouble (``BackendError.retryable``) moves on to the next
backend; an error caused by the request itself is raised at once, since every backend would refuse
it alike. A stream can fall back only until its first chunk has arrived: after that the caller has
seen output, and a failure is reported in-stream by the API layer.

A complete answer is also checked (``checks.py``: JSON / schema for ``response_format``, tool calls
against their schemas). A failed check escalates to the next backend; the last backend's answer
is returned even when it fails, since a best effort beats an error the caller cannot act on.

Every attempt is appended to ``attempts`` as ``"backend:ok"``, ``"backend:error:<type>"`` or
``"backend:check_failed:<check>"`` so the ledger shows the whole path, including for requests
that failed everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

from hybridgate.backends.base import Backend
from hybridgate.checks import run_checks
from hybridgate.errors import BackendError, UpstreamUnavailableError
from hybridgate.types import ChatRequest, ChatResponse, Decision, Json


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


class Cascade:
    def __init__(self, backends: Mapping[str, Backend]) -> None:
        self._backends = backends

    def _candidates(self, decision: Decision) -> list[Served]:
        return [
            Served(backend, decision.model_override or backend.model)
            for backend in (self._backends[name] for name in decision.backends)
        ]

    async def complete(
        self, decision: Decision, request: ChatRequest, attempts: list[str]
    ) -> tuple[Served, ChatResponse]:
        last: BackendError | None = None
        candidates = self._candidates(decision)
        for position, served in enumerate(candidates, start=1):
            try:
                response = await served.backend.complete(request, served.model)
            except BackendError as exc:
                attempts.append(f"{served.backend.name}:error:{exc.type}")
                if not exc.retryable:
                    raise
                last = exc
                continue
            failed = None
            for check in run_checks(request, response):
                response = check.repaired or response
                failed = failed or (None if check.passed else check)
            if failed is not None and position < len(candidates):
                attempts.append(f"{served.backend.name}:check_failed:{failed.name}")
                continue
            attempts.append(f"{served.backend.name}:{'check_failed:' + failed.name if failed else 'ok'}")
            return served, response
        raise last or UpstreamUnavailableError(f"route '{decision.route}' has no backend to try")

    async def stream(self, decision: Decision, request: ChatRequest, attempts: list[str]) -> StartedStream:
        last: BackendError | None = None
        for served in self._candidates(decision):
            chunks = served.backend.stream(request, served.model)
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                attempts.append(f"{served.backend.name}:error:empty_stream")
                last = BackendError(f"backend '{served.backend.name}' sent an empty stream")
                continue
            except BackendError as exc:
                attempts.append(f"{served.backend.name}:error:{exc.type}")
                if not exc.retryable:
                    raise
                last = exc
                continue
            attempts.append(f"{served.backend.name}:ok")
            return StartedStream(served, first, chunks)
        raise last or UpstreamUnavailableError(f"route '{decision.route}' has no backend to try")
