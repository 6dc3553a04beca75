"""``POST /v1/feedback``: a caller rates an answer it got, the way users click thumbs up or down.

Body: ``{"request_id": "...", "score": "up" | "down" | a number in [0, 1]}``. ``request_id`` is
the answer's ``x-request-id`` response header (the OpenAI SDKs expose it as ``_request_id``).
The caller must use the key that made the request (with auth off: the same bearer token): another
key's request, or one that does not exist, is a 404. Rating again replaces the earlier score, so
the call is idempotent per request id. Errors are in OpenAI's wire format; the call leaves its own
ledger row like every ``/v1`` request.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import admit
from hybridgate.api.body import read_json
from hybridgate.api.context import context_from
from hybridgate.errors import GatewayError, NotFoundError, RequestError
from hybridgate.gateway import Gateway

THUMBS = {"up": 1.0, "down": 0.0}
MAX_ID_CHARS = 200


def _score(value: Any) -> float:
    if isinstance(value, str) and value in THUMBS:
        return THUMBS[value]
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
        return float(value)
    raise RequestError(
        f'invalid request: score: must be "up", "down" or a number in [0, 1], not {value!r}'[:300],
        param="score",
    )


def _request_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS:
        raise RequestError(
            "invalid request: request_id: must be the x-request-id of an answer you got", param="request_id"
        )
    return value


async def feedback(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    ctx = context_from(request, "openai", gateway.config.environment)
    try:
        await admit(request, gateway, ctx)
        body = await read_json(request, gateway.config.server.max_body_bytes)
        unknown = sorted(set(body) - {"request_id", "score"})
        if unknown:
            raise RequestError(f"invalid request: unknown field '{unknown[0]}'", param=unknown[0])
        request_id, score = _request_id(body.get("request_id")), _score(body.get("score"))
        outcome = None
        if gateway.outcomes is not None:
            outcome = await gateway.outcomes.feedback(request_id, ctx.api_key_id or "", score)
        if outcome is None:
            raise NotFoundError(f"no request '{request_id}' made with this key", param="request_id")
    except GatewayError as exc:
        gateway.pipeline.reject(ctx, exc)
        raise
    gateway.pipeline.answered(ctx)
    answer = {"object": "feedback", "request_id": request_id, "score": score, "served": outcome.served}
    return Response(orjson.dumps(answer), media_type="application/json")
