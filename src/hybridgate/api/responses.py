"""The OpenAI Responses edge: ``POST /v1/responses``, ``GET`` / ``DELETE /v1/responses/{id}`` and
``GET /v1/responses/{id}/input_items``.

A Responses request is translated (wire/responses.py) into the internal ``ChatRequest`` and goes
through the same pipeline as chat completions (router, cascade, cache, privacy, limits, ledger
with ``api = "responses"``, decision headers), so any tier serves it. The answer goes back as a
``response`` object, or as the documented event stream (``response.created`` ..
``response.completed``, each event with its ``sequence_number``); a failure after the stream
started is sent as an ``error`` event and ``response.failed``. With ``[responses] store =
"local"`` answers are kept (encrypted, per caller) so ``previous_response_id`` can continue them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import admit
from hybridgate.api.body import read_json
from hybridgate.api.context import context_from
from hybridgate.api.disconnect import unless_disconnected
from hybridgate.api.openai import decision_headers
from hybridgate.api.sse import SSE_HEADERS, PipelineStreamingResponse, coalesce, named_event
from hybridgate.errors import GatewayError, NotFoundError, RequestError, StoreUnavailableError
from hybridgate.gateway import Gateway
from hybridgate.ledger.response_store import ResponseStore, StoredResponse
from hybridgate.pipeline.core import PipelineStream
from hybridgate.types import ChatRequest, Json, Message, RequestContext
from hybridgate.wire.responses import (
    Envelope,
    ResponsesStreamWriter,
    from_responses_request,
    input_items,
    input_messages,
    message_from_output,
    new_id,
    response_from_completion,
)
from hybridgate.wire.schemas import checked_request

if TYPE_CHECKING:
    from hybridgate.privacy.policy import Screening  # imported lazily elsewhere: Presidio is slow

log = logging.getLogger("hybridgate.api")

STORE_SETTING = '[responses] store = "local"'


class Conversation:
    """One request's place in a stored conversation: what came before, and whether to keep it."""

    def __init__(self, body: Json, previous: StoredResponse | None, keep: bool) -> None:
        self.body = body
        self.previous = previous
        self.keep = keep

    def history(self) -> list[Message]:
        return [Message.model_validate(m) for m in self.previous.messages] if self.previous else []

    def stored(self, response: Json) -> StoredResponse:
        """What is kept of this exchange: the response, its input, and the whole conversation."""
        output = message_from_output(response["output"], "gateway")
        output.pop("reasoning_content", None)  # chat upstreams take no reasoning in their input
        messages = [m.model_dump(exclude_none=True) for m in self.history()]
        messages += [m.model_dump(exclude_none=True) for m in input_messages(self.body.get("input"))]
        return StoredResponse(response, input_items(self.body.get("input")), [*messages, output])


def keeps_prompts(screening: Screening | None) -> bool:
    """A prompt in which the privacy screen found PII is kept only where its policy is ``allow``."""
    return screening is None or not screening.pii or screening.policy == "allow"


def _tenant(ctx: RequestContext) -> str:
    """Stored answers belong to the caller's key (with auth off: to the bearer token's hash)."""
    return ctx.api_key_id or ""


def _store(gateway: Gateway, what: str) -> ResponseStore:
    if gateway.responses is None:
        raise RequestError(
            f"{what} needs stored responses, which are off here; set {STORE_SETTING}", param="store"
        )
    return gateway.responses


async def _conversation(gateway: Gateway, ctx: RequestContext, body: Json) -> Conversation:
    previous = None
    if (previous_id := body.get("previous_response_id")) is not None:
        if not isinstance(previous_id, str):
            raise RequestError(
                "invalid request: previous_response_id: must be a string", param="previous_response_id"
            )
        store = gateway.responses
        if store is None:
            raise RequestError(
                f"previous_response_id needs stored responses, which are off here; set {STORE_SETTING} "
                "or send the whole conversation as input",
                param="previous_response_id",
            )
        previous = await store.load(_tenant(ctx), previous_id)
        if previous is None:
            raise NotFoundError(
                f"Previous response with id '{previous_id}' not found.", param="previous_response_id"
            )
    wants = True if body.get("store") is None else body["store"]  # OpenAI's default: kept
    if not isinstance(wants, bool):
        raise RequestError("invalid request: store: must be a boolean", param="store")
    return Conversation(body, previous, wants and gateway.responses is not None)


async def create_response(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    ctx = context_from(request, "responses", gateway.config.environment)
    chat: ChatRequest | None = None
    try:
        limits = await admit(request, gateway, ctx)
        body = await read_json(request, gateway.config.server.max_body_bytes)
        conversation = await _conversation(gateway, ctx, body)
        chat = checked_request(from_responses_request(body, conversation.history()), "responses")
        ctx.feature = ctx.feature or (chat.metadata or {}).get("feature")
        ctx.cohort = ctx.cohort or chat.user
    except GatewayError as exc:
        gateway.pipeline.reject(ctx, exc, chat)
        raise
    if chat.stream:
        stream = await unless_disconnected(request, gateway.pipeline.stream(chat, ctx))
        conversation.keep = conversation.keep and keeps_prompts(stream.trace.screening)
        headers = decision_headers(ctx, stream.decision, stream.backend, stream.cache) | SSE_HEADERS | limits
        envelope = Envelope(new_id("resp"), chat.model, body, conversation.keep)
        events = coalesce(responses_sse(stream, ResponsesStreamWriter(envelope), gateway, ctx, conversation))
        return PipelineStreamingResponse(stream, events, headers)
    done = await unless_disconnected(request, gateway.pipeline.complete(chat, ctx))
    conversation.keep = conversation.keep and keeps_prompts(done.screening)
    envelope = Envelope(new_id("resp"), done.response.model or chat.model, body, conversation.keep)
    answer = response_from_completion(done.response.body, envelope)
    if conversation.keep and not await _save(gateway, ctx, conversation, answer):
        answer["store"] = False
    headers = decision_headers(ctx, done.decision, done.backend, done.cache) | limits
    headers["x-hybridgate-cost-usd"] = f"{done.cost_usd:.8f}"
    return Response(orjson.dumps(answer), media_type="application/json", headers=headers)


async def _save(gateway: Gateway, ctx: RequestContext, conversation: Conversation, answer: Json) -> bool:
    """Keep the answer for previous_response_id; a failing store costs only the keeping."""
    assert gateway.responses is not None
    try:
        await gateway.responses.save(_tenant(ctx), conversation.stored(answer))
    except (StoreUnavailableError, OSError) as exc:
        log.warning("could not store response %s: %s", answer["id"], exc)
        return False
    return True


async def responses_sse(
    stream: PipelineStream,
    writer: ResponsesStreamWriter,
    gateway: Gateway,
    ctx: RequestContext,
    conversation: Conversation,
) -> AsyncIterator[bytes]:
    for event in writer.start():
        yield named_event(event["type"], event)
    try:
        async for chunk in stream.chunks():
            if model := chunk.get("model"):
                writer.envelope.model = str(model)
            for event in writer.feed(chunk):
                yield named_event(event["type"], event)
    except GatewayError as exc:
        for event in writer.fail(exc.type, exc.message, exc.param):
            yield named_event(event["type"], event)
        return
    events = writer.finish()
    final = writer.final
    # saved before the last event goes out, so the caller can continue it at once
    if conversation.keep and final is not None and not await _save(gateway, ctx, conversation, final):
        final["store"] = False
    for event in events:
        yield named_event(event["type"], event)


StoredEndpoint = Callable[[Request, RequestContext], Awaitable[Response]]


def _recorded(handler: StoredEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """A stored-response endpoint that leaves its one ledger row, refused or answered."""

    async def endpoint(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        ctx = context_from(request, "responses", gateway.config.environment)
        try:
            response = await handler(request, ctx)
        except GatewayError as exc:
            gateway.pipeline.reject(ctx, exc)
            raise
        gateway.pipeline.answered(ctx)
        return response

    return endpoint


async def _stored(request: Request, ctx: RequestContext) -> tuple[ResponseStore, str]:
    gateway: Gateway = request.app.state.gateway
    await admit(request, gateway, ctx)
    store = _store(gateway, f"{request.method} {request.url.path}")
    return store, request.path_params["response_id"]


async def _load(request: Request, ctx: RequestContext) -> StoredResponse:
    store, response_id = await _stored(request, ctx)
    stored = await store.load(_tenant(ctx), response_id)
    if stored is None:
        raise NotFoundError(f"Response with id '{response_id}' not found.", param="response_id")
    return stored


@_recorded
async def retrieve_response(request: Request, ctx: RequestContext) -> Response:
    stored = await _load(request, ctx)
    return Response(orjson.dumps(stored.response), media_type="application/json")


@_recorded
async def delete_response(request: Request, ctx: RequestContext) -> Response:
    store, response_id = await _stored(request, ctx)
    if not await store.delete(_tenant(ctx), response_id):
        raise NotFoundError(f"Response with id '{response_id}' not found.", param="response_id")
    body = {"id": response_id, "object": "response", "deleted": True}
    return Response(orjson.dumps(body), media_type="application/json")


@_recorded
async def list_input_items(request: Request, ctx: RequestContext) -> Response:
    """The request's input items, newest first unless ``order=asc``; ``limit`` and ``after`` page."""
    stored = await _load(request, ctx)
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RequestError("invalid request: order: must be asc or desc", param="order")
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise RequestError("invalid request: limit: must be an integer from 1 to 100", param="limit")
    items = stored.input_items if order == "asc" else list(reversed(stored.input_items))
    if (after := query.get("after")) is not None:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    body = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
    return Response(orjson.dumps(body), media_type="application/json")
