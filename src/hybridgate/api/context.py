"""Who is asking: a RequestContext from the HTTP request's headers.

The API key itself is never stored: only a short SHA-256 prefix identifies it in the ledger.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from typing import Literal

from starlette.requests import Request

from hybridgate.cache.keys import parse_directive
from hybridgate.types import RequestContext

ROUTE_HEADER = "x-hybridgate-route"
FEATURE_HEADER = "x-hybridgate-feature"
COHORT_HEADER = "x-hybridgate-cohort"
CACHE_HEADER = "x-hybridgate-cache"  # request: off | refresh | force; response: hit | semantic-hit | miss


def api_key_of(request: Request) -> str | None:
    return _api_key(request.headers)


def _api_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


TRACE_HEADERS = ("traceparent", "tracestate")  # W3C trace context: spans join the caller's trace
# What ``context_from`` reads, found in one pass over the raw headers (Starlette's ``Headers``
# scans the whole list on each lookup: ten scans per request).
_READ = frozenset(
    name.encode("latin-1")
    for name in (
        "x-request-id",
        "authorization",
        "x-api-key",
        FEATURE_HEADER,
        COHORT_HEADER,
        ROUTE_HEADER,
        "cache-control",
        CACHE_HEADER,
        *TRACE_HEADERS,
    )
)


def _read_headers(request: Request) -> dict[str, str]:
    """The headers in ``_READ`` the request sent, each one's first value (as ``Headers.get``)."""
    found: dict[str, str] = {}
    for key, value in request.scope["headers"]:
        if key in _READ:
            found.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return found


def key_id(key: str | None) -> str | None:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12] if key else None


def context_from(
    request: Request, api: Literal["openai", "anthropic", "embeddings", "responses"], environment: str
) -> RequestContext:
    headers = _read_headers(request)
    # 32 random hex digits, like a uuid4's, without building a UUID object (a few us per request)
    request_id = headers.get("x-request-id") or f"req_{os.urandom(16).hex()}"
    request.state.request_id = request_id
    return RequestContext(
        request_id=request_id,
        api=api,
        api_key_id=key_id(_api_key(headers)),
        environment=environment,
        feature=headers.get(FEATURE_HEADER),
        cohort=headers.get(COHORT_HEADER),
        route_override=headers.get(ROUTE_HEADER),
        cache=parse_directive(headers.get("cache-control"), headers.get(CACHE_HEADER)),
        started_at=time.time(),
        started_perf=time.perf_counter(),
        extra={name: headers[name] for name in TRACE_HEADERS if name in headers},
    )
