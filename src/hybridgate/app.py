"""create_app(config) -> the ASGI application.

Wires routes to the API modules, installs the one error handler, and ties the gateway's
resources (connection pools, ledger writer) to the server's lifespan.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Literal

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hybridgate.api import anthropic, embeddings, feedback, models, openai, responses, stored_completions
from hybridgate.api.admin import reload_router
from hybridgate.api.auth import require_admin
from hybridgate.api.context import context_from
from hybridgate.api.errors import handle_gateway_error, handle_unexpected, is_anthropic_path
from hybridgate.api.front import BodyDeadline
from hybridgate.api.health_port import HealthPort, until_ready
from hybridgate.config import GatewayConfig, load_config
from hybridgate.errors import GatewayError, RequestError
from hybridgate.gateway import Gateway, build_gateway
from hybridgate.loop_lag import freeze_startup_heap
from hybridgate.tco.projection import dashboard_routes  # the dashboard, its TCO projection included


async def healthz(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    backends = {
        name: {
            "type": gateway.config.backends[name].type,
            "local": backend.local,
            "model": backend.model,
            **({"disabled": why} if (why := getattr(backend, "disabled", None)) else {}),
        }
        for name, backend in gateway.backends.items()
    }
    privacy = (
        gateway.privacy.coverage()
        if gateway.privacy
        else {"mode": "off", "note": "no [privacy] section: prompts are not scanned"}
    )
    # Degraded still answers 200: the replica serves (cache as miss, local limits, spooled
    # ledger), so a load balancer must keep it; operators alert on the status field instead.
    degraded = gateway.degraded()
    body = {
        "status": "degraded" if degraded else "ok",
        "degraded": degraded,
        "cache": {"store": gateway.cache.store_name} if gateway.cache else None,
        "privacy": privacy,
        "environment": gateway.config.environment,
        "backends": backends,
        "routes": list(gateway.config.routes),
        "router_files": gateway.router_reloads.versions() if gateway.router_reloads else {},
        "model_drift": gateway.metrics.drift.changes(),
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def readyz(request: Request) -> Response:
    """200 when this replica can serve what it is configured for, else 503 and why (load balancers
    and readiness probes). Degraded stores that are served around do not make it unready."""
    waiting = await request.app.state.gateway.not_ready()
    body = {"status": "not ready" if waiting else "ready", "waiting_for": waiting}
    return Response(orjson.dumps(body), status_code=503 if waiting else 200, media_type="application/json")


async def readyz_beside(request: Request) -> Response:
    """/readyz on the health port: also 503 until the serving port is about to listen, so a probe
    never calls a replica ready whose serving port would still refuse connections."""
    if not request.app.state.serving:
        waiting = {**await request.app.state.gateway.not_ready(), "serving_port": "opens once ready"}
        body = {"status": "not ready", "waiting_for": waiting}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    return await readyz(request)


async def favicon(request: Request) -> Response:
    """Browsers ask every page's host for one (the dashboard's too): no icon, and no ledger row for
    a 404 nobody sent on purpose."""
    return Response(status_code=204)


async def livez(request: Request) -> Response:
    """200 while the process answers at all (liveness probes): never asks a store."""
    return Response(b'{"status":"alive"}', media_type="application/json")


# Served on the serving port, and on [server] health_port when there is one.
HEALTH_ROUTES = {"/healthz": healthz, "/readyz": readyz, "/livez": livez}


async def metrics(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    await require_admin(request, gateway)
    body, content_type = gateway.metrics.render()
    return Response(body, media_type=content_type)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405, rendered in the caller's wire format like every other error, and
    recorded in the ledger like every other request."""
    assert isinstance(exc, HTTPException)
    error = RequestError(f"no endpoint {request.method} {request.url.path}")
    error.status_code = exc.status_code
    gateway: Gateway = request.app.state.gateway
    api: Literal["openai", "anthropic"] = "anthropic" if is_anthropic_path(request.url.path) else "openai"
    gateway.pipeline.reject(context_from(request, api, gateway.config.environment), error)
    return await handle_gateway_error(request, error)


def create_app(config: GatewayConfig, env: Mapping[str, str] | None = None) -> Starlette:
    gateway = build_gateway(config, env)

    health = None
    if config.server.health_port is not None:
        beside = {**HEALTH_ROUTES, "/readyz": readyz_beside}
        health_app = Starlette(routes=[Route(path, probe, methods=["GET"]) for path, probe in beside.items()])
        health_app.state.gateway = gateway
        health_app.state.serving = False
        health = HealthPort(health_app, config.server.host, config.server.health_port)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if health is not None:
            await health.start()  # probes answer while the gateway starts and waits
        try:
            await gateway.start()
            if health is not None and await until_ready(gateway.not_ready):
                # uvicorn binds the serving port as soon as this lifespan yields (the next turn
                # of the loop at most): from here the health port's /readyz may say ready
                health_app.state.serving = True
            yield
        finally:
            await gateway.aclose()
            if health is not None:
                await health.aclose()

    routes = [
        Route("/v1/chat/completions", openai.chat_completions, methods=["POST"]),
        Route("/v1/chat/completions", stored_completions.list_completions, methods=["GET"]),
        Route(
            "/v1/chat/completions/{completion_id}", stored_completions.retrieve_completion, methods=["GET"]
        ),
        Route("/v1/chat/completions/{completion_id}", stored_completions.update_completion, methods=["POST"]),
        Route(
            "/v1/chat/completions/{completion_id}", stored_completions.delete_completion, methods=["DELETE"]
        ),
        Route(
            "/v1/chat/completions/{completion_id}/messages", stored_completions.list_messages, methods=["GET"]
        ),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models.get_model, methods=["GET"]),
        Route("/v1/embeddings", embeddings.embeddings, methods=["POST"]),
        Route("/v1/messages", anthropic.messages, methods=["POST"]),
        Route("/v1/responses", responses.create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", responses.retrieve_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", responses.delete_response, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", responses.list_input_items, methods=["GET"]),
        Route("/v1/messages/count_tokens", anthropic.count_tokens, methods=["POST"]),
        Route("/v1/feedback", feedback.feedback, methods=["POST"]),
        *(Route(path, probe, methods=["GET"]) for path, probe in HEALTH_ROUTES.items()),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/admin/router/reload", reload_router, methods=["POST"]),
    ]

    async def admin_only(request: Request) -> Response | None:
        await require_admin(request, gateway)  # raises a GatewayError, rendered like any other
        return None

    routes += dashboard_routes(admin_only)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            *cors(config.server.cors_origins),
            Middleware(BodyDeadline, timeout_s=config.server.body_timeout_s),
        ],
        exception_handlers={
            GatewayError: handle_gateway_error,
            HTTPException: http_error,
            Exception: handle_unexpected,
        },
    )
    app.state.gateway = gateway
    return app


# What a browser page may read of an answer besides the CORS-safelisted headers.
EXPOSED_HEADERS = [
    "x-request-id", "request-id", "x-hybridgate-route", "x-hybridgate-backend", "x-hybridgate-rule",
    "x-hybridgate-cost-usd", "x-hybridgate-cache", "retry-after", "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
]  # fmt: skip


def cors(origins: list[str]) -> list[Middleware]:
    """CORS for browser apps from ``origins`` (none: no CORS headers, browsers refuse cross-origin
    calls). Keys travel in headers (Authorization, x-api-key), never cookies, so credentials
    mode stays off; any request header may be sent, including the SDKs' own."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            allow_credentials=False,
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    ]


CONFIG_ENV = "HYBRIDGATE_CONFIG"


def create_app_from_env() -> Starlette:
    """The app factory each worker process calls under ``hybridgate serve --workers N``: the
    parent passes the config file's path in ``HYBRIDGATE_CONFIG`` (unset: the embedded default)."""
    application = create_app(load_config(os.environ.get(CONFIG_ENV) or None))
    freeze_startup_heap()  # a serve worker owns its process (see loop_lag)
    return application
