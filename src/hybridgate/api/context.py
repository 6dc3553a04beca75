"""Who is asking: a RequestContext from the HTTP request's headers.

The API key itself is never stored: only a short SHA-256 prefix identifies it in the ledger.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Literal

from starlette.requests import Request

from hybridgate.cache.keys import parse_directive
from hybridgate.types import RequestContext

ROUTE_HEADER = "x-hybridgate-route"
FEATURE_HEADER = "x-hybridgate-feature"
COHORT_HEADER = "x-hybridgate-cohort"
CACHE_HEADER = "x-hybridgate-cache"  # request: off | refresh | force; response: hit | semantic-hit | miss


def api_key_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


TRACE_HEADERS = ("traceparent", "tracestate")  # W3C trace context: spans join the caller's trace


def key_id(key: str | None) -> str | None:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12] if key else None


def context_from(
    request: Request, api: Literal["openai", "anthropic", "embeddings", "responses"], environment: str
) -> RequestContext:
    # 32 random hex digits, like a uuid4's, without building a UUID object (a few us per request)
    request_id = request.headers.get("x-request-id") or f"req_{os.urandom(16).hex()}"
    request.state.request_id = request_id
    return RequestContext(
        request_id=request_id,
        api=api,
        api_key_id=key_id(api_key_of(request)),
        environment=environment,
        feature=request.headers.get(FEATURE_HEADER),
        cohort=request.headers.get(COHORT_HEADER),
        route_override=request.headers.get(ROUTE_HEADER),
        cache=parse_directive(request.headers.get("cache-control"), request.headers.get(CACHE_HEADER)),
        started_at=time.time(),
        started_perf=time.perf_counter(),
        extra={name: request.headers[name] for name in TRACE_HEADERS if name in request.headers},
    )
