"""``hybridgate eval --routes local --json`` on the real embedded SmolLM2 model (3 short cases).

No stand-in here: the default config's embedded backend runs the packaged GGUF through llama.cpp,
exactly as on a fresh machine. SmolLM2-135M is weak, so only what holds by construction is
asserted: the grammar-constrained JSON case passes, and every case is graded, timed and free.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.evals.commands import cli
from tests.evals.conftest import write

GOLDEN = """
[defaults]
max_tokens = 12
[[cases]]
id = "capital"
tags = ["chat"]
prompt = "What is the capital of France? One word."
expect = { grader = "contains", value = "Paris" }
[[cases]]
id = "json"
tags = ["extraction"]
prompt = "Give the person's name as JSON: 'Maria moved to Madrid.'"
response_format = "json_schema"
max_tokens = 24
[cases.expect]
grader = "json_schema"
schema = { type = "object", properties = { name = { type = "string" } }, required = ["name"] }
[[cases]]
id = "sum"
tags = ["arithmetic"]
prompt = "What is 2 + 2? Number only."
max_tokens = 6
expect = { grader = "numeric", value = 4 }
"""


def test_eval_on_the_embedded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default config keeps its ledger in the working directory
    golden = write(tmp_path / "golden.toml", GOLDEN)
    result = CliRunner().invoke(cli(), ["eval", str(golden), "--routes", "local", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    local = report["routes"]["local"]
    assert local["pass"] + local["soft"] + local["fail"] == 3 and local["errors"] == 0
    assert local["cost_usd"] == 0.0 and local["completion_tokens"] > 0
    assert 0 < local["latency_p50_ms"] <= local["latency_p95_ms"]
    cases = {c["case_id"]: c for c in report["cases"]}
    assert cases["json"]["verdict"] == "pass", cases["json"]
    assert all(
        c["backend"] == "local" and c["model"].startswith("SmolLM2") and c["answer"] for c in cases.values()
    )
    assert (tmp_path / "eval-report" / "report.html").exists()
    assert (tmp_path / "hybridgate.db").exists()
