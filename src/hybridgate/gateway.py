"""Assemble the gateway from a config: backends, router, cascade, ledger, metrics, pipeline.

Everything is built here and passed in; nothing lives at module level. ``start`` and ``aclose``
are called by the ASGI lifespan, so connection pools and the ledger writer live exactly as long
as the server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from hybridgate.backends import Backend, build_backend
from hybridgate.cascade import Cascade
from hybridgate.config import GatewayConfig
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.store import SqliteLedger
from hybridgate.pins import enforce_pins, remote_pins
from hybridgate.pipeline import Pipeline
from hybridgate.privacy.secret import load_prompt_secret
from hybridgate.router import RuleRouter

if TYPE_CHECKING:
    from hybridgate.privacy.policy import PrivacyGuard


@dataclass
class Gateway:
    config: GatewayConfig
    backends: dict[str, Backend]
    ledger: SqliteLedger
    metrics: GatewayMetrics
    pipeline: Pipeline

    async def start(self) -> None:
        await enforce_pins(self.config, self.backends)  # before anything starts: a bad pin stops here
        self.ledger.start()
        for backend in self.backends.values():
            await backend.start()

    async def aclose(self) -> None:
        await self.pipeline.shadow.drain()
        for backend in self.backends.values():
            await backend.aclose()
        await self.ledger.aclose()


def _privacy_guard(config: GatewayConfig) -> PrivacyGuard | None:
    if config.privacy is None:
        return None
    # Imported here: Presidio (and spaCy behind it) take seconds to import; skip them when unused.
    from hybridgate.privacy.policy import PrivacyGuard

    local = [name for name, backend in config.backends.items() if backend.local]
    return PrivacyGuard(config.privacy, local)


def build_gateway(config: GatewayConfig, env: Mapping[str, str] | None = None) -> Gateway:
    env = os.environ if env is None else env
    backends = {name: build_backend(name, cfg, env) for name, cfg in config.backends.items()}
    ledger = SqliteLedger(
        config.ledger.path,
        batch_size=config.ledger.batch_size,
        flush_interval_s=config.ledger.flush_interval_s,
    )
    metrics = GatewayMetrics(
        CollectorRegistry(), ledger_dropped=lambda: ledger.dropped, pins=remote_pins(config)
    )
    pipeline = Pipeline(
        config,
        RuleRouter(config),
        Cascade(backends, config.routes),
        ledger,
        metrics,
        Pricer(),
        load_prompt_secret(config.ledger, env),
        _privacy_guard(config),
    )
    return Gateway(config, backends, ledger, metrics, pipeline)
