"""The one seam every model backend implements.

A backend takes a ``ChatRequest`` (OpenAI shape) and the concrete upstream model name, and returns
a ``ChatResponse`` or an async iterator of ``chat.completion.chunk`` dicts. It raises only
``BackendError`` subclasses (translated from aiohttp/llama.cpp errors with ``from exc``). It knows
nothing of routing, caching or the ledger.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
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


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form) or OpenAI's ``retry-after-ms``."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: rare from APIs; the default backoff applies
