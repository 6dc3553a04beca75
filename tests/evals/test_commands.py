"""``hybridgate eval`` and ``hybridgate replay`` end to end, against a stand-in OpenAI upstream.

Stand-in: tests/standins/openai_upstream.py (not OpenAI); unscripted, it echoes the last user
message, which is deterministic and so lets two policies be compared answer for answer.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridgate.config import load_config
from hybridgate.gateway import build_gateway
from hybridgate.ledger.store import SqliteLedger
from hybridgate.types import ChatRequest, Message, RequestContext
from tests.evals.commands import cli, config_toml
from tests.evals.conftest import write
from tests.standins.openai_upstream import OpenAIStandIn, Reply

GOLDEN = """
[defaults]
judge_route = "nowhere"
[[cases]]
id = "echo"
tags = ["chat"]
prompt = "hello"
expect = { grader = "contains", value = "echo: hello" }
[[cases]]
id = "sum"
tags = ["arithmetic"]
prompt = "12 + 30?"
expect = { grader = "numeric", value = 42 }
"""


@pytest.fixture
def files(standin: OpenAIStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("STANDIN_KEY", "sk-standin")
    ledger = tmp_path / "ledger.db"
    return {
        "config": write(
            tmp_path / "gw.toml", config_toml(standin.base_url, ledger, log_prompts=True, privacy="allow")
        ),
        "candidate": write(tmp_path / "cand.toml", config_toml(standin.base_url, ledger, auto='["cloud"]')),
        "golden": write(tmp_path / "golden.toml", GOLDEN),
        "ledger": ledger,
    }


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_json_reports_and_outcomes(files: dict[str, Path], tmp_path: Path) -> None:
    out, outcomes = tmp_path / "out", tmp_path / "outcomes.csv"
    code, stdout, _ = invoke(
        "eval", str(files["golden"]), "--routes", "cheap,cloud", "--config", str(files["config"]),
        "--json", "--out", str(out), "--outcomes", str(outcomes),
    )  # fmt: skip
    assert code == 0
    report = json.loads(stdout)
    for route in ("cheap", "cloud"):
        summary = report["routes"][route]
        assert {"pass", "soft", "fail", "cost_usd", "latency_p50_ms", "latency_p95_ms"} <= summary.keys()
        assert (summary["pass"], summary["fail"]) == (1, 1)
        assert summary["cost_usd"] > 0
    assert json.loads((out / "report.json").read_text()) == report
    assert "| cheap | 1 | 0 | 1 | 50% |" in (out / "report.md").read_text()
    assert "<svg" in (out / "report.html").read_text()
    rows = list(csv.DictReader(outcomes.read_text().splitlines()))
    assert [(r["prompt"], r["cheap"], r["cloud"]) for r in rows] == [
        ("hello", "1", "1"),
        ("12 + 30?", "0", "0"),
    ]


def test_eval_prints_tables_without_json(files: dict[str, Path], tmp_path: Path) -> None:
    args = ["eval", str(files["golden"]), "--routes", "cheap", "-c", str(files["config"])]
    code, stdout, stderr = invoke(*args, "--out", str(tmp_path / "o"))
    assert code == 0, stderr
    assert "| cheap | 1 | 0 | 1 | 50% |" in stdout
    assert "| arithmetic | 0/0/1 |" in stdout
    assert f"report: {tmp_path / 'o' / 'report.html'}" in stdout


def test_eval_refuses_unusable_input(files: dict[str, Path], tmp_path: Path) -> None:
    code, _, stderr = invoke("eval", str(files["golden"]), "--routes", "nope", "-c", str(files["config"]))
    assert code == 2 and "no route 'nope'; configured routes: cloud, cheap, auto" in stderr
    bad = write(
        tmp_path / "bad.toml", '[[cases]]\nid = "x"\nprompt = "p"\nexpect = { grader = "exact", val = 1 }\n'
    )
    code, _, stderr = invoke("eval", str(bad), "-c", str(files["config"]))
    assert code == 2 and f"{bad}: case 'x' (cases[0]): expect.val: unknown field" in stderr


def test_a_missing_judge_route_warns_and_fails_only_its_case(files: dict[str, Path], tmp_path: Path) -> None:
    golden = write(
        tmp_path / "j.toml",
        GOLDEN + '[[cases]]\nid = "j"\nprompt = "hi"\nexpect = { grader = "judge", rubric = "kind" }\n',
    )
    args = ["eval", str(golden), "--routes", "cheap", "-c", str(files["config"]), "--json"]
    code, stdout, stderr = invoke(*args, "--out", str(tmp_path / "o"))
    assert code == 0
    assert "warning: case 'j': judge route 'nowhere' is not configured; it will fail" in stderr
    judged = json.loads(stdout)["cases"][-1]
    assert judged["verdict"] == "fail" and "no route 'nowhere'" in judged["reason"]
    assert judged["answer"] == "echo: hi"


def test_replay_golden_compares_policies(files: dict[str, Path], standin: OpenAIStandIn) -> None:
    standin.script(
        Reply(content="echo: hello"), Reply(content="41"), Reply(content="echo: hello"), Reply(content="42")
    )
    code, stdout, stderr = invoke("replay", str(files["golden"]), "--policy", str(files["candidate"]),
                                  "-c", str(files["config"]), "--concurrency", "1", "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    auto = report["routes"]["auto"]
    assert auto["current"]["backends"] == {"cheap": 2} and auto["candidate"]["backends"] == {"cloud": 2}
    assert auto["delta"]["pass_rate"] == 0.5
    assert report["changed"][0] | {"candidate_reason": ""} == {
        "route": "auto", "case_id": "sum", "current": "fail", "candidate": "pass",
        "current_answer": "41", "candidate_answer": "42", "candidate_reason": "",
    }  # fmt: skip
    code, text, _ = invoke(
        "replay", str(files["golden"]), "--policy", str(files["candidate"]), "-c", str(files["config"])
    )
    assert "route 'auto'" in text and "candidate" in text and "delta" in text


async def log_traffic(config_path: Path, prompts: list[str]) -> None:
    config = load_config(config_path)
    gateway = build_gateway(config, {"STANDIN_KEY": "sk-standin"})
    await gateway.start()
    for prompt in prompts:
        ctx = RequestContext(
            request_id=prompt, feature="support", started_at=time.time(), started_perf=time.perf_counter()
        )
        await gateway.pipeline.complete(
            ChatRequest(model="auto", messages=[Message(role="user", content=prompt)]), ctx
        )
    await gateway.aclose()


def test_replay_from_ledger_is_honest_about_grading(files: dict[str, Path]) -> None:
    code, _, stderr = invoke(
        "replay", "--from-ledger", "--policy", str(files["candidate"]), "-c", str(files["config"])
    )
    assert code == 2 and "no ledger at" in stderr
    asyncio.run(log_traffic(files["config"], ["first question", "second question"]))
    code, stdout, stderr = invoke("replay", "--from-ledger", "--policy", str(files["candidate"]),
                                  "-c", str(files["config"]), "--json")  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["prompts"] == 2 and report["graded"] is False
    assert "not graded" in report["note"]
    assert report["current"]["backends"] == {"cheap": 2} and report["candidate"]["backends"] == {"cloud": 2}
    assert report["agreement"] == {"compared": 2, "exact": 1.0, "mean_overlap": 1.0}
    assert report["recorded"]["cost_usd"] > 0
    code, text, _ = invoke(
        "replay", "--from-ledger", "--policy", str(files["candidate"]), "-c", str(files["config"])
    )
    assert "NOTE: Logged traffic has no expected answers" in text


def test_replay_needs_exactly_one_source(files: dict[str, Path]) -> None:
    code, _, stderr = invoke("replay", "--policy", str(files["candidate"]))
    assert code == 2 and "give a golden file or --from-ledger" in stderr
    code, _, stderr = invoke("replay", str(files["golden"]))
    assert code == 2 and "--policy" in stderr


def test_a_pin_mismatch_stops_the_run(tmp_path: Path) -> None:
    config = write(
        tmp_path / "pinned.toml",
        f'[ledger]\npath = "{tmp_path / "l.db"}"\n[backends.local]\ntype = "embedded"\npin = "{"0" * 64}"\n'
        '[routes.auto]\ntry = ["local"]\n',
    )
    golden = write(tmp_path / "g.toml", GOLDEN)
    code, stdout, stderr = invoke("eval", str(golden), "-c", str(config), "--out", str(tmp_path / "o"))
    assert code == 2 and stdout == ""
    assert "backend 'local': model file" in stderr and f"but the config pins {'0' * 64}" in stderr


def test_eval_and_replay_rows_are_their_own_traffic_classes(files: dict[str, Path], tmp_path: Path) -> None:
    asyncio.run(log_traffic(files["config"], ["live question"]))
    code, _, _ = invoke("eval", str(files["golden"]), "--routes", "cheap", "--config", str(files["config"]),
                        "--json", "--out", str(tmp_path / "out"))  # fmt: skip
    assert code == 0
    code, _, stderr = invoke("replay", "--from-ledger", "--policy", str(files["candidate"]),
                             "-c", str(files["config"]), "--json")  # fmt: skip
    assert code == 0, stderr
    ledger = SqliteLedger(str(files["ledger"]))
    classes = {r["traffic"]: r["requests"] for r in ledger.usage("traffic", traffic=None)}
    assert classes["live"] == 1 and classes["eval"] == 2 and classes["replay"] == 2
    assert sum(r["requests"] for r in ledger.usage("route")) == 1  # reports count live demand only
    # replay --from-ledger replays live traffic only, never an earlier eval or replay's prompts
    assert {r["traffic"] for r in ledger.recent(50) if r["feature"] == "replay"} == {"replay"}
