"""The dashboard's break-even projection: ``/ui/api/projection`` and ``/ui/api/projection.svg``.

The TCO model (``hybridgate.tco``) run over what the gateway's ledger measured, as two data routes
of the dashboard (``api/dashboard.py``), which the app assembly mounts with ``dashboard_routes``
here. Offline code served by the gateway: it reads the ledger and computes, nothing else; the
request path never imports it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hybridgate.api import dashboard
from hybridgate.api.dashboard import Guard, Handler, _config, _float, _json, _query, _since
from hybridgate.errors import RequestError
from hybridgate.tco.chart import render_svg
from hybridgate.tco.measure import Workload, summarise
from hybridgate.tco.model import Assumptions
from hybridgate.tco.profiles import get_profile
from hybridgate.tco.report import build_report

DEFAULT_PRICE_PER_MTOK = 8.0
DEFAULT_SELFHOST_MONTHLY = 8000.0


async def _workload(request: Request, since: float) -> Workload | None:
    local = {name for name, backend in _config(request).backends.items() if backend.local}
    backends, hourly = await _query(request, lambda ledger: ledger.traffic(since))
    return summarise(backends, hourly, local, since=since, now=time.time())


def _assumptions(request: Request, workload: Workload) -> tuple[Assumptions, dict[str, str]]:
    """Query parameters first, then what the ledger measured, then the planning-table defaults."""
    price = _float(request, "blended_price", None)
    source = "given"
    if price is None:
        price, source = workload.cloud_usd_per_mtok, "ledger (cloud spend / cloud tokens)"
    if price is None:
        price, source = DEFAULT_PRICE_PER_MTOK, "assumed"
    try:
        profile = get_profile(request.query_params.get("profile", "l4"))
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    selfhost = _float(request, "selfhost_monthly", DEFAULT_SELFHOST_MONTHLY)
    a = Assumptions(price, profile, selfhost_monthly_usd=selfhost, local_share=workload.local_share)
    return a, {"price": source, "local_share": "ledger"}


async def projection(request: Request) -> Response:
    """Break-even projection from the current volume; ``{"no_data": ...}`` on an empty ledger."""
    days, since = _since(request)
    workload = await _workload(request, since)
    if workload is None:
        return _json({"days": days, "no_data": f"no requests in the last {days:g} days"})
    a, sources = _assumptions(request, workload)
    return _json({"days": days, **build_report([], a, workload=workload, sources=sources)})


async def projection_svg(request: Request) -> Response:
    _, since = _since(request)
    workload = await _workload(request, since)
    if workload is None:
        raise RequestError("no data: the ledger has no requests in this period")
    a, _ = _assumptions(request, workload)
    svg = render_svg([workload.daily_tokens], a, title="Projection from current volume")
    return Response(svg, media_type="image/svg+xml", headers={"cache-control": "no-store"})


PROJECTION: Sequence[tuple[str, Handler]] = (
    ("/ui/api/projection", projection),
    ("/ui/api/projection.svg", projection_svg),
)


def dashboard_routes(guard: Guard | None = None) -> list[Route]:
    """The whole dashboard: its page and data routes with the projection's, behind ``guard``."""
    return dashboard.dashboard_routes(guard, PROJECTION)


DASHBOARD_ROUTES: list[Route] = dashboard_routes()  # unguarded, for auth off (and tests)
