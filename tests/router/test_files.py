"""Outcome files and router files: what is accepted, and errors that name the file and column."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hybridgate.embedder import WordLlamaEmbedder
from hybridgate.errors import DataFileError, RouterFileError
from hybridgate.router.artifact import RouterArtifact
from hybridgate.router.learned import LearnedRouter
from hybridgate.training.dataset import load_outcomes
from tests.router.synthetic import rows, write_csv, write_jsonl


def test_csv_and_jsonl_read_the_same(tmp_path: Path) -> None:
    data = rows(20, seed=2)
    a = load_outcomes(write_csv(tmp_path / "d.csv", data))
    b = load_outcomes(write_jsonl(tmp_path / "d.jsonl", data), weak="small", strong="big")
    assert a.prompts == b.prompts
    np.testing.assert_array_equal(a.weak, b.weak)
    assert a.strong_cost is not None and b.strong_cost is not None
    np.testing.assert_array_equal(a.strong_cost, b.strong_cost)


def test_cheaper_model_is_the_weak_one_and_options_override(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", rows(5), ["prompt", "big", "small", "cost_big", "cost_small"])
    assert (load_outcomes(path).weak_name, load_outcomes(path).strong_name) == ("small", "big")
    chosen = load_outcomes(path, weak="big", strong="small")
    assert (chosen.weak_name, chosen.strong_name) == ("big", "small")
    no_costs = write_csv(tmp_path / "n.csv", rows(5), ["prompt", "big", "small"])
    assert load_outcomes(no_costs).weak_name == "big"  # no costs: first column is the cheap tier


def test_scores_in_unit_interval_are_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"prompt": "a", "m1": 0.25, "m2": 1}\n{"prompt": "b", "m1": "0.5", "m2": "true"}\n')
    out = load_outcomes(path)
    assert out.weak.tolist() == [0.25, 0.5] and out.strong.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no rows"),
        ("prompt,a\n", "no rows"),
        ("text,a,b\nhi,true,false\n", "no 'prompt' column"),
        ("prompt,a\nhi,true\n", "need two outcome columns"),
        ("prompt,a,b\nhi,true,maybe\n", "column 'b' row 1: 'maybe' is not true/false"),
        ("prompt,a,b\nhi,true,1.5\n", "column 'b' row 1: 1.5 is outside [0, 1]"),
        ("prompt,a,b\nhi,true,false\nho,,true\n", "column 'a' row 2: missing value"),
        ("prompt,a,b,cost_a,cost_b\nhi,true,false,x,1\n", "column 'cost_a' row 1"),
    ],
)
def test_bad_data_names_file_and_column(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataFileError, match=re.escape("bad.csv")) as info:
        load_outcomes(path)
    assert message in info.value.message


def test_extra_columns_need_named_models(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "k.jsonl", rows(5))  # has a text column "kind"
    with pytest.raises(
        DataFileError, match=re.escape("column 'kind' row 1: 'easy' is not true/false")
    ) as info:
        load_outcomes(path)
    assert "--weak and --strong" in info.value.message
    assert load_outcomes(path, weak="small", strong="big").weak_name == "small"


def test_unknown_columns_and_files(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", rows(3))
    with pytest.raises(DataFileError, match=re.escape("no column 'gpt-5'; columns: prompt, small, big")):
        load_outcomes(path, strong="gpt-5")
    with pytest.raises(DataFileError, match=re.escape("missing.csv: no such file")):
        load_outcomes(tmp_path / "missing.csv")
    bad_json = tmp_path / "b.jsonl"
    bad_json.write_text('{"prompt": "a"}\n[1]\n')
    with pytest.raises(DataFileError, match=re.escape("b.jsonl: line 2 is not a JSON object")):
        load_outcomes(bad_json)


def _broken(router_file: Path, tmp_path: Path, change: dict[str, object]) -> Path:
    data = json.loads(router_file.read_text())
    for dotted, value in change.items():
        target = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            target = target[key]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "other"}, "field 'format'"),
        ({"version": 99}, "field 'version' is 99"),
        ({"threshold": None}, "field 'threshold' is missing"),
        ({"model.weak": None}, "field 'model' is missing"),
        ({"model.idf": "AAAAAA=="}, "field 'model.idf' has 1 values"),
        ({"model.weak.dense": "AAAAAA=="}, "field 'model.weak.dense' has 1 values"),
    ],
)
def test_bad_router_file_names_the_field(
    router_file: Path, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(RouterFileError, match=re.escape("broken.json")) as info:
        RouterArtifact.load(_broken(router_file, tmp_path, change))
    assert message in info.value.message


def test_router_file_not_json_or_missing(tmp_path: Path, embedder: WordLlamaEmbedder) -> None:
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(RouterFileError, match=re.escape("x.json: not JSON")):
        LearnedRouter.load(tmp_path / "x.json", embedder)
    with pytest.raises(
        RouterFileError, match=re.escape("gone.json not found; `hybridgate router train` writes one")
    ):
        LearnedRouter.load(tmp_path / "gone.json", embedder)
