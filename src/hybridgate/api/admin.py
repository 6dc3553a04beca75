"""Admin endpoints that act on this replica: ``POST /admin/router/reload``.

Needs an admin key when auth is on (``require_admin``). A refused reload is a ``GatewayError``
(422, naming the route and the file), rendered by the one error handler like any other.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from hybridgate.api.auth import require_admin
from hybridgate.errors import RequestError
from hybridgate.gateway import Gateway


async def reload_router(request: Request) -> Response:
    """Reload this replica's learned router files; answer with what it now runs."""
    gateway: Gateway = request.app.state.gateway
    await require_admin(request, gateway)
    reloads = gateway.router_reloads
    if reloads is None:
        raise RequestError('no route has router = "learned"; there is no router file to reload')
    versions = await reloads.reload()
    return Response(orjson.dumps({"reloaded": True, "routers": versions}), media_type="application/json")
