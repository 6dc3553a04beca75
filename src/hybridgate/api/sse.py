"""Server-sent events framing for both wire formats: encoding events, and batching their writes.

No flow logic: what the events say is decided by api/openai.py, api/anthropic.py and
api/responses.py; ``PipelineStreamingResponse`` only makes sure the stream is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from hybridgate.pipeline.core import PipelineStream
from hybridgate.types import Json

DONE = b"data: [DONE]\n\n"


def data_event(payload: Json) -> bytes:
    """An OpenAI-style event: only a ``data:`` line."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def named_event(name: str, payload: Json) -> bytes:
    """An Anthropic-style event: ``event:`` then ``data:``."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def coalesce(events: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """``events`` joined into as few writes as possible, without ever holding one back.

    ``events`` runs in its own task; whenever it has to wait (for the upstream's next network
    read), everything it produced meanwhile is yielded as one piece. An upstream read carrying
    twenty events thus costs one ASGI send and one socket write instead of twenty; a slow stream
    still goes out event by event, as soon as each is ready. Errors raised by ``events`` are
    raised here after what came before them has been yielded; closing this iterator cancels
    the task and waits for it, so the source's own clean-up (ledger row, upstream close) runs.
    """
    produced: list[bytes] = []
    ready = asyncio.Event()

    async def produce() -> None:
        try:
            async for event in events:
                produced.append(event)
                ready.set()
        finally:
            ready.set()

    task = asyncio.get_running_loop().create_task(produce())
    try:
        while not task.done() or produced:
            await ready.wait()
            ready.clear()
            if produced:
                batch = b"".join(produced)
                produced.clear()
                yield batch
        await task  # re-raises what ended the source, if it was an error
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class PipelineStreamingResponse(StreamingResponse):
    """An SSE answer over a ``PipelineStream`` that is closed however the response ends: if the
    caller is gone before the body is read at all (its events generator never starts, so no
    ``finally`` in it runs), ``abandon`` still frees the upstream and writes the 499 row."""

    def __init__(self, stream: PipelineStream, events: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        super().__init__(events, media_type="text/event-stream", headers=headers)
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._stream.abandon()
