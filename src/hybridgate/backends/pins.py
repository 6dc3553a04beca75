"""Version pins: hold every backend to the exact model version the config names.

Called once from ``Gateway.start()``, before any request is served; never on the request path.
A pin (``pin = "..."`` on a backend) means:

- embedded: the SHA-256 of the GGUF file. A file whose hash differs refuses to start the gateway,
  since different weights are a different model however the file is named.
- remote (openai_compat, anthropic): the exact upstream model id, such as a dated snapshot. It is
  the model id sent upstream, replacing ``model``. Providers still report what actually answered,
  so ``remote_pins`` feeds the metric that counts responses whose reported model differs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from hybridgate.backends import Backend
from hybridgate.config import EmbeddedBackend, GatewayConfig
from hybridgate.errors import ConfigError

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@runtime_checkable
class WeightsFile(Protocol):
    """A backend that serves weights from a local file and can hash them."""

    @property
    def model_file(self) -> Path: ...

    def model_sha256(self) -> str: ...


def expected_sha256(name: str, pin: str) -> str:
    """The pinned hash, lower-case, with an optional ``sha256:`` prefix removed."""
    value = pin.strip().lower().removeprefix("sha256:")
    if not SHA256.match(value):
        raise ConfigError(
            f"backend '{name}': pin {pin!r} is not a SHA-256 (64 hex digits); "
            "an embedded backend is pinned by the hash of its GGUF file (`sha256sum FILE`)"
        )
    return value


def check_weights(name: str, pin: str, backend: WeightsFile) -> None:
    """Raise ``ConfigError`` naming the backend and both hashes when the file is not the pinned one."""
    expected = expected_sha256(name, pin)
    actual = backend.model_sha256()
    if actual != expected:
        raise ConfigError(
            f"backend '{name}': model file {backend.model_file} has SHA-256 {actual}, but the config "
            f"pins {expected}; point model_path at the pinned file, or update pin if the change is intended"
        )


def remote_pins(config: GatewayConfig) -> dict[str, str]:
    """Backend name -> pinned model id, for the backends whose upstream reports a model."""
    return {
        name: backend.pin
        for name, backend in config.backends.items()
        if backend.pin is not None and not isinstance(backend, EmbeddedBackend)
    }


async def enforce_pins(config: GatewayConfig, backends: Mapping[str, Backend]) -> None:
    """Verify local weights against their pins and send pinned model ids upstream."""
    for name, settings in config.backends.items():
        backend = backends[name]
        if settings.pin is None:
            continue
        if isinstance(settings, EmbeddedBackend):
            if not isinstance(backend, WeightsFile):
                raise ConfigError(f"backend '{name}' cannot hash its model file, so it cannot be pinned")
            # Hashing reads the whole file (~100 MB for SmolLM2); keep the event loop free meanwhile.
            await asyncio.to_thread(check_weights, name, settings.pin, backend)
        else:
            backend.model = settings.pin
