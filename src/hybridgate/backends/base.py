"""The one seam every model backend implements.

A backend takes a ``ChatRequest`` (OpenAI shape) and the concrete upstream model name, and returns
a ``ChatResponse`` or an async iterator of ``chat.completion.chunk`` dicts. It raises only
``BackendError`` subclasses (translated from aiohttp/llama.cpp errors with ``from exc``). It knows
nothing of routing, caching or the ledger.

What a caller may read of an upstream failure is decided here too (``status_error``): the
upstream's URL, raw body and credential complaints go to the log, never into an error message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Mapping
from http import HTTPStatus
from typing import Protocol

from hybridgate.errors import BackendError, UpstreamAuthError, UpstreamStatusError
from hybridgate.types import ChatRequest, ChatResponse, Json

log = logging.getLogger("hybridgate.backends")

# Upstream statuses that mean "this request is wrong": the upstream's own message says which
# parameter, so it is passed on. Any other status gets a message written here.
CALLER_FAULT = frozenset({400, 404, 413, 422})
_WIRE_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


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


def status_error(
    backend: str,
    status: int,
    headers: Mapping[str, str],
    *,
    type: str | None = None,
    message: str = "",
    param: str | None = None,
) -> BackendError:
    """The error to raise for an upstream's HTTP error ``status``, fit for the caller's eyes.

    ``type``/``message``/``param`` come from the upstream's error object, when it sent one. The
    full story goes to the log. A 401/403 is the gateway's credentials failing, not the caller's:
    a 502 ``UpstreamAuthError`` with no word of the provider's (which may quote part of the key).
    """
    log.warning("backend '%s': upstream answered HTTP %d %s: %s", backend, status, type or "", message[:2000])
    error: BackendError
    if status in (401, 403):
        error = UpstreamAuthError(
            f"upstream authentication failed for backend '{backend}'; "
            "the gateway's operator must check the key it is configured with"
        )
    else:
        kind = type if type and _WIRE_TYPE.fullmatch(type) else "upstream_error"
        caller = status in CALLER_FAULT and bool(message)
        text = (
            f"backend '{backend}' refused the request: {message[:1000]}"
            if caller
            else f"backend '{backend}' failed upstream: HTTP {status} {_phrase(status)}".rstrip()
        )
        error = UpstreamStatusError(text, status_code=status, type=kind, param=param if caller else None)
    error.retry_after_s = retry_after_s(headers)
    return error


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else ""
