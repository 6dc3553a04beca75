"""Step 3 of the flow: call Anthropic's Messages API (``POST {base_url}/v1/messages``).

Translates the OpenAI-shaped ``ChatRequest`` with wire/anthropic.py, sends it over one pooled
httpx client, parses the SSE stream itself, and turns every failure into the ``BackendError`` tree
with ``raise ... from exc``. It knows nothing of routing, caching or the ledger.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from hybridgate.backends.base import retry_after_s
from hybridgate.config import AnthropicBackend as AnthropicConfig
from hybridgate.errors import (
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from hybridgate.types import ChatRequest, ChatResponse, Json
from hybridgate.wire.anthropic import AnthropicStreamReader, completion_from_message, to_anthropic_request


class AnthropicBackend:
    """A Backend for the Anthropic Messages API, or anything that speaks it."""

    def __init__(self, name: str, config: AnthropicConfig, api_key: str | None) -> None:
        self.name = name
        self.model = config.model
        self.local = config.local
        self.config = config
        self.url = f"{config.base_url.rstrip('/')}/v1/messages"
        self._api_key = api_key
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        body = self._body(request, model, stream=False)
        with self._translate_errors():
            response = await self._http().post(self.url, json=body)
            self._raise_for_status(response)
        try:
            payload = response.json()
        except ValueError as exc:
            raise UpstreamProtocolError(f"{self._who} answered with a body that is not JSON") from exc
        return ChatResponse(completion_from_message(payload))

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        body = self._body(request, model, stream=True)
        reader = AnthropicStreamReader()
        with self._translate_errors():
            async with self._http().stream("POST", self.url, json=body) as response:
                if response.is_error:
                    await response.aread()
                self._raise_for_status(response)
                async for event in _sse_events(response.aiter_lines()):
                    for chunk in reader.feed(event):
                        yield chunk
        if not reader.finished:
            raise UpstreamProtocolError(f"{self._who}: the stream ended before message_stop")

    @property
    def _who(self) -> str:
        return f"anthropic backend '{self.name}'"

    def _http(self) -> httpx.AsyncClient:
        # Created once and shared by all requests so connections are pooled; aclose() ends it.
        if self._client is None:
            headers = {"anthropic-version": self.config.version, "content-type": "application/json"}
            if self._api_key:
                headers["x-api-key"] = self._api_key
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(self.config.timeout_s),
                limits=httpx.Limits(max_connections=self.config.max_connections),
            )
        return self._client

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> Json:
        limit = self.config.default_max_tokens
        return to_anthropic_request(request, model, default_max_tokens=limit, stream=stream)

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            message = f"{self._who} timed out after {self.config.timeout_s}s; raise its timeout_s if needed"
            raise UpstreamTimeoutError(message) from exc
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            raise UpstreamUnavailableError(f"{self._who} is unreachable at {self.url}: {exc}") from exc
        except httpx.TransportError as exc:
            # Read/protocol errors after the connection was made: the reply was cut off.
            raise UpstreamProtocolError(f"{self._who}: the connection broke mid-reply ({exc})") from exc

    def _raise_for_status(self, response: httpx.Response) -> None:
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            type_, message = _error_details(response)
            request_id = response.headers.get("request-id")
            suffix = f" (request-id {request_id})" if request_id else ""
            error = UpstreamStatusError(
                f"{self._who} answered {response.status_code}: {message}{suffix}",
                status_code=response.status_code,
                type=type_,
            )
            error.retry_after_s = retry_after_s(response.headers)
            raise error from exc


def _error_details(response: httpx.Response) -> tuple[str, str]:
    """The ``error.type`` and ``error.message`` of an Anthropic error body, if it is one."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or "upstream_error"), str(error.get("message") or "")
    return "upstream_error", response.text[:200] or response.reason_phrase


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[Json]:
    """Decoded events of a server-sent-events body: ``event:`` name, ``data:`` JSON payload."""
    name, data = "", []
    async for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            yield _decode(name, data)
            name, data = "", []
        # ":" comment lines (keep-alives) and unknown fields are ignored, as SSE specifies
    if data:
        yield _decode(name, data)


def _decode(name: str, data: list[str]) -> Json:
    try:
        payload = json.loads("\n".join(data))
    except ValueError as exc:
        raise UpstreamProtocolError(
            f"anthropic stream: event {name or '?'} carries data that is not JSON"
        ) from exc
    if not isinstance(payload, dict):
        raise UpstreamProtocolError(
            f"anthropic stream: event {name or '?'} carries data that is not an object"
        )
    payload.setdefault("type", name)
    return payload
