"""api/sse.py: SSE framing and ``coalesce``, which joins events that are ready together into one write.

Pure asyncio: the sources are small async generators standing in for a backend stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from hybridgate.api.sse import coalesce, data_event, named_event


async def source(*parts: bytes | None, error: Exception | None = None) -> AsyncIterator[bytes]:
    """Yields ``parts``; ``None`` stands for a wait on the network between them."""
    for part in parts:
        if part is None:
            await asyncio.sleep(0.01)
        else:
            yield part
    if error is not None:
        raise error


async def collect(events: AsyncIterator[bytes]) -> list[bytes]:
    return [batch async for batch in events]


def test_framing() -> None:
    assert data_event({"a": 1}) == b'data: {"a":1}\n\n'
    assert named_event("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert orjson.loads(data_event({"x": "é"})[6:]) == {"x": "é"}


async def test_events_ready_together_go_out_in_one_piece() -> None:
    batches = await collect(coalesce(source(b"a", b"b", b"c", None, b"d", b"e")))
    assert batches == [b"abc", b"de"]


async def test_an_event_is_never_held_back_for_the_next() -> None:
    batches = await collect(coalesce(source(b"a", None, b"b", None, b"c")))
    assert batches == [b"a", b"b", b"c"]


async def test_an_error_comes_after_what_preceded_it() -> None:
    events = coalesce(source(b"a", b"b", error=ValueError("boom")))
    assert await anext(events) == b"ab"
    with pytest.raises(ValueError, match="boom"):
        await anext(events)


async def test_closing_early_cancels_the_source_and_runs_its_cleanup() -> None:
    cleaned: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
                await asyncio.sleep(0.01)
        finally:
            cleaned.append("done")

    before = len(asyncio.all_tasks())
    events = coalesce(endless())
    assert await anext(events) == b"x"
    await events.aclose()
    assert cleaned == ["done"]
    assert len(asyncio.all_tasks()) == before


async def test_an_empty_source_yields_nothing() -> None:
    assert await collect(coalesce(source())) == []
