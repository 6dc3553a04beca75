"""A cloud backend whose API key variable is empty: built, loudly, but never called.

An empty ``OPENAI_API_KEY`` (an ``.env`` or Secret that leaves the cloud tier out) must not stop
a deployment that can serve from its local tier. The backend stays in its routes and answers every
call with ``UpstreamUnavailableError``, which the cascade treats as any unavailable upstream: it
tries the route's next backend, and a route with nothing else answers 503 saying which variable to
set. A variable that is not set at all is still a start-up error (a typo in a name fails loudly).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

from hybridgate.errors import UpstreamUnavailableError
from hybridgate.types import ChatRequest, ChatResponse, Json

log = logging.getLogger(__name__)


class DisabledBackend:
    """Stands in for backend ``name`` whose key, read from ``$env_var``, is empty."""

    def __init__(self, name: str, model: str, env_var: str) -> None:
        self.name = name
        self.model = model
        self.local = False
        self.disabled = f"${env_var} is empty"
        log.warning(
            "backend '%s' is DISABLED: its API key variable $%s is empty; its routes skip it "
            "(set the variable and restart to enable it)",
            name,
            env_var,
        )

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        raise self._error()

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        raise self._error()
        yield {}  # pragma: no cover - makes this an async generator, as the protocol wants

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _error(self) -> UpstreamUnavailableError:
        return UpstreamUnavailableError(f"backend '{self.name}' is disabled: {self.disabled}")
