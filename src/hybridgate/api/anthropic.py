"""The Anthropic-compatible edge: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

An Anthropic request is translated into the internal OpenAI-shaped ``ChatRequest`` and goes
through the same pipeline as everything else (router, cascade, ledger), so any tier can serve it.
The answer is translated back: a ``message`` object, or the documented SSE sequence
``message_start``, ``ping``, ``content_block_*``, ``message_delta``, ``message_stop``. A failure
after the stream has started is sent as an ``error`` event, as Anthropic's own API does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import admit
from hybridgate.api.body import read_json
from hybridgate.api.context import context_from
from hybridgate.api.disconnect import unless_disconnected
from hybridgate.api.openai import decision_headers
from hybridgate.api.sse import SSE_HEADERS, PipelineStreamingResponse, coalesce, named_event
from hybridgate.errors import GatewayError
from hybridgate.gateway import Gateway
from hybridgate.pipeline.core import PipelineStream
from hybridgate.router.rules import estimate_prompt_tokens
from hybridgate.types import ChatRequest, Json
from hybridgate.wire.anthropic_requests import from_anthropic_request
from hybridgate.wire.anthropic_responses import error_type, message_from_completion
from hybridgate.wire.anthropic_stream import AnthropicStreamWriter
from hybridgate.wire.schemas import checked_request


async def _parse(request: Request, gateway: Gateway) -> tuple[ChatRequest, Json]:
    body = await read_json(request, gateway.config.server.max_body_bytes)
    return checked_request(
        from_anthropic_request(body, request.headers.get("anthropic-beta")), "anthropic"
    ), body


async def messages(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    ctx = context_from(request, "anthropic", gateway.config.environment)
    try:
        limits = await admit(request, gateway, ctx)
        chat, body = await _parse(request, gateway)
    except GatewayError as exc:
        gateway.pipeline.reject(ctx, exc)
        raise
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("feature"), str):
        ctx.feature = ctx.feature or metadata["feature"]
    ctx.cohort = ctx.cohort or chat.user
    if chat.stream:
        stream = await unless_disconnected(request, gateway.pipeline.stream(chat, ctx))
        headers = decision_headers(ctx, stream.decision, stream.backend, stream.cache) | SSE_HEADERS | limits
        headers["request-id"] = ctx.request_id
        events = coalesce(anthropic_sse(stream, estimate_prompt_tokens(chat)))
        return PipelineStreamingResponse(stream, events, headers)
    done = await unless_disconnected(request, gateway.pipeline.complete(chat, ctx))
    headers = decision_headers(ctx, done.decision, done.backend, done.cache) | limits
    headers["request-id"] = ctx.request_id
    headers["x-hybridgate-cost-usd"] = f"{done.cost_usd:.8f}"
    message = message_from_completion(done.response.body)
    return Response(orjson.dumps(message), media_type="application/json", headers=headers)


async def anthropic_sse(stream: PipelineStream, input_tokens: int) -> AsyncIterator[bytes]:
    writer = AnthropicStreamWriter(input_tokens=input_tokens)
    pinged = False
    try:
        async for chunk in stream.chunks():
            for event in writer.feed(chunk):
                yield named_event(event["type"], event)
                if not pinged and event["type"] == "message_start":
                    pinged = True
                    yield named_event("ping", {"type": "ping"})
    except GatewayError as exc:
        error = {"type": error_type(exc.status_code), "message": exc.message}
        yield named_event("error", {"type": "error", "error": error})
        return
    for event in writer.finish():
        yield named_event(event["type"], event)


async def count_tokens(request: Request) -> Response:
    """An estimate: hybridgate cannot run every upstream's tokenizer, so it counts as the router does."""
    gateway: Gateway = request.app.state.gateway
    ctx = context_from(request, "anthropic", gateway.config.environment)
    try:
        limits = await admit(request, gateway, ctx)
        body = await read_json(request, gateway.config.server.max_body_bytes)
        body.setdefault("max_tokens", 1)
        chat = from_anthropic_request(body)
    except GatewayError as exc:
        gateway.pipeline.reject(ctx, exc)
        raise
    gateway.pipeline.answered(ctx, chat)
    return Response(
        orjson.dumps({"input_tokens": estimate_prompt_tokens(chat)}),
        media_type="application/json",
        headers={"request-id": ctx.request_id} | limits,
    )
