"""A stand-in for Anthropic's Messages API, served on loopback for tests.

This is NOT Anthropic: it is a small starlette app that speaks the documented wire format of
``POST /v1/messages`` (``message`` objects with ``msg_`` ids, content blocks and usage; SSE streams
of message_start, content_block_start, ping, content_block_delta, content_block_stop,
message_delta, message_stop; ``{"type": "error", "error": {...}}`` bodies with a ``request-id``
header) and refuses what the real API refuses (no key, no version header, empty text blocks,
orphan tool_result blocks, temperature above 1), so that httpx, SSE parsing and the official
``anthropic`` SDK run for real against it. Tests script it one request at a time
(``standin.script(Reply(...), Fail(...))``); with nothing scripted it echoes the last user text.
It never touches the network beyond 127.0.0.1 and knows nothing of hybridgate.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.servers import serve_in_thread
from tests.standins.anthropic_replies import Behaviour, Json, Message, Reply, ToolUse, count_tokens
from tests.standins.anthropic_rules import first_violation, text_of

__all__ = [
    "AnthropicStandIn",
    "Behaviour",
    "Drop",
    "Fail",
    "FailMidStream",
    "Garbage",
    "RecordedRequest",
    "Replay",
    "Reply",
    "ToolUse",
    "Truncate",
    "count_tokens",
    "run_anthropic_standin",
]


@dataclass(frozen=True, kw_only=True)
class Fail(Behaviour):
    """An HTTP error with an Anthropic error body (529 overloaded_error, 429 rate_limit_error...)."""

    status: int
    type: str
    message: str = "scripted failure"


@dataclass(frozen=True, kw_only=True)
class FailMidStream(Behaviour):
    """A 200 stream that sends ``after_events`` events, then an in-band ``error`` event."""

    after_events: int
    type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass(frozen=True, kw_only=True)
class Garbage(Behaviour):
    """A body that is not the documented format (a proxy's HTML page, by default)."""

    body: bytes = b"<html><body>upstream proxy says hello</body></html>"
    status: int = 200
    content_type: str = "text/html"


@dataclass(frozen=True, kw_only=True)
class Drop(Behaviour):
    """Sends ``after_events`` events (or half the JSON body), then the connection breaks."""

    after_events: int
    text: str = "one two three four five six seven eight"


@dataclass(frozen=True, kw_only=True)
class Truncate(Behaviour):
    """Sends ``after_events`` events (or half the JSON body), then ends cleanly: no message_stop."""

    after_events: int
    text: str = "one two three four five six seven eight"


@dataclass(frozen=True, kw_only=True)
class Replay(Behaviour):
    """Sends exactly these events (streaming) or this body (non-streaming): for checking that
    something else's output, not the stand-in's, parses as the wire format."""

    events: Sequence[Json] = ()
    body: Json | None = None


@dataclass(frozen=True)
class RecordedRequest:
    headers: dict[str, str]
    body: Any  # the parsed JSON, or None when the body was not JSON


def error_body(type: str, message: str) -> Json:
    return {"type": "error", "error": {"type": type, "message": message}, "request_id": _request_id()}


class AnthropicStandIn:
    """Scripted Anthropic upstream. Read ``requests`` / ``last_request`` to see what it was sent."""

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.base_url = ""  # like the SDK's: without /v1
        self._script: deque[Behaviour] = deque()

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours; each request consumes one, then the echo default resumes."""
        self._script.extend(behaviours)

    def drain(self) -> list[Behaviour]:
        """Unqueue and return behaviours no request consumed (a test that scripted too much)."""
        left = list(self._script)
        self._script.clear()
        return left

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])

    async def _messages(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        self.requests.append(RecordedRequest(dict(request.headers), body))
        if rejected := self._reject(request, body):
            return rejected
        behaviour = self._script.popleft() if self._script else Reply()
        if behaviour.delay_s:
            await anyio.sleep(behaviour.delay_s)
        return _respond(behaviour, body)

    def _reject(self, request: Request, body: Any) -> Response | None:
        """What the API refuses before any model runs: a missing or wrong key, a bad body."""
        # API keys travel in x-api-key; newer SDKs send them as a bearer token instead.
        bearer = request.headers.get("authorization", "")
        key = request.headers.get("x-api-key") or bearer.removeprefix("Bearer ").strip()
        if not key:
            return _json(error_body("authentication_error", "x-api-key header is required"), 401)
        if self.api_key and key != self.api_key:
            return _json(error_body("authentication_error", "invalid x-api-key"), 401)
        if not request.headers.get("anthropic-version"):
            return _json(error_body("invalid_request_error", "anthropic-version: header is required"), 400)
        if problem := first_violation(body):
            return _json(error_body("invalid_request_error", problem), 400)
        return None


def _respond(behaviour: Behaviour, body: Json) -> Response:
    headers = {"request-id": _request_id()}
    if isinstance(behaviour, Fail):
        return _json(error_body(behaviour.type, behaviour.message), behaviour.status)
    if isinstance(behaviour, Garbage):
        return Response(behaviour.body, behaviour.status, headers, behaviour.content_type)
    if isinstance(behaviour, Replay) and not body.get("stream"):
        return _json(behaviour.body or {})
    if isinstance(behaviour, Replay):
        return StreamingResponse(_sse(list(behaviour.events), behaviour), 200, headers, "text/event-stream")
    message = Message(body, _as_reply(behaviour, body))
    if not body.get("stream"):
        if isinstance(behaviour, Drop | Truncate):
            # A non-streaming body cut in half: the JSON never closes.
            return StreamingResponse(_partial(message.body(), behaviour), 200, headers, "application/json")
        return _json(message.body())
    events = message.events()
    if isinstance(behaviour, Drop | Truncate | FailMidStream):
        events = events[: behaviour.after_events]
    if isinstance(behaviour, FailMidStream):
        events.append({"type": "error", "error": {"type": behaviour.type, "message": behaviour.message}})
    headers["cache-control"] = "no-cache"
    return StreamingResponse(_sse(events, behaviour), 200, headers, "text/event-stream; charset=utf-8")


class DroppedConnection(Exception):
    """Raised inside the response body so uvicorn aborts the connection mid-reply."""


async def _sse(events: list[Json], behaviour: Behaviour) -> AsyncIterator[bytes]:
    for event in events:
        yield f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
    if isinstance(behaviour, Drop):
        raise DroppedConnection("stand-in drops the connection as scripted")


async def _partial(body: Json, behaviour: Drop | Truncate) -> AsyncIterator[bytes]:
    encoded = json.dumps(body).encode()
    yield encoded[: len(encoded) // 2]
    if isinstance(behaviour, Drop):
        raise DroppedConnection("stand-in drops the connection as scripted")


def _as_reply(behaviour: Behaviour, body: Json) -> Reply:
    if isinstance(behaviour, Drop | Truncate):
        return Reply(text=behaviour.text)
    if isinstance(behaviour, Reply) and (behaviour.text is not None or behaviour.tool_uses):
        return behaviour
    users = [m for m in body["messages"] if m.get("role") == "user"]
    echo = f"echo: {text_of(users[-1].get('content')) if users else ''}"
    if isinstance(behaviour, Reply):
        return Reply(text=echo, thinking=behaviour.thinking, stop_reason=behaviour.stop_reason)
    return Reply(text=echo)


def _request_id() -> str:
    return f"req_01{uuid.uuid4().hex[:22]}"


def _json(body: Json, status: int = 200) -> JSONResponse:
    # An error body repeats its request's id; the header always carries it.
    return JSONResponse(body, status, headers={"request-id": body.get("request_id") or _request_id()})


@contextmanager
def run_anthropic_standin(*, api_key: str | None = None) -> Iterator[AnthropicStandIn]:
    """Serve a fresh stand-in on 127.0.0.1 (a free port) in a background thread."""
    standin = AnthropicStandIn(api_key=api_key)
    with serve_in_thread(standin.app(), port=0, lifespan="off", graceful_s=1) as url:
        standin.base_url = f"{url}"
        yield standin
