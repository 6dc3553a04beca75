"""Server-sent events framing for both wire formats. Encoding only; no flow logic."""

from __future__ import annotations

import orjson

from hybridgate.types import Json

DONE = b"data: [DONE]\n\n"


def data_event(payload: Json) -> bytes:
    """An OpenAI-style event: only a ``data:`` line."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def named_event(name: str, payload: Json) -> bytes:
    """An Anthropic-style event: ``event:`` then ``data:``."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
