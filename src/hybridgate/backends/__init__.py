"""Step 3 of the flow: call models. One module per kind of upstream, one Protocol for all."""

from __future__ import annotations

from collections.abc import Mapping

from hybridgate.backends.base import Backend
from hybridgate.config import AnthropicBackend, BackendConfig, EmbeddedBackend, OpenAICompatBackend
from hybridgate.errors import ConfigError

__all__ = ["Backend", "build_backend"]


def _secret(name: str, env_var: str | None, env: Mapping[str, str]) -> str | None:
    if env_var is None:
        return None
    value = env.get(env_var)
    if value is None:
        raise ConfigError(f"backend '{name}' reads its API key from ${env_var}, which is not set")
    return value


def build_backend(name: str, config: BackendConfig, env: Mapping[str, str]) -> Backend:
    """The backend ``config`` describes; set but empty key variable: a ``DisabledBackend``."""
    key_env = config.api_key_env if isinstance(config, OpenAICompatBackend | AnthropicBackend) else None
    if key_env is not None and env.get(key_env) == "" and not isinstance(config, EmbeddedBackend):
        from hybridgate.backends.disabled import DisabledBackend

        return DisabledBackend(name, config.model, key_env)
    if isinstance(config, OpenAICompatBackend):
        from hybridgate.backends.openai_compat import OpenAICompatBackend as OpenAICompat

        return OpenAICompat(name, config, _secret(name, config.api_key_env, env))
    if isinstance(config, AnthropicBackend):
        from hybridgate.backends.anthropic import AnthropicBackend as Anthropic

        return Anthropic(name, config, _secret(name, config.api_key_env, env))
    if isinstance(config, EmbeddedBackend):
        from hybridgate.backends.embedded.backend import EmbeddedBackend as Embedded

        return Embedded(name, config)
    raise ConfigError(f"backend '{name}' has an unknown type")
