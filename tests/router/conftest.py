"""Router tests use the session's router (tests/conftest.py), trained once, under their old names."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridgate.router.artifact import RouterArtifact


@pytest.fixture(scope="session")
def train_file(router_outcomes: Path) -> Path:
    return router_outcomes


@pytest.fixture(scope="session")
def artifact(router_artifact: RouterArtifact) -> RouterArtifact:
    return router_artifact
