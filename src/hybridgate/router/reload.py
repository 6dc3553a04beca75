"""Hot reload of learned router files: re-read every one, validate fully, swap all or none.

A reload parses each ``router = "learned"`` route's file (``RouterArtifact.load``) and builds its
``LearnedRouter`` with the embedding already in memory (loading WordLlama again would take
seconds). Only when every file loads are they swapped into the ``RuleRouter``, in one
assignment; any failure leaves the routers in use untouched and raises ``RouterReloadError``
naming the route and the file. Each loaded file is known by the SHA-256 of its bytes, which
/healthz shows, so an operator can see which file every replica runs.

Part of the router (step 2 of the flow): reading the files is its only I/O, and it blocks, so
the gateway calls it from a worker thread (``hybridgate.router.signal``). It never touches the
route's config: a ``threshold`` set on the route still overrides the new file's.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from hybridgate.config import GatewayConfig, RouteConfig
from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.errors import GatewayError, RouterFileError, RouterReloadError
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.learned import LearnedRouter
from hybridgate.router.rules import RuleRouter

log = logging.getLogger("hybridgate.router")

MISSING = "missing"  # what a file's hash is while the file does not exist (mid-replace, say)


class RouterReloader:
    """Reloads the learned routes of one ``RuleRouter``; remembers which new files it refused."""

    def __init__(self, config: GatewayConfig, router: RuleRouter) -> None:
        self._routes = {name: r for name, r in config.routes.items() if r.router == "learned"}
        self._router = router
        loaded = next(iter(router.learned.values()), None)
        self._embedder = loaded.featurizer.embedder if loaded else None
        self._refused: dict[str, str] | None = None  # the on-disk hashes of the last refused reload

    def versions(self) -> dict[str, dict[str, Any]]:
        """Which file each learned route runs: path, SHA-256, creation time, threshold in use."""
        return {name: _version(router) for name, router in self._router.learned.items()}

    def reload(self) -> dict[str, dict[str, Any]]:
        """Load every file, swap them in together, return ``versions()``; or raise, changing nothing."""
        # Hashed before loading: if a half-written file is refused and then completed, the
        # completed file's hash differs from the refused one, so polling still picks it up.
        disk = self.on_disk()
        try:
            loaded = {name: self._load(name, route) for name, route in self._routes.items()}
        except RouterReloadError:
            self._refused = disk
            raise
        self._router.swap_learned(loaded)
        self._refused = None
        versions = self.versions()
        log.warning("router files reloaded: %s", _summary(versions))
        return versions

    def reload_if_changed(self) -> dict[str, dict[str, Any]] | None:
        """Reload when a file on disk differs from the one loaded and was not refused already."""
        disk = self.on_disk()
        loaded = {name: router.artifact.sha256 for name, router in self._router.learned.items()}
        if disk == loaded or disk == self._refused:
            return None
        return self.reload()

    def on_disk(self) -> dict[str, str]:
        """The SHA-256 of every learned route's file as it is now (``missing`` if absent)."""
        return {name: _file_hash(Path(route.router_file or "")) for name, route in self._routes.items()}

    def _load(self, name: str, route: RouteConfig) -> LearnedRouter:
        path = Path(route.router_file or "")
        try:
            artifact = RouterArtifact.load(path)
            if self._embedder is None:
                self._embedder = WordLlamaEmbedder()
            return LearnedRouter(artifact, self._embedder, route.threshold, str(path))
        except RouterFileError as exc:
            raise _refused(name, exc.message) from exc
        except GatewayError as exc:  # e.g. trained with another embedding
            raise _refused(name, f"router file {path}: {exc.message}") from exc
        except (OSError, ValueError, TypeError, KeyError) as exc:  # unreadable, or a malformed field
            raise _refused(name, f"router file {path}: {type(exc).__name__}: {exc}") from exc


def _refused(route: str, problem: str) -> RouterReloadError:
    return RouterReloadError(
        f"router reload refused for route '{route}', the previous router files keep serving: {problem}"
    )


def _version(router: LearnedRouter) -> dict[str, Any]:
    artifact = router.artifact
    return {
        "file": router.source,
        "sha256": artifact.sha256,
        "created": artifact.created,
        "threshold": router.threshold,
    }


def _summary(versions: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{name}={v['file']} sha256:{v['sha256'][:12]}" for name, v in versions.items())


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return MISSING
    except OSError as exc:  # unreadable: report it as its own state, so the refusal is logged once
        return f"unreadable: {exc.strerror}"
