"""The OpenAI-compatible edge: ``POST /v1/chat/completions`` (models: api/models.py).

Parses the wire format into a ``ChatRequest``, hands it to the pipeline, and writes the answer back
as JSON or as SSE. Decision headers (``x-hybridgate-route``, ``-backend``, ``-cost-usd``, ``-cache``) tell
the caller where its request went. A failure after the stream has started cannot change the status
code any more, so it is sent as an in-stream ``{"error": ...}`` event, which the official SDKs
raise as an APIError, and the stream ends without ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import admit
from hybridgate.api.body import parse, read_json
from hybridgate.api.context import CACHE_HEADER, context_from
from hybridgate.api.disconnect import unless_disconnected
from hybridgate.api.errors import openai_error_body
from hybridgate.api.sse import DONE, SSE_HEADERS, PipelineStreamingResponse, coalesce, data_event
from hybridgate.api.stored_completions import Keeper, keeper_for, kept_chunks, kept_here
from hybridgate.errors import GatewayError
from hybridgate.gateway import Gateway
from hybridgate.pipeline.core import PipelineStream
from hybridgate.types import ChatRequest, Decision, RequestContext
from hybridgate.wire.schemas import checked_request


def decision_headers(
    ctx: RequestContext, decision: Decision, backend: str, cache: str | None
) -> dict[str, str]:
    headers = {
        "x-request-id": ctx.request_id,
        "x-hybridgate-route": decision.route,
        "x-hybridgate-backend": backend,
        "x-hybridgate-rule": decision.rule,
    }
    if cache is not None:
        headers[CACHE_HEADER] = cache
    return headers


async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    ctx = context_from(request, "openai", gateway.config.environment)
    chat: ChatRequest | None = None
    try:
        limits = await admit(request, gateway, ctx)
        chat = parse(ChatRequest, await read_json(request, gateway.config.server.max_body_bytes))
        chat = checked_request(chat)
        store = kept_here(gateway, chat)
        ctx.feature = ctx.feature or (chat.metadata or {}).get("feature")
        ctx.cohort = ctx.cohort or chat.user
    except GatewayError as exc:
        gateway.pipeline.reject(ctx, exc, chat)
        raise
    if chat.stream:
        stream = await unless_disconnected(request, gateway.pipeline.stream(chat, ctx))
        keeper = keeper_for(gateway, ctx, chat, stream.trace.screening, store)
        headers = decision_headers(ctx, stream.decision, stream.backend, stream.cache) | SSE_HEADERS | limits
        events = coalesce(openai_sse(stream, chat.wants_usage_in_stream(), keeper))
        return PipelineStreamingResponse(stream, events, headers)
    done = await unless_disconnected(request, gateway.pipeline.complete(chat, ctx))
    headers = decision_headers(ctx, done.decision, done.backend, done.cache) | limits
    headers["x-hybridgate-cost-usd"] = f"{done.cost_usd:.8f}"
    body = done.response.body
    if keeper := keeper_for(gateway, ctx, chat, done.screening, store):  # store: true, kept
        body = keeper.relabel(body)
        await keeper.save(body)
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def openai_sse(
    stream: PipelineStream, include_usage: bool, keeper: Keeper | None = None
) -> AsyncIterator[bytes]:
    chunks = stream.chunks() if keeper is None else kept_chunks(stream.chunks(), keeper)
    try:
        async for chunk in chunks:
            if chunk.get("usage") and not chunk.get("choices"):
                if include_usage:
                    yield data_event(chunk)
                continue
            if not include_usage and "usage" in chunk:
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
            yield data_event(chunk)
    except GatewayError as exc:
        yield b"data: " + openai_error_body(exc) + b"\n\n"
        return
    yield DONE
