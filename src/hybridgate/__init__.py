"""hybridgate: a self-hosted hybrid LLM gateway. The public API is below; the rest is private."""

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig, load_config

__all__ = ["GatewayConfig", "create_app", "load_config"]
