"""The one seam every model backend implements.

A backend takes a ``ChatRequest`` (OpenAI shape) and the concrete upstream model name, and returns
a ``ChatResponse`` or an async iterator of ``chat.completion.chunk`` dicts. It raises only
``BackendError`` subclasses (translated from httpx/SDK/llama.cpp errors with ``from exc``). It knows
nothing of routing, caching or the ledger.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from hybridgate.types import ChatRequest, ChatResponse, Json


class Backend(Protocol):
    name: str
    model: str  # the default upstream model id
    local: bool  # True when prompts never leave this deployment

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse: ...

    def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        """Yield ``chat.completion.chunk`` dicts; the last one carries ``usage``.

        An async generator, so a caller that stops early can ``aclose()`` it and free the
        upstream connection at once.
        """
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...
