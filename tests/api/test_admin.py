"""``POST /admin/router/reload`` over real HTTP: admin keys only, answers with what it loaded.

The upstream is an OpenAI-compatible stand-in (tests/standins), never called here; the router
file is trained on synthetic outcome data (tests/router/synthetic.py) with the real embedding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hybridgate.app import create_app
from hybridgate.auth import SqliteKeyStore
from hybridgate.config import GatewayConfig
from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.router.features import FeatureSpec, Featurizer
from hybridgate.training.calibration import Target
from hybridgate.training.dataset import load_outcomes
from hybridgate.training.train import TrainingOptions, train_router
from tests.router.synthetic import rows, write_csv
from tests.servers import serve_in_thread

PEPPER = "test-pepper-0123456789"


@dataclass
class AdminRig:
    url: str
    keys: SqliteKeyStore
    router_file: Path


def train(folder: Path) -> Path:
    data = load_outcomes(write_csv(folder / "outcomes.csv", rows(200, seed=5)))
    featurizer = Featurizer(FeatureSpec(token_buckets=1 << 16), WordLlamaEmbedder())
    options = TrainingOptions(target=Target("quality", 0.95), bootstrap=50)
    path = folder / "router.json"
    train_router(data, featurizer, options, {"file": "outcomes.csv"}).save(path)
    return path


def config(folder: Path, router_file: Path | None) -> GatewayConfig:
    auto: dict[str, object] = {"try": ["up"]}
    if router_file is not None:
        auto |= {"router": "learned", "router_file": str(router_file)}
    return GatewayConfig.model_validate(
        {
            "environment": "prod",
            "ledger": {"path": str(folder / "gw.db")},
            "auth": {"enabled": True, "keys_path": str(folder / "keys.db")},
            "backends": {"up": {"type": "openai_compat", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
            "routes": {"auto": auto},
        }
    )


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminRig]:
    folder = tmp_path_factory.mktemp("admin")
    router_file = train(folder)
    app = create_app(config(folder, router_file), env={"HYBRIDGATE_KEY_PEPPER": PEPPER})
    with serve_in_thread(app) as url:
        yield AdminRig(url, app.state.gateway.access.keys, router_file)


def reload(rig: AdminRig, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{rig.url}/admin/router/reload", headers=headers, timeout=30)


def test_reload_needs_an_admin_key(rig: AdminRig) -> None:
    user_key, _ = rig.keys.create(environment="prod", name="app")
    assert reload(rig, None).status_code == 401
    refused = reload(rig, user_key)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"


def test_reload_answers_with_the_file_it_loaded(rig: AdminRig) -> None:
    admin_key, _ = rig.keys.create(environment="prod", name="ops", admin=True)
    data = json.loads(rig.router_file.read_text())
    staged = rig.router_file.with_suffix(".new")
    staged.write_text(json.dumps({**data, "threshold": 0.5}))
    staged.replace(rig.router_file)
    answer = reload(rig, admin_key)
    assert answer.status_code == 200, answer.text
    loaded = answer.json()["routers"]["auto"]
    assert loaded["sha256"] == hashlib.sha256(rig.router_file.read_bytes()).hexdigest()
    assert loaded["threshold"] == 0.5 and loaded["file"] == str(rig.router_file)
    assert httpx.get(f"{rig.url}/healthz").json()["router_files"]["auto"] == loaded


def test_without_a_learned_route_there_is_nothing_to_reload(tmp_path: Path) -> None:
    app = create_app(config(tmp_path, None), env={"HYBRIDGATE_KEY_PEPPER": PEPPER})
    admin_key, _ = app.state.gateway.access.keys.create(environment="prod", name="ops", admin=True)
    with serve_in_thread(app) as url:
        answer = httpx.post(f"{url}/admin/router/reload", headers={"authorization": f"Bearer {admin_key}"})
        assert httpx.get(f"{url}/healthz").json()["router_files"] == {}
    assert answer.status_code == 400
    assert 'no route has router = "learned"' in answer.json()["error"]["message"]
