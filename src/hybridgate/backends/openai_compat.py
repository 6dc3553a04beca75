"""Backend for any OpenAI-compatible chat-completions upstream (OpenAI, vLLM, llama.cpp server, ...).

With ``api = "responses"`` it speaks OpenAI's Responses API instead (``POST {base_url}/responses``,
for models served only there): requests, answers and streams are translated by wire/responses.py.

Step 3 of the flow: the cascade hands it a ``ChatRequest`` and a concrete model; it POSTs to
``{base_url}/chat/completions`` over one pooled aiohttp session (backends/http.py) and returns the
upstream's body, or its chunks as they arrive, untouched. With ``replicas`` the server is chosen
per request by a ``ReplicaPool`` (backends/replicas.py: least busy, healthy, spill-over); one that
refuses the connection is replaced by the next, since the request never reached it. Every
transport failure and every off-format answer becomes a ``BackendError`` (``raise ... from exc``).
It must not route, cache, record or reshape responses, and must not buffer a stream: this is the
hot path of every cloud request. Answers and chunks are checked against the wire format
(wire/upstream.py) before anyone reads them; redirects are never followed; error messages name
the backend, never its URL or what the upstream said (that goes to the log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import aiohttp
import orjson

from hybridgate.backends.base import status_error
from hybridgate.backends.http import Pool
from hybridgate.backends.replicas import Replica, ReplicaPool
from hybridgate.backends.sse import LineSplitter
from hybridgate.config import OpenAICompatBackend as OpenAICompatConfig
from hybridgate.errors import (
    BackendError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from hybridgate.types import ChatRequest, ChatResponse, Json
from hybridgate.wire.fields import reasoning_effort
from hybridgate.wire.responses import (
    ResponsesStreamReader,
    completion_from_response,
    error_status,
    failed_error,
    to_responses_request,
)
from hybridgate.wire.upstream import check_chunk, check_completion, check_response, check_response_event

log = logging.getLogger("hybridgate.backends")

__all__ = ["OpenAICompatBackend"]

DONE = b"[DONE]"


class OpenAICompatBackend:
    def __init__(self, name: str, config: OpenAICompatConfig, api_key: str | None) -> None:
        self.name = name
        self.model = config.model
        self.local = config.local
        self._config = config
        self._responses = config.api == "responses"  # the upstream speaks the Responses API
        self._path = "/responses" if self._responses else "/chat/completions"
        self._url = f"{config.base_url.rstrip('/')}{self._path}"
        self.replicas = ReplicaPool(name, config)
        self._health: asyncio.Task[None] | None = None
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._pool = Pool(self._headers, config.timeout_s, config.max_connections)

    async def start(self) -> None:
        session = self._pool.session()
        if self._config.health_path and self._health is None:
            self._health = asyncio.get_running_loop().create_task(self.replicas.watch_health(session))

    async def aclose(self) -> None:
        health, self._health = self._health, None
        if health is not None:
            health.cancel()
            await asyncio.gather(health, return_exceptions=True)
        await self._pool.aclose()

    def _body(self, request: ChatRequest, model: str, stream: bool) -> Json:
        if self._responses:
            body = to_responses_request(request, model, stream=stream)
            extra = request.model_extra or {}
            if (effort := extra.get("reasoning_effort") or reasoning_effort(request)) is not None:
                body.setdefault("reasoning", {"effort": effort})
            if extra.get("verbosity") is not None:
                body["text"] = {**(body.get("text") or {}), "verbosity": extra["verbosity"]}
            return body
        body = request.upstream_body(model)
        body["stream"] = stream
        if (effort := reasoning_effort(request)) is not None:  # Anthropic thinking (wire/fields.py)
            body.setdefault("reasoning_effort", effort)
        if stream:
            # Always ask for the usage chunk so the ledger can count tokens; the pipeline strips it
            # again when the client did not ask for it.
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        else:
            # OpenAI answers 400 to stream_options on a non-streaming request.
            body.pop("stream_options", None)
        return body

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        body = self._body(request, model, stream=False)
        try:
            return await self._complete(body)
        except UpstreamStatusError as exc:
            if (plain := _without_derived_effort(request, body, exc)) is None:
                raise
            return await self._complete(plain)

    async def _complete(self, body: Json) -> ChatResponse:
        response, replica, sent = await self._send(body)
        first_byte_ms = None
        try:
            content = await self._read(response)
            first_byte_ms = _ms_since(sent)
        finally:
            response.release()
            self.replicas.release(replica, first_byte_ms)
        self._check_status(response, content)
        data = self._parse(content, response.status)
        if self._responses:
            check_response(data, self._who())
            return ChatResponse(completion_from_response(data, self._who()))
        check_completion(data, self._who())
        return ChatResponse(data)

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        body = self._body(request, model, stream=True)
        started = False
        try:
            async with aclosing(self._stream(body)) as chunks:  # closed here, not when collected
                async for chunk in chunks:
                    started = True
                    yield chunk
        except UpstreamStatusError as exc:
            if started or (plain := _without_derived_effort(request, body, exc)) is None:
                raise
            async with aclosing(self._stream(plain)) as chunks:
                async for chunk in chunks:
                    yield chunk

    async def _stream(self, body: Json) -> AsyncGenerator[Json, None]:
        reader = ResponsesStreamReader(self._who()) if self._responses else None
        response, replica, sent = await self._send(body)
        first_byte_ms = None
        try:
            if not 200 <= response.status < 300:
                self._check_status(response, await self._read(response))
            lines = LineSplitter()
            while True:
                received = await self._read_some(response)
                if first_byte_ms is None:
                    first_byte_ms = _ms_since(sent)
                for data in _payloads(lines.feed(received) if received else lines.end()):
                    if data == DONE:
                        # Read past [DONE] to the end of the body: only a fully read response
                        # goes back to the pool; otherwise the next request pays for a new one.
                        await self._drain(response)
                        return
                    if reader is None:
                        yield self._chunk(data)
                        continue
                    for chunk in reader.feed(self._chunk(data)):
                        yield chunk
                    if reader.finished:  # a Responses stream ends at response.completed
                        await self._drain(response)
                        return
                if not received:
                    end = "response.completed" if reader else "'data: [DONE]'"
                    raise UpstreamProtocolError(f"{self._who()} ended the stream without {end}")
        finally:
            response.release()
            self.replicas.release(replica, first_byte_ms)

    def _http(self) -> aiohttp.ClientSession:
        return self._pool.session()

    def _who(self) -> str:
        return f"backend '{self.name}'"

    def _protocol(self, message: str, detail: object) -> UpstreamProtocolError:
        """A protocol error for the caller; the details go to the log only (never a 2xx body's
        text, which may hold part of a completion)."""
        log.warning("%s (%s): %s: %r", self._who(), self._url, message, detail)
        return UpstreamProtocolError(f"{self._who()} {message}")

    def _check_status(self, response: aiohttp.ClientResponse, content: bytes) -> None:
        """Raise for an error status or a redirect (never followed: it would carry the prompt and
        the upstream key elsewhere)."""
        if response.status >= 400:
            raise self._status_error(response.status, content, response.headers)
        if not 200 <= response.status < 300:
            location = response.headers.get("location")
            raise self._protocol(
                f"answered HTTP {response.status} instead of an answer; redirects are not followed", location
            )

    async def _send(self, body: Json) -> tuple[aiohttp.ClientResponse, Replica, float]:
        """POST to a server of the pool and wait for the status line and headers; the body is left
        unread, and the caller gives the server back with ``replicas.release``."""
        data = orjson.dumps(body)
        tried: list[Replica] = []
        while True:
            replica = await self.replicas.acquire(tried)
            sent = time.perf_counter()
            try:
                url = replica.base_url.rstrip("/") + self._path if self._responses else replica.url
                response = await self._http().post(url, data=data, proxy=replica.proxy, allow_redirects=False)
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.replicas.release(replica)
                tried.append(replica)
                if isinstance(exc, aiohttp.ClientConnectorError) and self.replicas.refused(replica, tried):
                    continue  # nothing was sent: the next server gets it
                raise self._send_error(exc, replica) from exc
            except BaseException:  # cancelled while connecting
                self.replicas.release(replica)
                raise
            return response, replica, sent

    def _send_error(self, exc: Exception, replica: Replica) -> BackendError:
        log.warning("%s: sending to %s failed: %r", self._who(), replica.url, exc)
        if isinstance(exc, TimeoutError):  # before ClientError: aiohttp's timeouts are both
            return UpstreamTimeoutError(f"{self._who()} did not answer within {self._config.timeout_s}s")
        return UpstreamUnavailableError(f"{self._who()} is unreachable")

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"{self._who()} stalled for {self._config.timeout_s}s") from exc
        except aiohttp.ClientError as exc:
            raise self._protocol("broke off its answer", exc) from exc

    async def _read_some(self, response: aiohttp.ClientResponse) -> bytes:
        """What the next network read of the stream brought; empty at the end of the body."""
        try:
            return await response.content.readany()
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"{self._who()} stalled mid-stream for {self._config.timeout_s}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise self._protocol("dropped the stream", exc) from exc

    async def _drain(self, response: aiohttp.ClientResponse) -> None:
        """Read to the end of a body whose last event has come; a failure only costs the connection."""
        try:
            while await response.content.readany():
                pass
        except (TimeoutError, aiohttp.ClientError):
            response.close()

    def _chunk(self, data: bytes) -> Json:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise self._protocol("sent a stream event that is not JSON", f"{len(data)} bytes") from exc
        if not isinstance(chunk, dict):
            raise self._protocol("sent a stream event that is not an object", type(chunk).__name__)
        if "error" in chunk:
            raise self._error(chunk["error"], self._in_band_status(chunk["error"]), {})
        if self._responses:
            if (error := failed_error(chunk)) is not None:  # a Responses stream's in-band failure
                raise self._error(error, error_status(error), {})
            check_response_event(chunk, self._who())
        else:
            check_chunk(chunk, self._who())
        return chunk

    def _parse(self, content: bytes, status: int) -> Any:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise self._protocol(
                f"answered HTTP {status} with a body that is not JSON", f"{len(content)} bytes"
            ) from exc

    def _status_error(self, status: int, content: bytes, headers: Mapping[str, str]) -> BackendError:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not error:
            # A proxy's error page or another framework's error shape: logged, not passed on.
            log.warning("%s (%s) answered HTTP %d: %r", self._who(), self._url, status, _text(content))
        return self._error(error, status, headers)

    @staticmethod
    def _in_band_status(error: Any) -> int:
        """The status for an error sent inside a 200 stream, where the status line says nothing."""
        code = error.get("code") if isinstance(error, dict) else None
        # vLLM-style servers put the HTTP status in the error's code; OpenAI puts a string there.
        return code if isinstance(code, int) and 400 <= code < 600 else 502

    def _error(self, error: Any, status: int, headers: Mapping[str, str]) -> BackendError:
        if not isinstance(error, dict):
            error = {"message": str(error)} if error else {}
        message, kind, param = error.get("message"), error.get("type"), error.get("param")
        return status_error(
            self.name,
            status,
            headers,
            type=kind if isinstance(kind, str) else None,
            message=str(message or ""),
            param=param if isinstance(param, str) else None,
        )


def _payloads(lines: list[bytes]) -> list[bytes]:
    """The payloads of the ``data:`` lines; blank lines, comments and ``event:`` lines skipped."""
    return [line[5:].strip() for line in lines if line.startswith(b"data:")]


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _text(data: bytes) -> str:
    return data[:200].decode(errors="replace")


def _without_derived_effort(request: ChatRequest, body: Json, exc: UpstreamStatusError) -> Json | None:
    """The body without the reasoning effort hybridgate derived from an Anthropic thinking
    setting, when the server refused that field (OpenAI's non-reasoning models answer 400): a hint
    the caller did not send as such. None when the 400 is about anything else, or the caller
    chose the effort itself."""
    derived = reasoning_effort(request) is not None and "reasoning_effort" not in (request.model_extra or {})
    about = f"{exc.param} {exc}"
    if not derived or exc.status_code != 400 or "reasoning" not in about:
        return None
    return {k: v for k, v in body.items() if k not in ("reasoning_effort", "reasoning")}
