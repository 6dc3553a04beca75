"""Backend for any OpenAI-compatible chat-completions upstream (OpenAI, vLLM, llama.cpp server, ...).

Step 3 of the flow: the cascade hands it a ``ChatRequest`` and a concrete model; it POSTs to
``{base_url}/chat/completions`` over one pooled httpx client and returns the upstream's body, or
its chunks as they arrive, untouched. Every httpx failure and every off-format answer becomes a
``BackendError`` (``raise ... from exc``). It must not route, cache, record or reshape responses,
and must not buffer a stream: this is the hot path of every cloud request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import httpx
import orjson

from hybridgate.backends.base import retry_after_s
from hybridgate.config import OpenAICompatBackend as OpenAICompatConfig
from hybridgate.errors import (
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from hybridgate.types import ChatRequest, ChatResponse, Json

__all__ = ["OpenAICompatBackend"]


class OpenAICompatBackend:
    def __init__(self, name: str, config: OpenAICompatConfig, api_key: str | None) -> None:
        self.name = name
        self.model = config.model
        self.local = config.local
        self._config = config
        self._url = f"{config.base_url.rstrip('/')}/chat/completions"
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        body = request.upstream_body(model)
        body["stream"] = False
        # OpenAI answers 400 to stream_options on a non-streaming request.
        body.pop("stream_options", None)
        response = await self._send(body)
        try:
            content = await self._read(response)
        finally:
            await response.aclose()
        if response.status_code >= 400:
            raise self._status_error(response.status_code, content, response.headers)
        data = self._parse(content, response.status_code)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise UpstreamProtocolError(f"{self._who()} answered without 'choices': {content[:200]!r}")
        return ChatResponse(data)

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        body = request.upstream_body(model)
        body["stream"] = True
        # Always ask for the usage chunk so the ledger can count tokens; the pipeline strips it
        # again when the client did not ask for it.
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        response = await self._send(body)
        try:
            if response.status_code >= 400:
                raise self._status_error(response.status_code, await self._read(response), response.headers)
            lines = response.aiter_lines()
            while (data := await self._next_data(lines)) != "[DONE]":
                yield self._chunk(data)
            # Read past [DONE] to the end of the body: only a fully read response hands its
            # connection back to the pool; otherwise the next request pays for a new one.
            with contextlib.suppress(httpx.HTTPError):
                async for _ in lines:
                    pass
        finally:
            await response.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            size = self._config.max_connections
            self._client = httpx.AsyncClient(
                headers=self._headers,
                timeout=self._config.timeout_s,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            )
        return self._client

    def _who(self) -> str:
        return f"backend '{self.name}' ({self._url})"

    async def _send(self, body: Json) -> httpx.Response:
        """POST and wait for the status line and headers; the body is left unread."""
        client = self._http()
        request = client.build_request("POST", self._url, content=orjson.dumps(body))
        try:
            return await client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(
                f"{self._who()} did not answer within {self._config.timeout_s}s"
            ) from exc
        except httpx.RequestError as exc:
            raise UpstreamUnavailableError(f"{self._who()} is unreachable: {exc!r}") from exc

    async def _read(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(f"{self._who()} stalled for {self._config.timeout_s}s") from exc
        except httpx.RequestError as exc:
            raise UpstreamProtocolError(f"{self._who()} broke off its answer: {exc!r}") from exc

    async def _next_data(self, lines: AsyncIterator[str]) -> str:
        """The payload of the next SSE ``data:`` line; blank lines, comments and ``event:`` skipped."""
        try:
            async for line in lines:
                if line.startswith("data:"):
                    return line[5:].strip()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(
                f"{self._who()} stalled mid-stream for {self._config.timeout_s}s"
            ) from exc
        except httpx.RequestError as exc:
            raise UpstreamProtocolError(f"{self._who()} dropped the stream: {exc!r}") from exc
        raise UpstreamProtocolError(f"{self._who()} ended the stream without 'data: [DONE]'")

    def _chunk(self, data: str) -> Json:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"{self._who()} sent a stream event that is not JSON: {data[:200]!r}"
            ) from exc
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError(
                f"{self._who()} sent a stream event that is not an object: {data[:200]!r}"
            )
        if "error" in chunk:
            raise self._error(chunk["error"], self._in_band_status(chunk["error"]))
        return chunk

    def _parse(self, content: bytes, status: int) -> Any:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"{self._who()} answered HTTP {status} with a body that is not JSON: {content[:200]!r}"
            ) from exc

    def _status_error(self, status: int, content: bytes, headers: Mapping[str, str]) -> UpstreamStatusError:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not error:
            # A proxy's error page or another framework's error shape: pass its text on.
            error = content[:200].decode(errors="replace")
        exc = self._error(error, status)
        exc.retry_after_s = retry_after_s(headers)
        return exc

    @staticmethod
    def _in_band_status(error: Any) -> int:
        """The status for an error sent inside a 200 stream, where the status line says nothing."""
        code = error.get("code") if isinstance(error, dict) else None
        # vLLM-style servers put the HTTP status in the error's code; OpenAI puts a string there.
        return code if isinstance(code, int) and 400 <= code < 600 else 502

    def _error(self, error: Any, status: int) -> UpstreamStatusError:
        if not isinstance(error, dict):
            error = {"message": str(error)} if error else {}
        message = error.get("message") or f"{self._who()} answered HTTP {status}"
        kind = error.get("type")
        param = error.get("param")
        return UpstreamStatusError(
            str(message),
            status_code=status,
            type=kind if isinstance(kind, str) and kind else "upstream_error",
            param=param if isinstance(param, str) else None,
        )
