"""Loading the decide inputs: the answers TOML file and the eval report JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridgate.tco.answers import load_answers, load_eval_report, parse_answers, parse_eval_report

FULL = """
[data]
can_leave_network = true
pii = "episodic"

[quality]
bar = 0.85
open_weights_meet_bar = true
local_routes = ["local", "vllm"]

[volume]
daily_tokens = "20M"
shape = "bursty"
avg_context_tokens = 1200
blended_price = 6.5
selfhost_monthly = 9000

[ops]
gpu_oncall = true
version_pinning = false

[finetune]
need = "weights"
"""


def test_full_answers_file(tmp_path: Path) -> None:
    path = tmp_path / "answers.toml"
    path.write_text(FULL)
    answers = load_answers(path)
    assert answers.data.pii == "episodic"
    assert answers.quality.local_routes == ["local", "vllm"]
    assert answers.volume.daily_tokens == 20e6
    assert answers.volume.selfhost_monthly == 9000
    assert answers.ops.version_pinning is False
    assert answers.finetune.need == "weights"


def test_only_data_is_required_and_ops_default_to_unanswered() -> None:
    answers = parse_answers({"data": {"can_leave_network": True}})
    assert answers.ops.gpu_oncall is None and answers.quality.bar == 0.9
    with pytest.raises(ValueError, match="data: Field required"):
        parse_answers({})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"data": {"can_leave_network": True, "colour": "red"}}, "unknown key 'data.colour'"),
        ({"data": {"can_leave_network": True, "pii": "some"}}, "data.pii"),
        ({"data": {"can_leave_network": True}, "volume": {"daily_tokens": "-5M"}}, "negative"),
        ({"data": {"can_leave_network": True}, "volume": {"daily_tokens": -5}}, "volume.daily_tokens"),
        ({"data": {"can_leave_network": True}, "quality": {"bar": 1.5}}, "quality.bar"),
    ],
)
def test_bad_answers_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_answers(data, "answers.toml")


def test_answers_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_answers(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_answers(bad)


def test_eval_report_pass_rates(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    report = {"routes": {"local": {"pass": 7, "soft": 1, "fail": 2, "cost_usd": 0.0}, "openai": {"pass": 10}}}
    path.write_text(json.dumps(report))
    scores = load_eval_report(path)
    assert scores["local"].pass_rate == 0.7  # soft passes don't count as passes
    assert scores["openai"].pass_rate == 1.0
    assert parse_eval_report({"routes": {"empty": {}}})["empty"].pass_rate is None


@pytest.mark.parametrize(
    "data", [[], {"route": {}}, {"routes": {"local": {"pass": "many"}}}, {"routes": {"local": {"fail": -1}}}]
)
def test_malformed_eval_reports_are_refused(data: object) -> None:
    with pytest.raises(ValueError, match="eval report"):
        parse_eval_report(data)


def test_eval_report_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_eval_report(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_eval_report(bad)
