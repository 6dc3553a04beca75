"""The one place errors become HTTP responses, in the caller's wire format.

OpenAI callers get ``{"error": {"message", "type", "param", "code"}}``; Anthropic callers get
``{"type": "error", "error": {"type", "message"}}``. Anything that is not a ``GatewayError`` is a
bug: it is logged with its traceback server-side and the caller gets a plain 500 body, never the
traceback.
"""

from __future__ import annotations

import logging
import math

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.errors import BackendError, GatewayError
from hybridgate.wire.anthropic_responses import error_type

log = logging.getLogger("hybridgate.api")

# An upstream's Retry-After is passed on with these statuses (an upstream's 429 or 503, and our
# own refusals: a full queue, an open circuit).
RETRY_AFTER_STATUSES = frozenset({429, 503, 529})


def is_anthropic_path(path: str) -> bool:
    return path.startswith("/v1/messages")


def openai_error_body(error: GatewayError) -> bytes:
    return orjson.dumps(
        {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    )


def anthropic_error_body(error: GatewayError) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type(error.status_code), "message": error.message}}
    )


def render_error(request: Request, error: GatewayError) -> Response:
    anthropic = is_anthropic_path(request.url.path)
    body = anthropic_error_body(error) if anthropic else openai_error_body(error)
    headers = dict(error.headers)
    if (
        isinstance(error, BackendError)
        and error.retry_after_s is not None
        and error.status_code in RETRY_AFTER_STATUSES
        and "retry-after" not in headers
    ):
        headers["retry-after"] = str(math.ceil(error.retry_after_s))  # when to come back
    if hasattr(request.state, "request_id"):
        headers["x-request-id"] = request.state.request_id
    if anthropic and "x-request-id" in headers:
        headers["request-id"] = headers["x-request-id"]
    return Response(body, status_code=error.status_code, media_type="application/json", headers=headers)


async def handle_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return render_error(request, exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return render_error(request, GatewayError("internal error in the gateway; see its log"))
