"""The HTTP front below the routes: how many connections, and how long a client may take to send.

``GatewayProtocol`` is uvicorn's httptools protocol with three limits from ``[server]``: at most
``max_connections`` open connections (one more gets a 503 at once; past twice that, connections
are dropped without an answer, since each refusal lingers a moment), a request's headers within
``header_timeout_s`` of the connection opening or of the previous answer (else a 408, or a plain
close if nothing was sent), and its body within ``body_timeout_s`` of the headers. ``BodyDeadline``
is the ASGI half of the body limit: a route still reading the body at the deadline gets a
``RequestTimeoutError`` from ``receive``, so the caller sees a 408 in its wire format and the
ledger has the row. A body the route answered without reading (a 413, a 401) is read and dropped
until the deadline, so the client gets the answer instead of a reset; then the connection closes.

Each request it serves carries a ``HangUp`` in its ASGI scope (``HANG_UP``): the callbacks a
route registers there run when the client's connection is lost before the answer is complete
(``api/disconnect.py``), without a task per request listening for ``http.disconnect``.

Errors written here, before any route is known, use one JSON body that parses as both wire
formats (OpenAI's ``error.message``/``error.code``, Anthropic's ``type: error``).
It must not import anything above ``hybridgate.config`` and ``hybridgate.errors``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import orjson
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGIReceiveEvent, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from hybridgate.config import ServerConfig
from hybridgate.errors import RequestTimeoutError

# After an answer that ends a connection, keep reading (and dropping) this long before closing, so
# the client reads the answer instead of a reset caused by the bytes it was still sending.
LINGER_S = 2.0


@dataclass(frozen=True)
class FrontLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def of(cls, server: ServerConfig) -> FrontLimits:
        return cls(server.header_timeout_s, server.body_timeout_s, server.max_connections)


# The ASGI scope key of a request's ``HangUp`` (requests served by ``GatewayProtocol`` only).
HANG_UP = "hybridgate.hang_up"


class HangUp:
    """One request's client hanging up: ``lost`` once its connection is gone before the answer
    was complete, and the callbacks to run then."""

    __slots__ = ("_callbacks", "lost")

    def __init__(self) -> None:
        self.lost = False
        self._callbacks: list[Callable[[], object]] = []

    def call(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` when the client hangs up (soon, if it already has)."""
        if self.lost:
            asyncio.get_running_loop().call_soon(callback)
        else:
            self._callbacks.append(callback)

    def forget(self, callback: Callable[[], object]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def lose(self) -> None:
        self.lost = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


def uvicorn_options(server: ServerConfig) -> dict[str, Any]:
    """The uvicorn settings that put ``GatewayProtocol`` with these limits in front of the app."""
    # No websockets are served: an Upgrade header is just an ordinary request here.
    return {"http": partial(GatewayProtocol, limits=FrontLimits.of(server)), "ws": "none"}


def error_response(status: str, kind: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection; its body fits both wire formats."""
    body = orjson.dumps(
        {"type": "error", "error": {"type": kind, "message": message, "param": None, "code": code}}
    )
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n"
    )
    if status.startswith("503"):
        head += "retry-after: 1\r\n"
    return head.encode() + b"\r\n" + body


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with the gateway's connection cap and read deadlines."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: FrontLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.limit_concurrency = None  # the cap is enforced at accept time instead, in JSON
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_deadline = 0.0
        self._started = False  # bytes of a request arrived since the connection was last idle
        self._body_done = True
        self._body_late = False
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > 2 * self.limits.max_connections:
            transport.abort()  # refusals are lingering too: past twice the cap, not even a word
            return
        if len(self.connections) > self.limits.max_connections:
            message = f"the gateway has {self.limits.max_connections} connections open; retry shortly"
            self._answer_and_close(
                error_response("503 Service Unavailable", "overloaded_error", "too_many_connections", message)
            )
            return
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)
        # uvicorn told the cycle (its receive now says http.disconnect); tell the route too
        if self.cycle is not None and self.cycle.disconnected:
            hang_up = cast(dict[str, Any], self.cycle.scope).get(HANG_UP)
            if hang_up is not None:
                hang_up.lose()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the answer is sent: what still arrives is dropped
        self._started = True
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._cancel(self._header_timer)
        self._body_done = self._body_late = False
        self._body_deadline = self.loop.time() + self.limits.body_timeout_s
        self._body_timer = self.loop.call_at(self._body_deadline, self._body_timed_out)
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:  # a new request's cycle
            self.cycle.transport = _ClosingTransport(self)
            cast(dict[str, Any], self.scope)[HANG_UP] = HangUp()

    def on_message_complete(self) -> None:
        self._body_done = True
        self._cancel(self._body_timer)
        super().on_message_complete()
        if self.cycle.response_complete and not self._lingering:
            self._await_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._lingering:
            self._unset_keepalive_if_required()  # the linger timer decides when to close
        elif not self.transport.is_closing():
            if self._body_done:
                self._await_headers()
            elif self._body_late:
                self._linger()

    def send_400_response(self, msg: str) -> None:
        """A request that is not HTTP/1.1 (httptools refused it): a 400 in JSON, then close."""
        self._answer_and_close(error_response("400 Bad Request", "invalid_request_error", "bad_http", msg))

    def close_after_answer(self) -> None:
        """uvicorn closes the connection after an answer (``connection: close``, an error): if the
        request body is still arriving, closing now would reset the connection under the client,
        which may not have read the answer yet, so linger until the body's deadline instead."""
        if self._body_done or self._lingering:
            self.transport.close()
        else:
            self._linger(self._body_deadline)

    # -- deadlines ---------------------------------------------------------------------------

    def _await_headers(self) -> None:
        """The connection is idle: the next request's headers are due within the header timeout."""
        self._started = False
        self._cancel(self._header_timer)
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_timed_out)

    def _headers_timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if not self._started:
            self.transport.close()  # idle: nothing to answer
            return
        message = f"request headers not received within {self.limits.header_timeout_s:g} s"
        self._answer_and_close(
            error_response("408 Request Timeout", "invalid_request_error", "request_timeout", message)
        )

    def _body_timed_out(self) -> None:
        """Past the body deadline: a route still reading gets its 408 from ``BodyDeadline``; a
        body nobody reads any more (the answer is out) stops being read here."""
        self._body_late = True
        if self.cycle is not None and self.cycle.response_complete and not self.transport.is_closing():
            self._linger()

    def _answer_and_close(self, response: bytes) -> None:
        self.transport.write(response)
        self._linger()

    def _linger(self, until: float = 0.0) -> None:
        """Half-close after the answer and drop what still arrives; close for good when the client
        does, or at ``until`` (at least LINGER_S from now)."""
        self._cancel_timers()
        self._lingering = True
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_at(max(until, self.loop.time() + LINGER_S), self.transport.close)

    def _cancel_timers(self) -> None:
        self._cancel(self._header_timer)
        self._cancel(self._body_timer)

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


class _ClosingTransport(asyncio.Transport):
    """The connection as one request's cycle sees it: ``close`` asks the protocol, which lingers
    while the request body is still arriving (see ``GatewayProtocol.close_after_answer``)."""

    def __init__(self, protocol: GatewayProtocol) -> None:
        super().__init__()
        self._protocol = protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._protocol.transport.write(data)

    def is_closing(self) -> bool:
        return self._protocol.transport.is_closing()

    def close(self) -> None:
        self._protocol.close_after_answer()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._protocol.transport.get_extra_info(name, default)


class BodyDeadline:
    """ASGI middleware: reading the request body past ``timeout_s`` after the request began
    raises ``RequestTimeoutError`` (a 408 in the caller's wire format, with its ledger row)."""

    def __init__(self, app: ASGI3Application, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        body_done = False

        async def timed_receive() -> ASGIReceiveEvent:
            nonlocal body_done
            if body_done:  # after the body only a disconnect can come: wait for it as long as it takes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeoutError(
                    f"request body not received within {self.timeout_s:g} s; "
                    "send it faster or in a smaller request"
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
