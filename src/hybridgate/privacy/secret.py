"""Per-deployment secrets: the one that keys prompt HMACs in the ledger, and any other like it.

Taken from the environment variable the config names; when that is unset, a random secret is
created once beside the data file it protects (mode 0600) so hashes stay comparable across
restarts of the same deployment but not across deployments. ``load_secret`` is the general form
(also used for the API-key pepper); ``load_prompt_secret`` applies it to the ledger config.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from hybridgate.config import LedgerConfig


def load_prompt_secret(config: LedgerConfig, env: Mapping[str, str]) -> bytes:
    return load_secret(config.hmac_secret_env, env, Path(config.path).with_suffix(".secret"))


def load_secret(env_var: str, env: Mapping[str, str], path: Path) -> bytes:
    """The value of ``env_var`` if set; otherwise the secret in ``path``, created there if missing."""
    if value := env.get(env_var):
        return value.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or by a replica starting at the same moment
        return path.read_bytes().strip()
    created = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as file:
        file.write(created)
    return created
