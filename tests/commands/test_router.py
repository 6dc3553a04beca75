"""``hybridgate router train|eval|explain`` through typer's CliRunner, on synthetic outcome files.

The benchmark command is not run here: it needs RouteLLM's data, which tests must not depend on.
Its settings validation is checked with a folder that has no data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridgate.commands.router import app
from hybridgate_bench.router_command import bench_router
from tests.router.synthetic import rows, write_csv

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cli")
    data = write_csv(folder / "train.csv", rows(300, seed=4))
    out = folder / "router.json"
    result = runner.invoke(app, ["train", str(data), "--out", str(out), "--target-quality", "0.9", "--json"])
    assert result.exit_code == 0, result.output
    return data, out


def test_train_writes_a_calibrated_router(trained: tuple[Path, Path]) -> None:
    data, out = trained
    saved = json.loads(out.read_text())
    assert saved["format"] == "hybridgate-router" and saved["version"] == 1
    assert saved["calibration"]["target"] == {"kind": "quality", "value": 0.9}
    assert len(saved["training"]["sha256"]) == 64 and saved["training"]["file"] == data.name


def test_eval_prints_the_named_fields(trained: tuple[Path, Path], tmp_path: Path) -> None:
    test_data = write_csv(tmp_path / "test.csv", rows(200, seed=8))
    result = runner.invoke(app, ["eval", str(test_data), "--router", str(trained[1]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("strong_share_at_95", "apgr", "cpt50", "cpt80", "decision_p50_ms", "decision_p99_ms"):
        assert isinstance(report[key], float)
    assert report["cost_usd_at_95"] < report["cost_usd_all_strong"]


def test_explain_shows_probability_threshold_and_features(trained: tuple[Path, Path]) -> None:
    prompt = "A train travels 60 km at 30 km/h and then 90 km at 45 km/h. What is its average speed?"
    result = runner.invoke(app, ["explain", prompt, "--router", str(trained[1]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["tier"] == "strong" and report["gain"] >= report["threshold"]
    assert 0 <= report["p_cheap_ok"] <= 1 and report["top_features"]


def test_bad_data_exits_2_naming_file_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,a,b\nhi,true,perhaps\n")
    result = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 2
    assert "bad.csv: column 'b' row 1: 'perhaps'" in result.output
    assert not (tmp_path / "r.json").exists()


def test_targets_are_exclusive(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", rows(20))
    result = runner.invoke(app, ["train", str(data), "--target-quality", "0.9", "--max-strong-share", "0.3"])
    assert result.exit_code == 2 and "not both" in result.output


def test_eval_with_a_bad_router_file(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", rows(20))
    (tmp_path / "r.json").write_text('{"format": "hybridgate-router", "version": 7}')
    result = runner.invoke(app, ["eval", str(data), "--router", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "field 'version' is 7" in result.output


def test_bench_names_missing_data_and_unknown_settings(tmp_path: Path) -> None:
    import typer

    bench = typer.Typer()
    bench.command()(bench_router)
    missing = runner.invoke(bench, ["--data", str(tmp_path)])
    assert missing.exit_code == 2 and "no mmlu_*.csv files" in missing.output
    unknown = runner.invoke(bench, ["--data", str(tmp_path), "--settings", "mmlu,hellaswag"])
    assert unknown.exit_code == 2 and "unknown setting(s) hellaswag" in unknown.output
