"""The dashboard at ``/ui``: one static page plus small JSON endpoints over the ledger.

HTTP edge, beside the model APIs but off the request path: each endpoint calls a read method of
the gateway's own ``Ledger`` (SQLite or PostgreSQL, whichever ``[ledger] store`` names; one short
read each, filtered on the indexed ``ts``) in a worker thread; the break-even projection's two
endpoints are ``hybridgate.tco.projection``'s, mounted beside these by the app assembly (the edge
never imports the offline tools). It must not write to the ledger, call the
pipeline, or hold state between requests. A shared ledger that is down answers 503.

Access control hook: ``dashboard_routes(guard)`` wraps every data route in ``guard``, an async
callable that returns a ``Response`` to refuse the request (e.g. 401 without an admin key) or None
to let it through. The page itself (``/ui``: static HTML, no data) is never guarded: with auth on
it shows a sign-in form, keeps the admin key in ``sessionStorage`` and sends it as a header on
every call (no cookie, so no CSRF).

Every data endpoint takes the same filters: ``days`` (fractions for hours), ``traffic`` (live by
default; ``all`` or a class), ``feature``, ``cohort``, ``route``, ``environment`` and ``api_key``
(a key's id); the projection is the whole deployment's. ``/ui/api/requests`` is the request log
(metadata only, never prompts) and ``/ui/api/requests.csv`` its CSV export.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from hybridgate.auth.records import PREFIX as KEY_PREFIX
from hybridgate.config import ENVIRONMENT_PATTERN, GatewayConfig
from hybridgate.errors import RequestError, StoreUnavailableError, UpstreamUnavailableError
from hybridgate.ledger.base import Ledger
from hybridgate.ledger.records import TRAFFIC_CLASSES
from hybridgate.ledger.rollups import FILTER_COLUMNS, LOG_COLUMNS, USAGE_GROUPS, RowFilter

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Request], Awaitable[Response | None]]
DEFAULT_DAYS = 7.0
LOG_LIMIT = 200  # rows in the page's request log
CSV_LIMIT = 100_000  # rows in one CSV export
MAX_FILTER_CHARS = 200


@dataclass(frozen=True)
class Filters:
    traffic: str | None  # None: every class
    where: RowFilter


def _filters(request: Request) -> Filters:
    traffic = request.query_params.get("traffic") or "live"
    if traffic != "all" and traffic not in TRAFFIC_CLASSES:
        raise RequestError(
            f"traffic must be one of: {', '.join((*TRAFFIC_CLASSES, 'all'))}; got '{traffic[:40]}'"
        )
    values: dict[str, str | None] = {}
    for name in FILTER_COLUMNS:  # feature, cohort, route, environment, api_key (a key's id)
        value = request.query_params.get(name) or None
        if value is not None and len(value) > MAX_FILTER_CHARS:
            raise RequestError(f"query parameter '{name}' is longer than {MAX_FILTER_CHARS} characters")
        values[name] = value
    environment, key = values["environment"], values["api_key"]
    if environment is not None and not ENVIRONMENT_PATTERN.fullmatch(environment):
        raise RequestError(
            f"environment must be a key environment name like 'prod', got '{environment[:40]}'"
        )
    if key is not None and key.startswith(KEY_PREFIX + "-"):
        # A whole key in a URL lands in logs and histories: take only the public id.
        raise RequestError("api_key takes a key's id (as the request log shows it), never the key itself")
    return Filters(None if traffic == "all" else traffic, RowFilter(**values))


def _config(request: Request) -> GatewayConfig:
    config: GatewayConfig = request.app.state.gateway.config
    return config


def _float(request: Request, name: str, default: float | None, *, positive: bool = False) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise RequestError(f"query parameter '{name}' must be a number, got '{raw}'") from None
    if value < 0 or (positive and value == 0):
        raise RequestError(f"query parameter '{name}' must be {'positive' if positive else 'at least 0'}")
    return value


def _since(request: Request) -> tuple[float, float]:
    days = _float(request, "days", DEFAULT_DAYS, positive=True)
    assert days is not None
    return days, time.time() - days * 86_400


def _by(request: Request) -> str:
    by = request.query_params.get("by", "route")
    if by not in USAGE_GROUPS:
        raise RequestError(f"cannot group by '{by}'; choose one of: {', '.join(USAGE_GROUPS)}")
    return by


async def _query(request: Request, read: Callable[[Ledger], T]) -> T:
    """``read`` on the gateway's ledger, off the event loop; 503 while a shared ledger is down."""
    ledger: Ledger = request.app.state.gateway.ledger
    try:
        return await run_in_threadpool(read, ledger)
    except ConnectionError as exc:
        raise UpstreamUnavailableError(str(exc)) from None


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers={"cache-control": "no-store"})


async def page(request: Request) -> Response:
    html = resources.files("hybridgate.api").joinpath("dashboard.html").read_text(encoding="utf-8")
    # The sign-in form must not be framed by another site (clickjacking), nor leak the URL.
    headers = {"cache-control": "no-store", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}
    return HTMLResponse(html, headers=headers)


async def usage(request: Request) -> Response:
    by, (days, _), f = _by(request), _since(request), _filters(request)
    rows = await _query(request, lambda ledger: ledger.usage(by, days, f.traffic, f.where))
    return _json({"by": by, "days": days, "rows": rows})


async def timeseries(request: Request) -> Response:
    by, (days, since), f = _by(request), _since(request), _filters(request)
    rows = await _query(request, lambda ledger: ledger.daily_series(by, since, f.traffic, f.where))
    return _json({"by": by, "days": days, "rows": rows})


async def summary(request: Request) -> Response:
    """Decisions, latency and cache for the filters; the traffic classes (overhead) and model
    drift for the whole deployment."""
    (days, since), f = _since(request), _filters(request)

    def read(ledger: Ledger) -> dict[str, Any]:
        body = ledger.decisions(since, f.traffic, f.where)  # zeros without a ledger
        body["classes"] = ledger.usage("traffic", days, None)
        return body

    body = await _query(request, read)
    lookups = body["cache_lookups"]
    body["cache_hit_rate"] = body["cache_hits"] / lookups if lookups else None  # None: no cache data
    body["model_drift"] = request.app.state.gateway.metrics.drift.changes()
    return _json({"days": days, **body})


async def decisions(request: Request) -> Response:
    """The learned routing's decision report: strong share, regret, wasted strong calls."""
    from hybridgate.ledger.decisions import read_report

    (days, since), gateway = _since(request), request.app.state.gateway
    if gateway.outcomes is None:
        return _json({"days": days, "rows": []})
    routes = {name: route.try_ for name, route in gateway.config.routes.items()}
    try:
        rows = await read_report(gateway.outcomes.store, routes, since)
    except StoreUnavailableError as exc:
        raise UpstreamUnavailableError(str(exc)) from None
    return _json({"days": days, "rows": rows})


async def _log(request: Request, limit: int) -> list[dict[str, Any]]:
    (_, since), f = _since(request), _filters(request)
    return await _query(request, lambda ledger: ledger.request_log(since, limit, f.traffic, f.where))


async def requests_log(request: Request) -> Response:
    """The newest requests matching the filters: metadata only (never the prompt)."""
    return _json({"rows": await _log(request, LOG_LIMIT)})


async def requests_csv(request: Request) -> Response:
    """The request log as CSV (up to ``CSV_LIMIT`` rows), for a spreadsheet."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in await _log(request, CSV_LIMIT):
        # A cell starting with = + - @ is a formula to a spreadsheet: quote it as text.
        writer.writerow({k: _cell(v) for k, v in row.items()})
    headers = {
        "cache-control": "no-store",
        "content-disposition": 'attachment; filename="hybridgate-requests.csv"',
    }
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _guarded(handler: Handler, guard: Guard) -> Handler:
    async def endpoint(request: Request) -> Response:
        refused = await guard(request)
        return refused if refused is not None else await handler(request)

    return endpoint


def dashboard_routes(guard: Guard | None = None, extra: Sequence[tuple[str, Handler]] = ()) -> list[Route]:
    """The dashboard's routes, each data route behind ``guard`` when one is given (the admin-auth
    hook); the page is static and signs in by itself. ``extra`` are more data routes (the TCO
    projection, which ``hybridgate.tco.projection`` adds: the edge does not import offline tools)."""
    handlers: list[tuple[str, Handler]] = [
        ("/ui/api/usage", usage),
        ("/ui/api/requests", requests_log),
        ("/ui/api/requests.csv", requests_csv),
        ("/ui/api/timeseries", timeseries),
        ("/ui/api/summary", summary),
        ("/ui/api/decisions", decisions),
        *extra,
    ]
    return [Route("/ui", page, methods=["GET"])] + [
        Route(path, handler if guard is None else _guarded(handler, guard), methods=["GET"])
        for path, handler in handlers
    ]
