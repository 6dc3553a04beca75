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

from hybridgate.api.front import HANG_UP, HangUp
from hybridgate.errors import ClientClosedError

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass  # more body would be a protocol error here; only the disconnect matters


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``await work``, cancelling it (and raising ``ClientClosedError``) if the client hangs up."""
    hang_up: HangUp | None = request.scope.get(HANG_UP)
    if hang_up is not None:  # served by GatewayProtocol: it says when the connection is lost
        return await _until_hang_up(hang_up, work)
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


async def _until_hang_up(hang_up: HangUp, work: Coroutine[Any, Any, T]) -> T:
    """``unless_disconnected`` told by the protocol, not by a second task listening for
    ``http.disconnect`` and ``asyncio.wait`` on both (~20 us per request). The work still runs
    as a task of its own, cancelled when the client hangs up (after its first step, if it is
    gone already, so the pipeline always records the request)."""
    task = asyncio.ensure_future(work)
    hung_up = task.cancel  # bound once: ``forget`` must find the same object
    hang_up.call(hung_up)
    try:
        return await task
    except asyncio.CancelledError:
        if not hang_up.lost:
            raise  # this request itself was cancelled (a shutdown), and with it its work
        raise ClientClosedError("the client closed the connection before the answer was ready") from None
    finally:
        hang_up.forget(hung_up)
