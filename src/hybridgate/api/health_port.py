"""The health port (``[server] health_port``): /livez, /readyz and /healthz on a port of their own.

With a health port, a replica opens it at the very start of its lifespan and opens its serving
port only once it is ready (``Gateway.not_ready`` is empty: the key store reached, an embedded
model loaded). Until then a connection to the serving port is refused, which every proxy treats
as safe to send elsewhere, a POST included (nothing was sent), while probes still get their
answers here. Once ready, the serving port stays open: later outages are served around (see
docs/operations.md, "Readiness behind a proxy").

The health port speaks HTTP through uvicorn's own protocol, on the serving loop; it answers
while the gateway starts because nothing in ``Gateway.start`` blocks the loop (the embedded
engine loads on a thread). It must not import anything above ``hybridgate.config``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.server import ServerState

log = logging.getLogger("hybridgate.health")

POLL_S = 0.5  # how often readiness is asked again while the serving port waits


class HealthPort:
    """``app`` (the health routes) served on ``host:port`` until ``aclose``."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self._config = uvicorn.Config(
            app, host=host, port=port, lifespan="off", log_level="warning", access_log=False, ws="none"
        )
        self._state = ServerState()
        self._server: asyncio.base_events.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the system chose for 0)."""
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        config = self._config
        if not config.loaded:
            config.load()
        protocol_class: Any = config.http_protocol_class
        protocol = partial(protocol_class, config=config, server_state=self._state, app_state={})
        # SO_REUSEPORT: with --workers N every worker answers probes for itself on the same port.
        self._server = await asyncio.get_running_loop().create_server(
            protocol, host=config.host, port=config.port, reuse_port=hasattr(socket, "SO_REUSEPORT")
        )

    async def aclose(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._state.connections):
            connection.shutdown()
        self._server = None


async def until_ready(not_ready: Callable[[], Awaitable[dict[str, str]]]) -> bool:
    """Wait until ``not_ready()`` is empty (True), or until SIGTERM/SIGINT asks the process to
    stop meanwhile (False). The signal still reaches the server's own handler."""
    stop = asyncio.Event()
    with _stop_signals(partial(asyncio.get_running_loop().call_soon_threadsafe, stop.set)):
        warned = False
        while waiting := await not_ready():
            if not warned:
                log.warning("not ready (%s): the serving port opens once ready", "; ".join(waiting.values()))
                warned = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await stop.wait()
            if stop.is_set():
                return False
    if warned:
        log.warning("ready: the serving port opens now")
    return True


@contextlib.contextmanager
def _stop_signals(on_stop: Callable[[], Any]) -> Any:
    """Call ``on_stop`` on SIGTERM/SIGINT, then the handler installed before (uvicorn's)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (a test's server in a thread): nothing to watch
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    before: dict[int, Any] = {sig: signal.getsignal(sig) for sig in signals}

    def handler(sig: int, frame: FrameType | None) -> None:
        on_stop()
        previous = before[sig]
        if callable(previous):
            previous(sig, frame)

    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig in signals:
            signal.signal(sig, before[sig])
