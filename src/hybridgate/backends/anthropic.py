"""Step 3 of the flow: call Anthropic's Messages API (``POST {base_url}/v1/messages``).

Translates the OpenAI-shaped ``ChatRequest`` with wire/anthropic.py, sends it over one pooled
aiohttp session (backends/http.py), parses the SSE stream itself, and turns every failure into the
``BackendError`` tree with ``raise ... from exc``. It knows nothing of routing, caching or the
ledger.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import orjson

from hybridgate.backends.base import retry_after_s
from hybridgate.backends.http import Pool, env_proxy
from hybridgate.backends.sse import EventSplitter
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
        self._proxy = env_proxy(self.url)
        headers = {"anthropic-version": config.version, "content-type": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        # one pool shared by all requests so connections are reused; aclose() ends it
        self._pool = Pool(headers, config.timeout_s, config.max_connections)

    async def start(self) -> None:
        self._pool.session()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        body = self._body(request, model, stream=False)
        with self._translate_errors():
            response = await self._post(body)
            try:
                content = await response.read()
            finally:
                response.release()
        self._raise_for_status(response, content)
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"{self._who} answered with a body that is not JSON") from exc
        return ChatResponse(completion_from_message(payload))

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        body = self._body(request, model, stream=True)
        reader = AnthropicStreamReader()
        with self._translate_errors():
            response = await self._post(body)
            try:
                if response.status >= 400:
                    self._raise_for_status(response, await response.read())
                events = EventSplitter()
                # Read to the end of the body, past message_stop: only a fully read response
                # goes back to the pool.
                while True:
                    received = await response.content.readany()
                    for name, data in events.feed(received) if received else events.end():
                        for chunk in reader.feed(_decode(name, data)):
                            yield chunk
                    if not received:
                        break
            finally:
                response.release()
        if not reader.finished:
            raise UpstreamProtocolError(f"{self._who}: the stream ended before message_stop")

    @property
    def _who(self) -> str:
        return f"anthropic backend '{self.name}'"

    def _http(self) -> aiohttp.ClientSession:
        return self._pool.session()

    async def _post(self, body: Json) -> aiohttp.ClientResponse:
        """POST and wait for the status line and headers; the caller reads and releases the body."""
        return await self._http().post(self.url, data=orjson.dumps(body), proxy=self._proxy)

    def _body(self, request: ChatRequest, model: str, *, stream: bool) -> Json:
        limit = self.config.default_max_tokens
        return to_anthropic_request(request, model, default_max_tokens=limit, stream=stream)

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except TimeoutError as exc:  # before ClientError: aiohttp's timeouts are both
            message = f"{self._who} timed out after {self.config.timeout_s}s; raise its timeout_s if needed"
            raise UpstreamTimeoutError(message) from exc
        except aiohttp.ClientConnectorError as exc:  # proxy connection failures included
            raise UpstreamUnavailableError(f"{self._who} is unreachable at {self.url}: {exc}") from exc
        except aiohttp.ClientError as exc:
            # Read/protocol errors after the connection was made: the reply was cut off.
            raise UpstreamProtocolError(f"{self._who}: the connection broke mid-reply ({exc})") from exc

    def _raise_for_status(self, response: aiohttp.ClientResponse, content: bytes) -> None:
        if response.status < 400:
            return
        type_, message = _error_details(content, response.reason)
        request_id = response.headers.get("request-id")
        suffix = f" (request-id {request_id})" if request_id else ""
        error = UpstreamStatusError(
            f"{self._who} answered {response.status}: {message}{suffix}",
            status_code=response.status,
            type=type_,
        )
        error.retry_after_s = retry_after_s(response.headers)
        raise error


def _error_details(content: bytes, reason: str | None) -> tuple[str, str]:
    """The ``error.type`` and ``error.message`` of an Anthropic error body, if it is one."""
    try:
        body: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or "upstream_error"), str(error.get("message") or "")
    return "upstream_error", content[:200].decode(errors="replace") or reason or ""


def _decode(name: str, data: bytes) -> Json:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"anthropic stream: event {name or '?'} carries data that is not JSON"
        ) from exc
    if not isinstance(payload, dict):
        raise UpstreamProtocolError(
            f"anthropic stream: event {name or '?'} carries data that is not an object"
        )
    payload.setdefault("type", name)
    return payload
