"""The per-deployment secret that keys prompt HMACs in the ledger.

Taken from the environment variable the config names; when that is unset, a random secret is
created once beside the ledger file (mode 0600) so hashes stay comparable across restarts of the
same deployment but not across deployments.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from hybridgate.config import LedgerConfig


def load_prompt_secret(config: LedgerConfig, env: Mapping[str, str]) -> bytes:
    if value := env.get(config.hmac_secret_env):
        return value.encode()
    path = Path(config.path).with_suffix(".secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or by a replica starting at the same moment
        return path.read_bytes().strip()
    created = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as file:
        file.write(created)
    return created
