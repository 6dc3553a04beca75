"""Shared fixtures for router tests: the real WordLlama embedding and a router trained once."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.features import FeatureSpec, Featurizer
from hybridgate.training.calibration import Target
from hybridgate.training.dataset import load_outcomes
from hybridgate.training.train import TrainingOptions, train_router
from tests.router.synthetic import rows, write_csv


@pytest.fixture(scope="session")
def embedder() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()  # the weights shipped in the wordllama wheel; no network


@pytest.fixture(scope="session")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("router") / "train.csv", rows(600, seed=1))


@pytest.fixture(scope="session")
def artifact(train_file: Path, embedder: WordLlamaEmbedder) -> RouterArtifact:
    options = TrainingOptions(target=Target("quality", 0.95), bootstrap=200)
    featurizer = Featurizer(FeatureSpec(token_buckets=1 << 16), embedder)
    return train_router(load_outcomes(train_file), featurizer, options, {"file": train_file.name})


@pytest.fixture(scope="session")
def router_file(artifact: RouterArtifact, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("router") / "router.json"
    artifact.save(path)
    return path
