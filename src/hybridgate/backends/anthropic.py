"""Step 3 of the flow: call Anthropic's Messages API (``POST {base_url}/v1/messages``).

Translates the OpenAI-shaped ``ChatRequest`` with wire/anthropic_requests.py (the answer back with
anthropic_responses.py and anthropic_stream.py), sends it over one pooled aiohttp session
(backends/http.py), parses the SSE stream itself, and turns every failure into the ``BackendError``
tree with ``raise ... from exc``. Redirects are never followed; error messages
name the backend, never its URL or what the upstream said (that goes to the log). It knows nothing
of routing, caching or the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import orjson

from hybridgate.backends.base import status_error
from hybridgate.backends.http import Pool, env_proxy
from hybridgate.backends.sse import EventSplitter
from hybridgate.config import AnthropicBackend as AnthropicConfig
from hybridgate.errors import (
    UpstreamProtocolError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from hybridgate.types import ChatRequest, ChatResponse, Json
from hybridgate.wire.anthropic_requests import to_anthropic_request
from hybridgate.wire.anthropic_responses import completion_from_message
from hybridgate.wire.anthropic_stream import AnthropicStreamReader
from hybridgate.wire.fields import anthropic_beta
from hybridgate.wire.upstream import check_anthropic_message

log = logging.getLogger("hybridgate.backends")


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
            response = await self._post(body, anthropic_beta(request))
            try:
                content = await response.read()
            finally:
                response.release()
        self._raise_for_status(response, content)
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"{self._who} answered with a body that is not JSON") from exc
        check_anthropic_message(payload, self._who)
        return ChatResponse(completion_from_message(payload))

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        body = self._body(request, model, stream=True)
        reader = AnthropicStreamReader()
        with self._translate_errors():
            response = await self._post(body, anthropic_beta(request))
            try:
                if not 200 <= response.status < 300:
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

    async def _post(self, body: Json, beta: str | None = None) -> aiohttp.ClientResponse:
        """POST and wait for the status line and headers; the caller reads and releases the body.
        ``beta``: the caller's ``anthropic-beta`` header, passed on."""
        headers = {"anthropic-beta": beta} if beta else None
        return await self._http().post(
            self.url, data=orjson.dumps(body), proxy=self._proxy, allow_redirects=False, headers=headers
        )

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
            log.warning("%s: %s is unreachable: %r", self._who, self.url, exc)
            raise UpstreamUnavailableError(f"{self._who} is unreachable") from exc
        except aiohttp.ClientError as exc:
            # Read/protocol errors after the connection was made: the reply was cut off.
            log.warning("%s: the connection to %s broke mid-reply: %r", self._who, self.url, exc)
            raise UpstreamProtocolError(f"{self._who}: the connection broke mid-reply") from exc

    def _raise_for_status(self, response: aiohttp.ClientResponse, content: bytes) -> None:
        if 200 <= response.status < 300:
            return
        if response.status < 400:  # a redirect: following it would send the prompt and key elsewhere
            log.warning("%s: %s redirected to %s", self._who, self.url, response.headers.get("location"))
            raise UpstreamProtocolError(
                f"{self._who} answered HTTP {response.status} instead of an answer; "
                "redirects are not followed"
            )
        type_, message = _error_details(content)
        request_id = response.headers.get("request-id")
        message = f"{message} (request-id {request_id})" if request_id and message else message
        raise status_error(self.name, response.status, response.headers, type=type_, message=message)


def _error_details(content: bytes) -> tuple[str | None, str]:
    """The ``error.type`` and ``error.message`` of an Anthropic error body, if it is one."""
    try:
        body: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or "upstream_error"), str(error.get("message") or "")
    log.warning("anthropic upstream answered an error without an error object: %r", content[:500])
    return None, ""


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
    if payload["type"] == "error":
        log.warning("anthropic upstream failed mid-stream: %r", payload.get("error"))
    return payload
