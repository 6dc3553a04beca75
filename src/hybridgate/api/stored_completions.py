"""OpenAI's stored chat completions: ``store: true`` on ``POST /v1/chat/completions`` keeps the
completion, and ``GET /v1/chat/completions`` (list), ``GET`` / ``POST`` (metadata) / ``DELETE
/v1/chat/completions/{id}`` and ``GET /v1/chat/completions/{id}/messages`` read it back.

Kept only with ``[responses] store = "local"`` (the Responses API's store: same tables' database,
sealing, time to live), per caller key, and only when the privacy screen found no PII in the
prompt or the caller's policy is ``allow`` (``keeps_prompts``). With storing off, ``store: true``
is ignored as before (passed to the upstream) and the read endpoints answer 400 naming the
setting; with it on, the upstream call goes without ``store``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import admit
from hybridgate.api.body import read_json
from hybridgate.api.context import context_from
from hybridgate.errors import GatewayError, NotFoundError, RequestError, StoreUnavailableError
from hybridgate.gateway import Gateway
from hybridgate.ledger.response_store import ResponseStore
from hybridgate.types import ChatRequest, Json, RequestContext
from hybridgate.wire.assembly import StreamAssembler

if TYPE_CHECKING:
    from hybridgate.privacy.policy import Screening  # imported lazily elsewhere: Presidio is slow

log = logging.getLogger("hybridgate.api")

MAX_METADATA_KEYS = 16
_METADATA_PARAM = re.compile(r"metadata\[(.+)\]")


def wants_store(chat: ChatRequest) -> bool:
    """The request's ``store`` field (OpenAI's default: not kept)."""
    value = (chat.model_extra or {}).get("store")
    if value is not None and not isinstance(value, bool):
        raise RequestError("invalid request: store: must be a boolean", param="store")
    return bool(value)


def kept_here(gateway: Gateway, chat: ChatRequest) -> bool:
    """``wants_store``; when this deployment keeps completions, ``store`` is also taken out of
    what goes upstream: the caller reads the gateway's copy back, so the provider keeps none (as
    the Responses API sends ``store: false``). With storing off it is forwarded as before."""
    wanted = wants_store(chat)
    if gateway.responses is not None and chat.model_extra:
        chat.model_extra.pop("store", None)
    return wanted


def _tenant(ctx: RequestContext) -> str:
    return ctx.api_key_id or ""


def _store_messages(completion_id: str, chat: ChatRequest) -> list[Json]:
    """The request's messages as OpenAI lists them: each with an id, parts in ``content_parts``."""
    messages = []
    for index, message in enumerate(chat.messages):
        item = message.model_dump(exclude_none=True)
        item["id"] = f"{completion_id}-{index}"
        if isinstance(message.content, list):
            item["content_parts"] = message.content
            item["content"] = message.text() or None
        else:
            item.setdefault("content", None)
            item["content_parts"] = None
        messages.append(item)
    return messages


class Keeper:
    """One request's stored completion: its new id, and the save once the answer is complete."""

    def __init__(self, gateway: Gateway, ctx: RequestContext, chat: ChatRequest) -> None:
        assert gateway.responses is not None
        self.store: ResponseStore = gateway.responses
        self.tenant = _tenant(ctx)
        self.chat = chat
        self.id = f"chatcmpl-{uuid.uuid4().hex}"  # fresh: cached or upstream ids may repeat

    def relabel(self, body: Json) -> Json:
        return {**body, "id": self.id}

    async def save(self, completion: Json) -> None:
        """Keep the answer; a failing store costs only the keeping (the caller has its answer)."""
        record = {
            "completion": {**completion, "id": self.id, "metadata": self.chat.metadata or {}},
            "messages": _store_messages(self.id, self.chat),
            "requested_model": self.chat.model,
            "stored_at": time.time(),
        }
        try:
            await self.store.save_completion(self.tenant, self.id, record)
        except (StoreUnavailableError, OSError) as exc:
            log.warning("could not store chat completion %s: %s", self.id, exc)


def keeper_for(
    gateway: Gateway, ctx: RequestContext, chat: ChatRequest, screening: Screening | None, wanted: bool
) -> Keeper | None:
    """A keeper when the caller asked, the deployment stores, and the privacy rule allows."""
    if not wanted or gateway.responses is None:
        return None  # before the import below: it runs on every request (a lookup, but not free)
    from hybridgate.api.responses import keeps_prompts  # api.responses imports api.openai

    if not keeps_prompts(screening):
        return None
    return Keeper(gateway, ctx, chat)


async def kept_chunks(chunks: AsyncIterator[Json], keeper: Keeper) -> AsyncIterator[Json]:
    """The stream's chunks under the stored id; the whole answer is saved once the stream ends."""
    assembler = StreamAssembler()
    async for chunk in chunks:
        chunk = keeper.relabel(chunk)
        assembler.add(chunk)
        yield chunk
    await keeper.save(assembler.response().body)


Handler = Callable[[Request, RequestContext, ResponseStore], Awaitable[Json]]


def _recorded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint over stored completions: admitted, one ledger row, JSON out."""

    async def endpoint(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        ctx = context_from(request, "openai", gateway.config.environment)
        try:
            limits = await admit(request, gateway, ctx)
            if gateway.responses is None:
                from hybridgate.api.responses import STORE_SETTING  # it imports api.openai

                raise RequestError(
                    f"{request.method} {request.url.path} needs stored chat completions, which are off "
                    f"here; set {STORE_SETTING}",
                    param="store",
                )
            body = await handler(request, ctx, gateway.responses)
        except GatewayError as exc:
            gateway.pipeline.reject(ctx, exc)
            raise
        gateway.pipeline.answered(ctx)
        return Response(orjson.dumps(body), media_type="application/json", headers=limits)

    return endpoint


async def _load(request: Request, ctx: RequestContext, store: ResponseStore) -> Json:
    completion_id = request.path_params["completion_id"]
    record = await store.load_completion(_tenant(ctx), completion_id)
    if record is None:
        raise NotFoundError(f"No chat completion found with id '{completion_id}'.", param="completion_id")
    return record


def _page(request: Request, items: list[Json]) -> Json:
    """OpenAI's cursor page over ``items`` (oldest first): ``order``, ``after``, ``limit``."""
    query = request.query_params
    order = query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise RequestError("invalid request: order: must be asc or desc", param="order")
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = -1
    if not 0 <= limit <= 100:  # OpenAI documents no range here: 0 is an empty page
        raise RequestError("invalid request: limit: must be an integer from 0 to 100", param="limit")
    if order == "desc":
        items = list(reversed(items))
    if (after := query.get("after")) is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


@_recorded
async def list_completions(request: Request, ctx: RequestContext, store: ResponseStore) -> Json:
    """The caller's stored completions, filtered by ``model`` and ``metadata[key]=value``."""
    wanted = {
        m.group(1): v for k, v in request.query_params.multi_items() if (m := _METADATA_PARAM.fullmatch(k))
    }
    model = request.query_params.get("model")
    found = []
    for record in await store.list_completions(_tenant(ctx)):
        completion = record["completion"]
        if model is not None and model not in (record.get("requested_model"), completion.get("model")):
            continue
        metadata = completion.get("metadata") or {}
        if all(metadata.get(key) == value for key, value in wanted.items()):
            found.append(completion)
    return _page(request, found)


@_recorded
async def retrieve_completion(request: Request, ctx: RequestContext, store: ResponseStore) -> Json:
    completion: Json = (await _load(request, ctx, store))["completion"]
    return completion


def _metadata(body: Json) -> dict[str, str]:
    """OpenAI's metadata rules: up to 16 string pairs, keys up to 64 and values up to 512 chars."""
    if "metadata" not in body:
        raise RequestError("invalid request: metadata: required", param="metadata")
    value = body["metadata"]
    if value is None:
        return {}
    if (
        not isinstance(value, dict)
        or len(value) > MAX_METADATA_KEYS
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in value.items()
        )
    ):
        raise RequestError(
            "invalid request: metadata: up to 16 string keys (64 chars) and string values (512 chars)",
            param="metadata",
        )
    return value


@_recorded
async def update_completion(request: Request, ctx: RequestContext, store: ResponseStore) -> Json:
    """Only ``metadata`` can change (replaced whole, as OpenAI does)."""
    gateway: Gateway = request.app.state.gateway
    metadata = _metadata(await read_json(request, gateway.config.server.max_body_bytes))
    record = await _load(request, ctx, store)
    record["completion"]["metadata"] = metadata
    if not await store.update_completion(_tenant(ctx), record["completion"]["id"], record):
        raise NotFoundError(
            f"No chat completion found with id '{record['completion']['id']}'.", param="completion_id"
        )
    completion: Json = record["completion"]
    return completion


@_recorded
async def delete_completion(request: Request, ctx: RequestContext, store: ResponseStore) -> Json:
    completion_id = request.path_params["completion_id"]
    if not await store.delete_completion(_tenant(ctx), completion_id):
        raise NotFoundError(f"No chat completion found with id '{completion_id}'.", param="completion_id")
    return {"id": completion_id, "object": "chat.completion.deleted", "deleted": True}


@_recorded
async def list_messages(request: Request, ctx: RequestContext, store: ResponseStore) -> Json:
    """The stored request's messages, oldest first unless ``order=desc``."""
    record = await _load(request, ctx, store)
    return _page(request, list(record["messages"]))
