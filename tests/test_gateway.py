"""Gateway start-up: a shared ledger that is down degrades a replica, it does not stop it."""

from __future__ import annotations

from pathlib import Path

from hybridgate.config import GatewayConfig
from hybridgate.gateway import build_gateway


async def test_a_replica_with_budgets_starts_while_postgres_is_unreachable(tmp_path: Path) -> None:
    config = GatewayConfig.model_validate(
        {
            "ledger": {"store": "postgres", "spool_path": str(tmp_path / "spool.jsonl")},
            "postgres": {"dsn": "postgresql://nobody@127.0.0.1:9/none", "timeout_s": 0.5},  # nothing on 9
            "auth": {"enabled": True, "keys_path": str(tmp_path / "keys.db")},
            "backends": {"up": {"type": "openai_compat", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
            "routes": {"auto": {"try": ["up"]}},
        }
    )
    gateway = build_gateway(config, env={"HYBRIDGATE_KEY_PEPPER": "pepper-0123456789abcdef"})
    await gateway.start()
    try:
        assert "ledger" in gateway.degraded()
    finally:
        await gateway.aclose()
