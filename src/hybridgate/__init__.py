"""hybridgate: a self-hosted hybrid LLM gateway. The public API is below; the rest is private.

Imported lazily, so a process that needs one module (the embedded engine process) does not
import the whole gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybridgate.app import create_app
    from hybridgate.config import GatewayConfig, load_config

__all__ = ["GatewayConfig", "create_app", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from hybridgate.app import create_app

        return create_app
    if name in ("GatewayConfig", "load_config"):
        from hybridgate import config

        return getattr(config, name)
    raise AttributeError(f"module 'hybridgate' has no attribute {name!r}")
