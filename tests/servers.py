"""Run ASGI apps on a real loopback port in a background thread, for end-to-end tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    port: int = 0,
    lifespan: Literal["auto", "on", "off"] = "on",
    graceful_s: int | None = None,
    options: dict[str, Any] | None = None,
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port unless given); yields ``http://127.0.0.1:PORT``.
    ``options``: more uvicorn settings (``api.front.uvicorn_options``: the gateway's own front)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan=lifespan,
        timeout_graceful_shutdown=graceful_s,
        **(options or {}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
