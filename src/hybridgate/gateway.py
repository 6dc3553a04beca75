"""Assemble the gateway from a config: backends, router, cascade, ledger, metrics, pipeline.

Everything is built here and passed in; nothing lives at module level. ``start`` and ``aclose``
are called by the ASGI lifespan, so connection pools and the ledger writer live exactly as long
as the server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from hybridgate.auth import KeyStore, Limiter, MemoryLimiter, SqliteKeyStore, pepper_file, postgres_key_store
from hybridgate.auth.redis_limits import RedisLimiter
from hybridgate.backends import Backend, build_backend
from hybridgate.backends.embeddings import build_embedder
from hybridgate.backends.pins import enforce_pins, remote_pins
from hybridgate.cache import ResponseCache, build_cache, build_vector_cache
from hybridgate.cascade.core import Cascade
from hybridgate.config import GatewayConfig
from hybridgate.embeddings import Embeddings, guard_name
from hybridgate.errors import StoreUnavailableError
from hybridgate.ledger import Ledger, build_ledger
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.response_store import ResponseStore, Sealer, SqliteResponseStore
from hybridgate.loop_lag import LoopLag
from hybridgate.pipeline.core import Pipeline
from hybridgate.pipeline.outcomes import OutcomeSampler, build_outcome_sampler
from hybridgate.pipeline.recorder import Recorder
from hybridgate.privacy.gate import EgressGate
from hybridgate.privacy.secret import load_prompt_secret, load_secret
from hybridgate.router import RuleRouter
from hybridgate.router.signal import RouterReloads, build_router_reloads
from hybridgate.stores.redis import RedisCircuit, redis_client

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from hybridgate.ledger.tracing import RequestTracer
    from hybridgate.privacy.policy import PrivacyGuard


@dataclass
class Access:
    """Virtual keys and their limits; present only when ``[auth] enabled = true``."""

    keys: KeyStore
    limiter: Limiter


@dataclass
class Gateway:
    config: GatewayConfig
    backends: dict[str, Backend]
    ledger: Ledger
    metrics: GatewayMetrics
    pipeline: Pipeline
    access: Access | None = None
    privacy: PrivacyGuard | None = None
    cache: ResponseCache | None = None
    router_reloads: RouterReloads | None = None  # learned routes only: hot reload of router files
    embeddings: Embeddings | None = None  # [embeddings]: POST /v1/embeddings
    responses: ResponseStore | None = None  # [responses] store = "local": stored Responses answers
    loop_lag: LoopLag | None = None  # event-loop lag and GC pauses, in /metrics
    outcomes: OutcomeSampler | None = None  # graded answers and POST /v1/feedback

    def degraded(self) -> dict[str, str]:
        """Shared stores that are failing right now, by component (served around, see /healthz)."""
        reasons = {
            "cache": self.cache.degraded_reason() if self.cache else None,
            "ledger": self.ledger.degraded_reason(),
            "limits": self.access.limiter.degraded_reason() if self.access else None,
            "keys": self.access.keys.degraded_reason() if self.access else None,
            "telemetry": tracer.degraded_reason() if (tracer := self.pipeline.recorder.tracer) else None,
            "embeddings_cache": (
                self.embeddings.cache.degraded_reason() if self.embeddings and self.embeddings.cache else None
            ),
        }
        return {name: reason for name, reason in reasons.items() if reason}

    async def not_ready(self) -> dict[str, str]:
        """What keeps this replica from serving the requests it is configured for (see /readyz):
        a required store never reached since start, an embedded model still loading."""
        backends = self.backends.items()
        loading = {name: f"loading {b.model}" for name, b in backends if getattr(b, "loading", False)}
        reasons = {"keys": await self.access.keys.not_ready() if self.access else None, **loading}
        return {name: reason for name, reason in reasons.items() if reason}

    async def start(self) -> None:
        await enforce_pins(self.config, self.backends)  # before anything starts: a bad pin stops here
        if self.loop_lag is not None:
            self.loop_lag.start()
        self.ledger.start()
        if self.access is not None:
            await self.access.keys.start()
            await self._seed_spend(self.access.limiter)
        for backend in self.backends.values():
            await backend.start()
        if self.cache is not None:
            await self.cache.start()
        if self.router_reloads is not None:
            await self.router_reloads.start()
        if self.embeddings is not None:
            await self.embeddings.start()
        if self.responses is not None:
            await self.responses.start()
        if self.outcomes is not None:
            await self.outcomes.store.start()

    async def _seed_spend(self, limiter: Limiter) -> None:
        """Budgets survive restarts: today's and this month's spend per key, from the ledger.

        A shared ledger that is down must not keep a replica from starting: it starts with the
        spend its limiter already holds (Redis's, with shared limits) and says so."""
        try:
            await self._seed_spend_from_ledger(limiter)
        except (OSError, StoreUnavailableError) as exc:
            logger.warning("could not read spend from the ledger (%s); budgets start from the limiter's", exc)

    async def _seed_spend_from_ledger(self, limiter: Limiter) -> None:
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        day = {r["api_key"]: r["cost_usd"] for r in self.ledger.usage("api_key", _days_since(midnight, now))}
        month = self.ledger.usage("api_key", _days_since(midnight.replace(day=1), now))
        for row in month:
            if row["api_key"]:
                await limiter.seed_spend(row["api_key"], day.get(row["api_key"], 0.0), row["cost_usd"])

    async def aclose(self) -> None:
        if self.router_reloads is not None:
            await self.router_reloads.aclose()
        if self.responses is not None:
            await self.responses.aclose()
        await self.pipeline.shadow.drain()
        if self.outcomes is not None:
            await self.outcomes.drain()
            await self.outcomes.store.aclose()
        if self.embeddings is not None:
            await self.embeddings.aclose()
        await self.pipeline.recorder.drain_charges()
        if self.cache is not None:
            await self.cache.aclose()
        if self.access is not None:
            await self.access.limiter.aclose()
            await self.access.keys.aclose()
        for backend in self.backends.values():
            await backend.aclose()
        await self.ledger.aclose()
        await self.pipeline.recorder.close_tracer()
        if self.loop_lag is not None:
            await self.loop_lag.aclose()


def _days_since(start: datetime, now: datetime) -> float:
    return max((now - start).total_seconds(), 1.0) / 86400


def _access(config: GatewayConfig, env: Mapping[str, str], circuit: RedisCircuit) -> Access | None:
    if not config.auth.enabled:
        return None
    limiter: Limiter = MemoryLimiter()
    if config.auth.limits_store == "redis" and config.redis is not None:
        client = redis_client(config.redis, env, circuit)
        limiter = RedisLimiter(client, key_prefix=config.redis.key_prefix)
    if config.auth.keys_store == "postgres":
        return Access(postgres_key_store(config, env), limiter)
    pepper = load_secret(config.auth.pepper_env, env, pepper_file(config.auth.keys_path))
    store = SqliteKeyStore(config.auth.keys_path, pepper, cache_ttl_s=config.auth.key_cache_ttl_s)
    return Access(store, limiter)


def _privacy_guard(config: GatewayConfig) -> PrivacyGuard | None:
    if config.privacy is None:
        return None
    # Imported here: Presidio (and spaCy behind it) take seconds to import; skip them when unused.
    from hybridgate.privacy.policy import PrivacyGuard

    local = [name for name, backend in config.backends.items() if backend.local]
    if config.embeddings is not None:
        local += [guard_name(name) for name, cfg in config.embeddings.backends.items() if cfg.local]
    return PrivacyGuard(config.privacy, local, config.routes, config.default_route)


def _egress_gate(config: GatewayConfig) -> EgressGate:
    # Without [privacy] nothing is scanned, so nothing is held back either.
    forward = config.privacy is None or config.privacy.forward_unknown_fields
    return EgressGate(forward_unknown_fields=forward)


def build_gateway(config: GatewayConfig, env: Mapping[str, str] | None = None) -> Gateway:
    env = os.environ if env is None else env
    backends = {name: build_backend(name, cfg, env) for name, cfg in config.backends.items()}
    ledger = build_ledger(config, env)
    metrics = GatewayMetrics(
        CollectorRegistry(),
        ledger_dropped=lambda: ledger.dropped,
        pins=remote_pins(config),
        features=config.known_features(),
    )
    circuit = RedisCircuit()  # the cache and the limits share one view of Redis's health
    access = _access(config, env, circuit)
    privacy = _privacy_guard(config)
    cache = build_cache(config, env, circuit)
    router = RuleRouter(config)
    secret = load_prompt_secret(config.ledger, env)
    limiter = access.limiter if access else None
    recorder = Recorder(config, ledger, metrics, Pricer(), secret, limiter, _tracer(config, env))
    pipeline = Pipeline(
        config, router, Cascade(backends, config, _egress_gate(config)), recorder, privacy, cache
    )
    gateway = Gateway(config, backends, ledger, metrics, pipeline, access, privacy, cache)
    metrics.watch_degraded(gateway.degraded)
    gateway.router_reloads = build_router_reloads(config, router, env)
    gateway.embeddings = _embeddings(config, env, pipeline, secret, privacy)
    gateway.responses = _response_store(config, env, secret)
    gateway.loop_lag = LoopLag(metrics.registry)
    gateway.outcomes = pipeline.outcomes = build_outcome_sampler(config, env, pipeline, router, metrics)
    return gateway


def _tracer(config: GatewayConfig, env: Mapping[str, str]) -> RequestTracer | None:
    if config.telemetry is None or not config.telemetry.enabled:
        return None
    # Imported here: the OpenTelemetry SDK is an optional dependency (the `otel` extra).
    from hybridgate.ledger.tracing import build_tracer

    return build_tracer(config, env)


def _embeddings(
    config: GatewayConfig,
    env: Mapping[str, str],
    pipeline: Pipeline,
    secret: bytes,
    guard: PrivacyGuard | None,
) -> Embeddings | None:
    embeddings = config.embeddings
    if embeddings is None:
        return None
    return Embeddings(
        embeddings,
        dict(embeddings.backends),
        {name: build_embedder(name, cfg, env) for name, cfg in embeddings.backends.items()},
        pipeline.recorder.commit,
        Pricer(),
        secret,
        cache=build_vector_cache(config, env),
        guard=guard,
        log_prompts=config.ledger.log_prompts,
        cache_pii=config.cache.cache_pii if config.cache else False,
        gate=_egress_gate(config),
        cohort_labels=config.ledger.cohort_labels,
    )


def _response_store(config: GatewayConfig, env: Mapping[str, str], secret: bytes) -> ResponseStore | None:
    """Stored Responses answers live beside the ledger rows, sealed with the deployment secret."""
    if config.responses.store == "off":
        return None
    sealer, ttl_s = Sealer(secret), config.responses.ttl_s
    if config.ledger.store == "sqlite":
        return SqliteResponseStore(config.ledger.path, sealer, ttl_s)
    assert config.postgres is not None  # the config validator requires [postgres] for this store
    from hybridgate.ledger.pg_response_store import PostgresResponseStore

    server = config.postgres
    password = env.get(server.password_env) if server.password_env else None
    return PostgresResponseStore(
        server.dsn, sealer, ttl_s, password=password, timeout_s=server.timeout_s, pool_size=server.pool_size
    )
