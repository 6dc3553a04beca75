"""Reading a JSON request body safely: size limit, decoding, JSON syntax, schema, in that order.

Each failure becomes a ``RequestError`` naming what was wrong, so the caller gets a 4xx in its
own wire format and the ledger records the rejection.
"""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from hybridgate.api.encoding import decode_body
from hybridgate.errors import BodyTooLargeError, RequestError
from hybridgate.types import Json

Model = TypeVar("Model", bound=BaseModel)


async def read_json(request: Request, max_bytes: int) -> Json:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"request body of {declared} bytes is over the limit of {max_bytes}")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_bytes:
            raise BodyTooLargeError(f"request body is over the limit of {max_bytes} bytes")
    decoded = decode_body(bytes(body), request.headers.get("content-encoding"), max_bytes)
    try:
        data = orjson.loads(decoded)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError("request body must be a JSON object")
    if _depth_over(data, MAX_DEPTH):
        raise RequestError(f"request body nests deeper than {MAX_DEPTH} levels")
    return data


# No chat request needs more; deeper JSON cannot be re-encoded for the upstream (orjson stops at 254).
MAX_DEPTH = 64


def _depth_over(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def parse(model: type[Model], data: Json) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise RequestError(f"invalid request: {param}: {first['msg']}", param=param) from exc
