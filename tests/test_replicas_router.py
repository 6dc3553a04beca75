"""Two gateway replicas hot-reload a shared learned router file on one `hybridgate router reload`.

Two real ``python -m hybridgate serve`` processes (tests/gateway_process.py) share one
redis-server (tests/redis_server.py: Debian's binary on a loopback port) and one router file,
trained here on synthetic outcome data (tests/router/synthetic.py). The upstreams ``cheap`` and
``strong`` are OpenAI stand-ins from tests/standins (test servers, not OpenAI); clients are the
official ``openai`` SDK. Polling is off (``reload_interval_s = 0``), so a replica only changes
router file when told: by the CLI's Redis signal, or when it resubscribes after a Redis outage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from redis import Redis

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.features import FeatureSpec, Featurizer
from hybridgate.training.calibration import Target
from hybridgate.training.dataset import load_outcomes
from hybridgate.training.train import TrainingOptions, train_router
from tests.gateway_process import REPO, GatewayProcess, run_gateway
from tests.redis_server import RedisServer, running_redis
from tests.router.synthetic import rows, write_csv
from tests.standins.openai_upstream import run_openai_standin

HARD = "Dana buys 14 boxes of 25 pencils and gives away 9. How many pencils are left after 6 days?"
CHANNEL = "router-test:router-reload"


@dataclass
class Cluster:
    redis: RedisServer
    replicas: list[GatewayProcess]
    router_file: Path
    config: Path
    strict: bytes  # threshold 0.3: the hard prompt goes to the strong tier
    lenient: bytes  # threshold 0.99: everything tries the cheap tier first


def replica_config(cheap: str, strong: str, redis: str, router_file: Path, ledger: Path) -> str:
    backend = 'model = "gpt-4o-mini"\napi_key_env = "UP_KEY"\nprovider = "openai"'
    return f"""environment = "test"
[ledger]
path = "{ledger}"
flush_interval_s = 0.05
[redis]
url = "{redis}"
key_prefix = "router-test:"
timeout_s = 0.5
[router]
reload_interval_s = 0
[backends.cheap]
type = "openai_compat"
base_url = "{cheap}"
{backend}
[backends.strong]
type = "openai_compat"
base_url = "{strong}"
{backend}
[routes.auto]
try = ["cheap", "strong"]
router = "learned"
router_file = "{router_file}"
"""


def router_files(folder: Path) -> tuple[bytes, bytes]:
    data = load_outcomes(write_csv(folder / "outcomes.csv", rows(400, seed=11)))
    featurizer = Featurizer(FeatureSpec(token_buckets=1 << 16), WordLlamaEmbedder())
    options = TrainingOptions(target=Target("quality", 0.95), bootstrap=100)
    artifact = train_router(data, featurizer, options, {"file": "outcomes.csv"})
    versions = []
    for threshold in (0.3, 0.99):
        path = folder / f"router-{threshold}.json"
        dataclasses.replace(artifact, threshold=threshold).save(path)
        versions.append(path.read_bytes())
    return versions[0], versions[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("router-files")
    strict, lenient = router_files(folder)
    router_file = folder / "router.json"
    router_file.write_bytes(strict)
    with ExitStack() as stack:
        cheap = stack.enter_context(run_openai_standin(api_key="sk-up"))
        strong = stack.enter_context(run_openai_standin(api_key="sk-up"))
        redis = stack.enter_context(running_redis())
        replicas, workdirs = [], [tmp_path_factory.mktemp(f"replica-{name}") for name in "ab"]
        for workdir in workdirs:
            text = replica_config(cheap.base_url, strong.base_url, redis.url, router_file, workdir / "l.db")
            replicas.append(stack.enter_context(run_gateway(text, workdir)))
        config = workdirs[0] / "hybridgate.toml"  # what run_gateway wrote; the CLI reads the same file
        yield Cluster(redis, replicas, router_file, config, strict, lenient)


def replace(path: Path, content: bytes) -> None:
    """Publish a new router file the safe way: write beside it, then rename over it."""
    staged = path.with_suffix(".staged")
    staged.write_bytes(content)
    staged.replace(path)


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def running(replica: GatewayProcess) -> dict[str, Any]:
    files: dict[str, Any] = httpx.get(f"{replica.url}/healthz").json()["router_files"]
    return dict(files["auto"])


def backend_for_hard_prompt(replica: GatewayProcess) -> str:
    with openai.OpenAI(base_url=f"{replica.url}/v1", api_key="caller", max_retries=0) as oai:
        raw = oai.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": HARD}]
        )
    assert raw.parse().choices[0].message.content == f"echo: {HARD}"
    assert raw.headers["x-hybridgate-rule"] == "learned"
    return raw.headers["x-hybridgate-backend"]


def reload_cli(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "hybridgate", "router", "reload", "--config", str(config), "--json"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def wait_until_running(cluster: Cluster, content: bytes) -> None:
    deadline = time.monotonic() + 20
    while any(running(r)["sha256"] != sha(content) for r in cluster.replicas):
        assert time.monotonic() < deadline, [running(r) for r in cluster.replicas]
        time.sleep(0.05)


def subscribers(redis: RedisServer) -> int:
    with Redis.from_url(redis.url) as client:
        counts = client.pubsub_numsub(CHANNEL)
    return int(counts[0][1])


def test_one_signal_reloads_both_replicas(cluster: Cluster) -> None:
    replace(cluster.router_file, cluster.strict)
    assert reload_cli(cluster.config).returncode == 0
    wait_until_running(cluster, cluster.strict)
    assert [backend_for_hard_prompt(r) for r in cluster.replicas] == ["strong", "strong"]

    replace(cluster.router_file, cluster.lenient)
    time.sleep(0.5)  # no polling: without a signal nothing changes
    assert [running(r)["sha256"] for r in cluster.replicas] == [sha(cluster.strict)] * 2
    done = reload_cli(cluster.config)
    assert done.returncode == 0, done.stderr
    assert '"replicas_signalled": 2' in done.stdout and sha(cluster.lenient) in done.stdout
    wait_until_running(cluster, cluster.lenient)
    assert [running(r)["threshold"] for r in cluster.replicas] == [0.99, 0.99]
    assert [backend_for_hard_prompt(r) for r in cluster.replicas] == ["cheap", "cheap"]


def test_a_corrupt_file_is_refused_and_the_replicas_keep_their_router(cluster: Cluster) -> None:
    replace(cluster.router_file, cluster.lenient)
    assert reload_cli(cluster.config).returncode == 0
    wait_until_running(cluster, cluster.lenient)
    replace(cluster.router_file, cluster.strict[: len(cluster.strict) // 2])  # truncated

    refused = reload_cli(cluster.config)  # checks the file itself first and does not signal
    assert refused.returncode == 2 and "not JSON" in refused.stderr and refused.stdout == ""
    a = cluster.replicas[0]
    answer = httpx.post(f"{a.url}/admin/router/reload")
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["type"] == "config_error" and str(cluster.router_file) in error["message"]
    assert "previous router files keep serving" in error["message"]
    assert [running(r)["sha256"] for r in cluster.replicas] == [sha(cluster.lenient)] * 2
    assert [backend_for_hard_prompt(r) for r in cluster.replicas] == ["cheap", "cheap"]

    replace(cluster.router_file, cluster.strict)
    answer = httpx.post(f"{a.url}/admin/router/reload")  # one replica, by hand
    assert answer.status_code == 200
    assert answer.json()["routers"]["auto"]["sha256"] == sha(cluster.strict) == running(a)["sha256"]
    assert running(cluster.replicas[1])["sha256"] == sha(cluster.lenient)  # the other one was not told


def test_replicas_resubscribe_after_a_redis_restart_and_catch_up(cluster: Cluster) -> None:
    replace(cluster.router_file, cluster.strict)
    assert reload_cli(cluster.config).returncode == 0
    wait_until_running(cluster, cluster.strict)
    cluster.redis.stop()
    replace(cluster.router_file, cluster.lenient)  # changed while no signal can be sent
    assert backend_for_hard_prompt(cluster.replicas[0]) == "strong"  # still serving meanwhile
    cluster.redis.start()
    wait_until_running(cluster, cluster.lenient)  # caught up on resubscribing, without a signal
    deadline = time.monotonic() + 20
    while subscribers(cluster.redis) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    replace(cluster.router_file, cluster.strict)
    done = reload_cli(cluster.config)
    assert '"replicas_signalled": 2' in done.stdout, done.stderr
    wait_until_running(cluster, cluster.strict)
    assert [backend_for_hard_prompt(r) for r in cluster.replicas] == ["strong", "strong"]
