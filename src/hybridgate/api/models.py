"""``GET /v1/models`` and ``GET /v1/models/{id}``, in OpenAI's shape or Anthropic's.

A request that carries ``anthropic-version`` (every Anthropic SDK sends it) gets Anthropic's
list shape (``data`` of ``type: "model"`` objects, ``first_id``, ``last_id``, ``has_more``);
anything else gets OpenAI's. The names listed are the ones the router resolves
(router/models.py): routes, ``[models]`` aliases, backends' upstream models, ``backend/model``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import admit
from hybridgate.api.context import context_from
from hybridgate.errors import GatewayError, ModelNotFoundError, RequestError
from hybridgate.gateway import Gateway
from hybridgate.router.models import ModelNames
from hybridgate.types import Json


def _entries(gateway: Gateway) -> list[Json]:
    """Every model id a client may send, with what it is."""
    config, names = gateway.config, ModelNames(gateway.config)
    entries: list[Json] = [
        {"id": name, "kind": "route", "backends": route.try_} for name, route in config.routes.items()
    ]
    entries += [{"id": alias, "kind": "alias", "route": config.models[alias]} for alias in names.aliases()]
    taken = {entry["id"] for entry in entries}
    for model, owner in names.upstream_models().items():
        if model not in taken:
            entries.append({"id": model, "kind": "model", "backend": owner})
    for name, backend in gateway.backends.items():
        entries.append({"id": f"{name}/{backend.model}", "kind": "backend", "local": backend.local})
    if gateway.embeddings is not None:
        listed = {entry["id"] for entry in entries}
        entries += [
            {"id": name, "kind": "embedding"} for name in gateway.embeddings.models() if name not in listed
        ]
    return entries


def _openai(entry: Json, created: int) -> Json:
    return {"object": "model", "created": created, "owned_by": "hybridgate", **entry}


def _anthropic(entry: Json, created: int) -> Json:
    stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": "model",
        "id": entry["id"],
        "display_name": entry["id"],
        "created_at": stamp,
        "lifecycle": "active",  # required by Anthropic's ModelInfo; nothing listed here is retired
    }


def _page(data: list[Json], request: Request) -> Json:
    """Anthropic's cursor page: ``limit`` (1..1000, default 20), ``after_id`` / ``before_id``.
    A cursor naming no listed id gives an empty page."""
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise RequestError("limit: must be an integer from 1 to 1000", param="limit")
    limit, ids = int(raw), [item["id"] for item in data]
    after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
    if before is not None:
        end = ids.index(before) if before in ids else 0
        start = max(0, end - limit)
        page, more = data[start:end], start > 0
    else:
        start = ids.index(after) + 1 if after in ids else (len(ids) if after is not None else 0)
        page, more = data[start : start + limit], start + limit < len(data)
    first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
    return {"data": page, "first_id": first, "last_id": last, "has_more": more}


def _json(body: Json, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    anthropic = "anthropic-version" in request.headers
    created = int(time.time())
    entries = _entries(gateway)
    pages: list[Json] = []

    def paginate() -> None:  # a bad cursor or limit is refused, with its ledger row
        pages.append(_page([_anthropic(e, created) for e in entries], request))

    limits = await _admitted(request, gateway, anthropic, paginate if anthropic else lambda: None)
    if not anthropic:
        return _json({"object": "list", "data": [_openai(e, created) for e in entries]}, limits)
    return _json(pages[0], limits)


async def get_model(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    anthropic = "anthropic-version" in request.headers
    model_id = request.path_params["model_id"]
    found: list[Json] = []

    def look_up() -> None:
        entry = next((e for e in _entries(gateway) if e["id"] == model_id), None)
        if entry is None and (resolved := ModelNames(gateway.config).resolve(model_id)) is not None:
            entry = {"id": model_id, "kind": resolved.rule.partition(":")[0], "route": resolved.route}
        if entry is None:
            raise ModelNotFoundError(f"no model '{model_id}'; GET /v1/models lists the names served here")
        found.append(entry)

    limits = await _admitted(request, gateway, anthropic, look_up)
    created = int(time.time())
    return _json(_anthropic(found[0], created) if anthropic else _openai(found[0], created), limits)


async def _admitted(
    request: Request, gateway: Gateway, anthropic: bool, check: Callable[[], None]
) -> dict[str, str]:
    """Verify the caller (a key when auth is on, like every /v1 endpoint) and run ``check``;
    either way the request leaves its one ledger row."""
    ctx = context_from(request, "anthropic" if anthropic else "openai", gateway.config.environment)
    try:
        limits = await admit(request, gateway, ctx)
        check()
    except GatewayError as exc:
        gateway.pipeline.reject(ctx, exc)
        raise
    gateway.pipeline.answered(ctx)
    return limits
