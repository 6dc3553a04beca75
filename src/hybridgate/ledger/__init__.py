"""Layer 5 of the flow: record tokens, latency and cost for every request.

``records`` is the row; ``base.Ledger`` is the store's seam: ``store`` writes rows to SQLite off
the hot path and reads them back, ``postgres`` does the same on a server the replicas share;
``rollups`` sums rows per group for reports; ``pricing`` turns usage into dollars; ``metrics``
mirrors each row into Prometheus series, ``spans`` and ``tracing`` into an OpenTelemetry span
(``[telemetry]``); ``usage`` renders rollups for the CLI. Nothing here
imports the pipeline, router or backends.
"""

from collections.abc import Mapping
from pathlib import Path

from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError
from hybridgate.ledger.base import Ledger
from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.records import LedgerRecord, prompt_hmac
from hybridgate.ledger.store import BATCH_SIZE as SQLITE_BATCH_SIZE
from hybridgate.ledger.store import USAGE_GROUPS, SqliteLedger
from hybridgate.ledger.usage import render_usage

__all__ = [
    "USAGE_GROUPS",
    "GatewayMetrics",
    "Ledger",
    "LedgerRecord",
    "Pricer",
    "SqliteLedger",
    "build_ledger",
    "prompt_hmac",
    "read_ledger",
    "render_usage",
]


def build_ledger(config: GatewayConfig, env: Mapping[str, str]) -> Ledger:
    """The store ``[ledger] store`` names, not yet started."""
    settings = config.ledger
    if settings.store == "sqlite":
        return SqliteLedger(
            settings.path,
            batch_size=settings.batch_size or SQLITE_BATCH_SIZE,
            flush_interval_s=settings.flush_interval_s,
            retention_days=settings.retention_days,
        )
    assert config.postgres is not None  # the config validator requires [postgres] for this store
    # Imported here: only replicas with a shared ledger need asyncpg loaded.
    from hybridgate.ledger.postgres import BATCH_SIZE, PostgresLedger

    server = config.postgres
    return PostgresLedger(
        server.dsn,
        password=env.get(server.password_env) if server.password_env else None,
        timeout_s=server.timeout_s,
        spool_path=settings.spool_path,
        batch_size=settings.batch_size or BATCH_SIZE,
        flush_interval_s=settings.flush_interval_s,
        retention_days=settings.retention_days,
    )


def read_ledger(config: GatewayConfig, env: Mapping[str, str], path: str | Path | None = None) -> Ledger:
    """The ledger an offline tool reads: the SQLite file at ``path`` when given, else the store
    ``config`` names (not started: reading needs no writer). A SQLite file that does not exist
    raises ConfigError, so a typo in ``--ledger`` is not mistaken for a ledger without traffic."""
    if path is None and config.ledger.store == "postgres":
        return build_ledger(config, env)
    file = Path(config.ledger.path if path is None else path)
    if not file.exists():
        raise ConfigError(f"no ledger at {file}; serve some requests first, or pass --ledger")
    return SqliteLedger(str(file))
