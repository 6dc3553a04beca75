"""Stop working for a caller who has gone: cancel the pipeline when the client hangs up.

Until the first byte of an answer is sent nothing else listens to the connection, so a client that
gives up on a slow upstream would otherwise leave the gateway waiting for (and paying for) an
answer nobody reads. Once a stream has started, Starlette's StreamingResponse does this itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

from hybridgate.errors import ClientClosedError

T = TypeVar("T")


# A request answered sooner than this never starts its watcher (a task, then its cancellation:
# most of what watching cost a fast request); a caller who hangs up earlier is noticed at most
# this much later.
WATCH_AFTER_S = 0.01


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass  # more body would be a protocol error here; only the disconnect matters


class _Watch:
    """Cancels ``work`` when the client hangs up, once ``start`` has begun listening."""

    __slots__ = ("_request", "_task", "_work", "gone")

    def __init__(self, request: Request, work: asyncio.Future[Any]) -> None:
        self._request = request
        self._work = work
        self._task: asyncio.Task[None] | None = None
        self.gone = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _watch(self) -> None:
        await _disconnected(self._request)
        self.gone = True
        self._work.cancel()


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """``await work``, cancelling it (and raising ``ClientClosedError``) if the client hangs up."""
    task = asyncio.ensure_future(work)
    watch = _Watch(request, task)
    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, watch.start)
    try:
        return await task
    except asyncio.CancelledError:
        if not watch.gone:
            raise  # this request itself was cancelled (shutdown): so is its work
        raise ClientClosedError("the client closed the connection before the answer was ready") from None
    finally:
        timer.cancel()
        watch.stop()
