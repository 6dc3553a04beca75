"""Who may call: verify the caller's virtual key and admit it past its limits, when auth is on.

The key arrives as ``Authorization: Bearer ...`` (OpenAI SDKs, newer Anthropic SDKs) or
``x-api-key`` (Anthropic). Only its id reaches the request context and the ledger. Admin
endpoints (metrics, dashboard) need a key created with ``--admin``.
"""

from __future__ import annotations

from starlette.requests import Request

from hybridgate.api.context import api_key_of
from hybridgate.errors import PermissionDeniedError
from hybridgate.gateway import Gateway
from hybridgate.types import RequestContext


async def admit(request: Request, gateway: Gateway, ctx: RequestContext) -> dict[str, str]:
    """Verify and count the caller; returns the ``x-ratelimit-*`` headers for its answer."""
    access = gateway.access
    if access is None:
        return {}
    key = await access.keys.verify(api_key_of(request) or "", environment=gateway.config.environment)
    ctx.api_key_id = key.key_id
    ctx.allowed_routes = key.routes
    ctx.privacy_policy = key.privacy
    ctx.key = key
    await access.limiter.check(key)
    return await access.limiter.headers(key)


async def require_admin(request: Request, gateway: Gateway) -> None:
    access = gateway.access
    if access is None:
        return
    key = await access.keys.verify(api_key_of(request) or "", environment=gateway.config.environment)
    if not key.admin:
        raise PermissionDeniedError(f"key {key.key_id} is not an admin key; this endpoint needs one")
