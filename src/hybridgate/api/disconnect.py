"""Stop working for a caller who has gone: cancel the pipeline when the client hangs up.

Until the first byte of an answer is sent nothing else listens to the connection, so a client that
gives up on a slow upstream would otherwise leave the gateway waiting for (and paying for) an
answer nobody reads. Once a stream has started, Starlette's StreamingResponse does this itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

from hybridgate.errors import ClientClosedError

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass  # more body would be a protocol error here; only the disconnect matters


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``await work``, cancelling it (and raising ``ClientClosedError``) if the client hangs up."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientClosedError("the client closed the connection before the answer was ready")
