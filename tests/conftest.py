"""Fixtures shared by the whole suite: the expensive real parts are started once per session
(per pytest-xdist worker when scripts/test.sh runs the suite on two: each has its own).

- ``postgres_server``: one real PostgreSQL server (tests/postgres_server.py) for the session;
  ``postgres_dsn`` is a fresh, empty database on it for each test. Tests that stop, kill or pause
  the server take ``own_postgres``, a server of their own. Every server is a copy of one data
  directory made once (``postgres_template``): initdb runs once per session.
- ``redis_server``: one real redis-server (tests/redis_server.py) for the session; ``redis`` is the
  same server emptied (FLUSHALL) for the test. Tests that stop Redis start their own.
- ``router_artifact`` / ``router_file``: a learned router trained once per session on synthetic
  outcomes (tests/router/synthetic.py) with the real WordLlama embedding.
- ``start_gateway``: the one way to start real ``python -m hybridgate serve`` processes
  (tests/gateway_process.py); every process it started is stopped when the test ends.
"""

from __future__ import annotations

import os

# One BLAS thread per process, set before numpy loads OpenBLAS (children inherit it): on this
# 2-core shared machine OpenBLAS's spinning threads made each L-BFGS step of router training
# ~25x slower (tests/router/test_bench.py: 104 s -> 14 s under load).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from redis import Redis

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.features import FeatureSpec, Featurizer
from hybridgate.training.calibration import Target
from hybridgate.training.dataset import load_outcomes
from hybridgate.training.train import TrainingOptions, train_router
from tests.gateway_process import GatewayProcess, run_gateway
from tests.postgres_server import PostgresServer, drop_database, new_database, run_postgres
from tests.postgres_server import postgres_template as make_postgres_template
from tests.redis_server import RedisServer, running_redis
from tests.router.synthetic import rows, write_csv

# The session's router: 600 synthetic outcome rows, a 95% quality target, 200 bootstrap rounds.
ROUTER_ROWS, ROUTER_SEED, ROUTER_BOOTSTRAP = 600, 1, 200


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[Path]:
    """A cluster's data directory, made once: every server the tests start is a copy of it."""
    with make_postgres_template() as data:
        yield data


@pytest.fixture(scope="session")
def postgres_server(postgres_template: Path) -> Iterator[PostgresServer]:
    with run_postgres(postgres_template) as server:
        yield server


@pytest.fixture
def own_postgres(postgres_template: Path) -> Iterator[PostgresServer]:
    """A server of the test's own, for tests that stop, kill or pause it."""
    with run_postgres(postgres_template) as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    dsn = new_database(postgres_server)
    yield dsn
    drop_database(postgres_server, dsn)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
def redis(redis_server: RedisServer) -> RedisServer:
    """The session's redis-server, empty: nothing a previous test wrote is left in it."""
    with Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server


@pytest.fixture(scope="session")
def embedder() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()  # the weights shipped in the wordllama wheel; no network


@pytest.fixture(scope="session")
def router_outcomes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic outcome file the session's router is trained on."""
    return write_csv(tmp_path_factory.mktemp("router") / "train.csv", rows(ROUTER_ROWS, seed=ROUTER_SEED))


@pytest.fixture(scope="session")
def router_artifact(router_outcomes: Path, embedder: WordLlamaEmbedder) -> RouterArtifact:
    featurizer = Featurizer(FeatureSpec(token_buckets=1 << 16), embedder)
    options = TrainingOptions(target=Target("quality", 0.95), bootstrap=ROUTER_BOOTSTRAP)
    return train_router(load_outcomes(router_outcomes), featurizer, options, {"file": router_outcomes.name})


@pytest.fixture
def router_file(router_artifact: RouterArtifact, tmp_path: Path) -> Path:
    """The session's router saved as this test's own file (tests may replace or corrupt it)."""
    path = tmp_path / "router.json"
    router_artifact.save(path)
    return path


GatewayFactory = Callable[..., GatewayProcess]


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    """``start_gateway(config_text, name="gw", **run_gateway_options)`` starts one more gateway process
    in ``tmp_path/name``; all of them stop when the test ends."""
    with ExitStack() as stack:

        def start(config_text: str, name: str = "gw", **options: object) -> GatewayProcess:
            workdir = tmp_path / name
            workdir.mkdir(exist_ok=True)
            return stack.enter_context(run_gateway(config_text, workdir, **options))  # type: ignore[arg-type]

        yield start


# The slowest files (``pytest --durations=0``, 2026-12-07), handed out first: pytest-xdist's
# ``--dist loadfile`` gives workers whole files in collection order, and a slow file handed out
# last keeps one worker busy after the others have finished. The rest keep their order.
SLOW_FIRST = (
    "tests/deployment/test_nginx.py",
    "tests/backends/test_embedded_hostile.py",
    "tests/deployment/test_replicas_limits.py",
    "tests/deployment/test_replicas_ledger.py",
    "tests/deployment/test_replicas_router.py",
    "tests/backends/test_local_tier.py",
    "tests/api/test_responses.py",
    "tests/compat/test_litellm.py",
    "tests/deployment/test_replicas_keys.py",
    "tests/api/test_fuzz.py",
    "tests/api/test_health_port.py",
    "tests/router/test_bench.py",
    "tests/training/test_retrain.py",
    "tests/deployment/test_readiness.py",
    "tests/tco/test_throughput.py",
    "tests/api/test_front.py",
    "tests/ledger/test_tracing.py",
    "tests/pipeline/test_outcomes.py",
    "tests/backends/test_embedded.py",
    "tests/deployment/test_quickstart.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(SLOW_FIRST)))
