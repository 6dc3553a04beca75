"""A stand-in for an OpenAI-compatible upstream, served on loopback for tests.

This is NOT OpenAI: it is a small starlette app that speaks the documented chat-completions wire
format (``chat.completion`` bodies, ``chat.completion.chunk`` SSE frames ending in ``data: [DONE]``,
``{"error": {...}}`` bodies with an ``x-request-id`` header) so that httpx, SSE parsing and the
official ``openai`` SDK run for real against it. Tests script its behaviour one request at a time
(``standin.script(Reply(...), Fail(...))``, behaviours defined in ``openai_wire.py`` and
re-exported here); it serves ``POST /v1/responses`` too, in the Responses wire format
(``responses_wire.py``), from the same script. With nothing scripted it echoes the last user
message, or asks its ``unscripted`` callable for a behaviour (a fault mix, for load tests), or
answers what its ``answer`` callable makes of the request body (a tier with a character). It
counts the requests whose client hung up before the answer was complete (``abandoned``: during
a scripted delay or mid-stream), so tests can see that a gateway cancels its upstream request.
It listens on 127.0.0.1 only and knows nothing of hybridgate.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.servers import serve_in_thread
from tests.standins.openai_wire import (
    Behaviour,
    Completion,
    Drop,
    Fail,
    FailMidStream,
    Garbage,
    Json,
    Reply,
    ToolCall,
    Truncate,
    as_reply,
    error_body,
)
from tests.standins.responses_wire import RESPONSES_PARAMS, ResponseBody, failure_events
from tests.standins.responses_wire import echo as responses_echo

__all__ = [
    "Drop",
    "Fail",
    "FailMidStream",
    "Garbage",
    "OpenAIStandIn",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "Truncate",
    "run_openai_standin",
]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON, or None when the body was not JSON
    peer: tuple[str, int] | None  # the client's address: equal ports mean a reused connection


class OpenAIStandIn:
    """Scripted OpenAI-compatible upstream. Read ``requests`` to see what it was sent."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Sequence[str] = ("gpt-4o-mini",),
        unscripted: Callable[[], Behaviour] = Reply,
        record: bool = True,
        answer: Callable[[Json], str] | None = None,
    ) -> None:
        self.api_key = api_key
        self._answer = answer  # unscripted replies: this text instead of the echo
        self.models = list(models)
        self.requests: list[RecordedRequest] = []
        self.base_url = ""
        self.abandoned = 0  # requests whose client hung up before the answer was complete
        self.served = 0  # chat requests answered (or failed as scripted), recorded or not
        self._script: deque[Behaviour] = deque()
        self._unscripted = unscripted
        self._keep_requests = record  # off for long load runs: the list would grow without bound

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each chat request consumes one, then the echo default resumes."""
        self._script.extend(behaviours)

    def reset(self) -> None:
        """Forget the script and the recorded requests (for a server shared between tests)."""
        self._script.clear()
        self.requests.clear()
        self.abandoned = 0

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def _record(self, request: Request, body: Any) -> None:
        if not self._keep_requests:
            return
        peer = (request.client.host, request.client.port) if request.client else None
        self.requests.append(
            RecordedRequest(request.method, request.url.path, dict(request.headers), body, peer)
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        self._record(request, None)
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "standin"} for m in self.models
        ]
        return _json({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._record(request, body)
        if rejected := self._reject(request, body):
            return rejected
        behaviour = self._script.popleft() if self._script else self._unscripted()
        if self._answer is not None and type(behaviour) is Reply and behaviour == Reply():
            behaviour = Reply(content=self._answer(body))
        self.served += 1
        if behaviour.delay_s and await self._hung_up_during(request, behaviour.delay_s):
            self.abandoned += 1
            return Response(status_code=499)  # nobody is listening any more
        return self._respond(behaviour, body)

    @staticmethod
    async def _hung_up_during(request: Request, delay_s: float) -> bool:
        """Wait ``delay_s``, watching the connection: True as soon as the client hangs up."""
        deadline = time.monotonic() + delay_s
        while (left := deadline - time.monotonic()) > 0:
            await anyio.sleep(min(left, 0.02))
            if await request.is_disconnected():
                return True
        return False

    async def _responses(self, request: Request) -> Response:
        """``POST /v1/responses``: the same scripted behaviours, in the Responses wire format."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self._record(request, body)
        if rejected := self._reject(request, body, required=("model", "input"), chat=False):
            return rejected
        for key in body:
            if key not in RESPONSES_PARAMS:  # the API refuses what it does not document
                message = f"Unknown parameter: '{key}'."
                return _json(error_body(message, "invalid_request_error", "unknown_parameter", key), 400)
        behaviour = self._script.popleft() if self._script else self._unscripted()
        self.served += 1
        if isinstance(behaviour, Fail):
            error = error_body(behaviour.message, behaviour.type, behaviour.code, behaviour.param)
            return _json(error, behaviour.status)
        reply = behaviour if isinstance(behaviour, Reply) else Reply()
        if reply.content is None and not reply.tool_calls:
            reply = Reply(content=responses_echo(body), finish_reason=reply.finish_reason)
        response = ResponseBody(body, reply)
        if not body.get("stream"):
            return _json(response.body())
        events = response.events()
        if isinstance(behaviour, FailMidStream):
            events = failure_events(response, behaviour.message, behaviour.after_chunks)
        frames = [
            f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events
        ]
        return StreamingResponse(_frames(frames), 200, {"x-request-id": _request_id()}, "text/event-stream")

    def _reject(
        self, request: Request, body: Any, required: Sequence[str] = ("model", "messages"), chat: bool = True
    ) -> Response | None:
        """What OpenAI itself refuses before any model runs: a wrong key, a malformed body."""
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            error = error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            return _json(error, 401)
        if not isinstance(body, dict):
            return _json(
                error_body("We could not parse the JSON body of your request.", "invalid_request_error"), 400
            )
        for key in required:
            if key not in body:
                message = f"Missing required parameter: '{key}'."
                return _json(
                    error_body(message, "invalid_request_error", "missing_required_parameter", key), 400
                )
        if chat and body.get("stream_options") is not None and not body.get("stream"):
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return _json(error_body(message, "invalid_request_error", None, "stream_options"), 400)
        return None

    def _respond(self, behaviour: Behaviour, body: Json) -> Response:
        if isinstance(behaviour, Fail):
            error = error_body(behaviour.message, behaviour.type, behaviour.code, behaviour.param)
            return _json(error, behaviour.status)
        if isinstance(behaviour, Garbage):
            headers = {"x-request-id": _request_id()}
            return Response(behaviour.body, behaviour.status, headers, behaviour.content_type)
        reply = as_reply(behaviour, body)
        completion = Completion(body, reply)
        headers = {"x-request-id": _request_id()}
        if not body.get("stream"):
            if isinstance(behaviour, Drop | Truncate):
                # A non-streaming body cut in half: the JSON never closes.
                return StreamingResponse(
                    _partial(completion.body(), behaviour), 200, headers, "application/json"
                )
            return _json(completion.body())
        frames = completion.chunks()
        if isinstance(behaviour, Drop | Truncate | FailMidStream):
            frames = frames[: behaviour.after_chunks]
        return StreamingResponse(self._sse(frames, behaviour), 200, headers, "text/event-stream")

    async def _sse(self, frames: list[Json], behaviour: Behaviour) -> AsyncIterator[bytes]:
        finished = False
        try:
            async for event in _sse(frames, behaviour):
                yield event
            finished = True
        finally:
            # Not finished and not failing as scripted: the client hung up (starlette cancels us).
            if not finished and not isinstance(behaviour, Drop):
                self.abandoned += 1


class DroppedConnection(Exception):
    """Raised inside the response body so uvicorn aborts the connection mid-stream."""


async def _sse(frames: list[Json], behaviour: Behaviour) -> AsyncIterator[bytes]:
    for index, frame in enumerate(frames):
        if index and behaviour.chunk_delay_s:
            await anyio.sleep(behaviour.chunk_delay_s)
        yield b"data: " + json.dumps(frame, separators=(",", ":")).encode() + b"\n\n"
    if isinstance(behaviour, Drop):
        raise DroppedConnection("stand-in drops the connection as scripted")
    if isinstance(behaviour, FailMidStream):
        error = error_body(behaviour.message, behaviour.type)
        yield b"data: " + json.dumps(error).encode() + b"\n\n"
    if not isinstance(behaviour, Truncate):
        yield b"data: [DONE]\n\n"


async def _partial(body: Json, behaviour: Drop | Truncate) -> AsyncIterator[bytes]:
    encoded = json.dumps(body).encode()
    yield encoded[: len(encoded) // 2]
    if isinstance(behaviour, Drop):
        raise DroppedConnection("stand-in drops the connection as scripted")


async def _frames(frames: list[bytes]) -> AsyncIterator[bytes]:
    for frame in frames:
        yield frame


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _json(body: Json, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers={"x-request-id": _request_id()})


@contextmanager
def run_openai_standin(
    *,
    api_key: str | None = None,
    models: Sequence[str] = ("gpt-4o-mini",),
    unscripted: Callable[[], Behaviour] = Reply,
    record: bool = True,
    port: int = 0,
    answer: Callable[[Json], str] | None = None,
) -> Iterator[OpenAIStandIn]:
    """Serve a fresh stand-in on 127.0.0.1 (a free port by default) in a background thread."""
    standin = OpenAIStandIn(
        api_key=api_key, models=models, unscripted=unscripted, record=record, answer=answer
    )
    with serve_in_thread(standin.app(), port=port, lifespan="off", graceful_s=1) as url:
        standin.base_url = f"{url}/v1"
        yield standin
