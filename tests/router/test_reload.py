"""Hot reload of router files: all new files swapped in together, or none and the old ones kept.

Router files are trained here on synthetic outcome data (tests/router/conftest.py) and written
with different thresholds, so which file a router runs shows in its decisions. The WordLlama
embedding is the real one. The polling test runs the real background task on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from hybridgate.config import GatewayConfig
from hybridgate.errors import RouterReloadError
from hybridgate.router import RuleRouter
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.reload import RouterReloader
from hybridgate.router.signal import RouterReloads
from hybridgate.types import ChatRequest, RequestContext

HARD = "Dana buys 14 boxes of 25 pencils and gives away 9. How many pencils are left after 6 days?"


def write(artifact: RouterArtifact, path: Path, threshold: float) -> Path:
    dataclasses.replace(artifact, threshold=threshold).save(path)
    return path


def config(files: dict[str, Path]) -> GatewayConfig:
    routes = {
        name: {"try": ["cheap", "strong"], "router": "learned", "router_file": str(path)}
        for name, path in files.items()
    }
    backend = {"type": "openai_compat", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    return GatewayConfig.model_validate(
        {"backends": {"cheap": backend, "strong": backend}, "routes": routes, "default_route": "auto"}
    )


def backends(router: RuleRouter, route: str = "auto") -> tuple[str, ...]:
    request = ChatRequest.model_validate({"model": route, "messages": [{"role": "user", "content": HARD}]})
    return router.decide(request, RequestContext(request_id="t")).backends


@pytest.fixture
def rig(artifact: RouterArtifact, tmp_path: Path) -> tuple[RuleRouter, RouterReloader, Path]:
    path = write(artifact, tmp_path / "router.json", threshold=0.3)
    router = RuleRouter(config({"auto": path}))
    assert backends(router) == ("strong",)  # the hard prompt's gain is well above 0.3
    return router, RouterReloader(config({"auto": path}), router), path


def test_a_good_new_file_is_swapped_in_and_reuses_the_embedding(
    rig: tuple[RuleRouter, RouterReloader, Path], artifact: RouterArtifact
) -> None:
    router, reloader, path = rig
    embedding = router.learned["auto"].featurizer.embedder
    old_sha = reloader.versions()["auto"]["sha256"]
    write(artifact, path, threshold=0.99)
    versions = reloader.reload()
    assert versions["auto"]["threshold"] == 0.99 and versions["auto"]["file"] == str(path)
    assert versions["auto"]["sha256"] != old_sha and versions == reloader.versions()
    assert backends(router) == ("cheap", "strong")  # now below the threshold: cheap tier first
    assert router.learned["auto"].featurizer.embedder is embedding


def broken_files(artifact: RouterArtifact) -> list[tuple[str, str]]:
    good = json.dumps(dataclasses.replace(artifact, threshold=0.99).to_json())
    other_buckets = json.loads(good)
    other_buckets["features"]["token_buckets"] = 1 << 10
    other_embedding = json.loads(good)
    other_embedding["features"]["embedder"] = "some/other-embedding"
    no_threshold = json.loads(good)
    del no_threshold["threshold"]
    return [
        (good[: len(good) // 2], "not JSON"),  # half-written
        (json.dumps(other_buckets), "field 'model.idf' has"),
        (json.dumps(other_embedding), "trained with embedder 'some/other-embedding'"),
        (json.dumps(no_threshold), "field 'threshold' is missing"),
        (json.dumps({**json.loads(good), "calibration": 5}), "TypeError"),
        ("", "not JSON"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_broken_file_is_refused_and_the_old_router_keeps_serving(
    rig: tuple[RuleRouter, RouterReloader, Path], artifact: RouterArtifact, case: int
) -> None:
    router, reloader, path = rig
    content, problem = broken_files(artifact)[case]
    before, versions = router.learned, reloader.versions()
    path.write_text(content)
    with pytest.raises(RouterReloadError) as info:
        reloader.reload()
    assert "route 'auto'" in info.value.message and str(path) in info.value.message
    assert problem in info.value.message and info.value.status_code == 422
    assert router.learned is before and reloader.versions() == versions
    assert backends(router) == ("strong",)


def test_a_missing_file_is_refused(rig: tuple[RuleRouter, RouterReloader, Path]) -> None:
    router, reloader, path = rig
    path.unlink()
    with pytest.raises(RouterReloadError, match="not found"):
        reloader.reload()
    assert backends(router) == ("strong",)


def test_all_or_nothing_across_routes(artifact: RouterArtifact, tmp_path: Path) -> None:
    files = {
        "auto": write(artifact, tmp_path / "a.json", threshold=0.3),
        "other": write(artifact, tmp_path / "b.json", threshold=0.3),
    }
    router = RuleRouter(config(files))
    reloader = RouterReloader(config(files), router)
    write(artifact, files["auto"], threshold=0.99)  # good
    files["other"].write_text("{")  # bad
    with pytest.raises(RouterReloadError, match=r"route 'other'.*b\.json"):
        reloader.reload()
    assert backends(router, "auto") == ("strong",)  # the good file was not swapped in alone


def test_reload_if_changed_reloads_once_and_reports_a_refusal_once(
    rig: tuple[RuleRouter, RouterReloader, Path], artifact: RouterArtifact
) -> None:
    router, reloader, path = rig
    assert reloader.reload_if_changed() is None  # same bytes as loaded
    good = json.dumps(dataclasses.replace(artifact, threshold=0.99).to_json())
    path.write_text(good[:1000])  # a writer halfway through
    with pytest.raises(RouterReloadError):
        reloader.reload_if_changed()
    assert reloader.reload_if_changed() is None  # the same refused bytes: not tried again
    path.write_text(good)  # the writer finished
    versions = reloader.reload_if_changed()
    assert versions is not None and versions["auto"]["threshold"] == 0.99
    assert backends(router) == ("cheap", "strong")
    assert reloader.reload_if_changed() is None


async def test_polling_task_picks_up_a_replaced_file(
    rig: tuple[RuleRouter, RouterReloader, Path], artifact: RouterArtifact
) -> None:
    router, reloader, path = rig
    reloads = RouterReloads(reloader, None, "", interval_s=0.05)
    await reloads.start()
    try:
        path.write_text("{ half")  # refused (logged), the task keeps running
        await asyncio.sleep(0.2)
        assert backends(router) == ("strong",)
        staged = write(artifact, path.with_suffix(".new"), threshold=0.99)
        staged.replace(path)  # the atomic way to publish a new file
        for _ in range(200):
            if reloads.versions()["auto"]["threshold"] == 0.99:
                break
            await asyncio.sleep(0.02)
        assert backends(router) == ("cheap", "strong")
    finally:
        await reloads.aclose()


async def test_polling_survives_a_reload_that_raises_an_unexpected_error(
    rig: tuple[RuleRouter, RouterReloader, Path],
    artifact: RouterArtifact,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router, reloader, path = rig
    real = reloader.reload_if_changed
    failures: list[int] = []

    def flaky() -> object:  # e.g. the embedding failing to initialise: not a RouterReloadError
        if len(failures) < 2:
            failures.append(1)
            raise RuntimeError("embedder init failed")
        return real()

    monkeypatch.setattr(reloader, "reload_if_changed", flaky)
    reloads = RouterReloads(reloader, None, "", interval_s=0.05)
    await reloads.start()
    try:
        write(artifact, path.with_suffix(".new"), threshold=0.99).replace(path)
        for _ in range(300):
            if reloads.versions()["auto"]["threshold"] == 0.99:
                break
            await asyncio.sleep(0.02)
        assert len(failures) == 2  # it failed twice, backed off, and the third poll reloaded
        assert backends(router) == ("cheap", "strong")
    finally:
        await reloads.aclose()
    logged = [r for r in caplog.records if r.exc_info and "unexpectedly" in r.getMessage()]
    assert len(logged) == 2 and "embedder init failed" in str(logged[0].exc_info[1])  # type: ignore[index]
