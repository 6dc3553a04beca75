"""``hybridgate bench pii`` on a tiny synthetic data set written to a temporary directory.

Every value is made up: 4111 1111 1111 1111 is the standard Luhn-valid test number and the
addresses use example domains. The "NER" case uses a stand-in spaCy pipeline (blank English
plus an entity ruler, saved to a directory), not a trained model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import spacy
import typer
from typer.testing import CliRunner

from hybridgate_bench.pii import bench_pii, percentile, prompts
from hybridgate_bench.pii_command import pii

runner = CliRunner()


def record(text: str, *spans: tuple[str, str]) -> dict[str, Any]:
    """A data-set record whose gold spans are located by their value in ``text``."""
    gold = []
    for entity_type, value in spans:
        start = text.index(value)
        gold.append(
            {
                "entity_type": entity_type,
                "entity_value": value,
                "start_position": start,
                "end_position": start + len(value),
            }
        )
    return {"full_text": text, "spans": gold}


RECORDS = [
    record("Mail ada.lovelace@example.com today", ("EMAIL_ADDRESS", "ada.lovelace@example.com")),
    # The detector cannot read an obfuscated address: nothing keeps this text local.
    record("write to ada at example dot com", ("EMAIL_ADDRESS", "ada at example dot com")),
    record("Ada Lovelace wrote the first program", ("PERSON", "Ada Lovelace")),
    record("Card 4111 1111 1111 1111 was declined", ("CREDIT_CARD", "4111 1111 1111 1111")),
    # An email the gold labels miss: the detector's finding is a false positive here.
    record("cc bob@example.org on it"),
    record("Nothing personal in this one"),
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(RECORDS), encoding="utf-8")
    return path


def test_report_counts_leaks_and_scores_per_type(data: Path) -> None:
    report = bench_pii(data, rounds=2, tokens=5, ner_model=None)
    assert report["texts"] == 6
    assert report["coverage"]["mode"] == "patterns"
    assert report["leaks"] == 1  # the obfuscated email
    assert report["leak_indices"] == [1]
    assert report["leaks_any"] == 2  # ... and the name, which only NER could see
    assert report["recall"]["EMAIL_ADDRESS"] == 0.5
    assert report["precision"]["EMAIL_ADDRESS"] == 0.5
    assert report["recall"]["CREDIT_CARD"] == report["precision"]["CREDIT_CARD"] == 1.0
    assert report["recall"]["PERSON"] == 0.0
    assert "PERSON" not in report["precision"]  # nothing predicted: no precision to give
    assert report["support"] == {"CREDIT_CARD": 1, "EMAIL_ADDRESS": 2, "PERSON": 1}
    assert report["false_positives"] == {"EMAIL_ADDRESS": 1}


def test_latency_fields(data: Path) -> None:
    report = bench_pii(data, rounds=3, tokens=5, ner_model=None)
    assert 0 < report["latency_p50_ms"] <= report["latency_p99_ms"] <= report["latency_max_ms"]
    # 5 tokens = 20 characters: every record is long enough to be a prompt of its own.
    assert report["latency_prompts"] == 6
    assert report["latency_samples"] == 18


def test_ner_pipeline_keeps_names_local(data: Path, tmp_path: Path) -> None:
    nlp = spacy.blank("en")
    ruler: Any = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": "Ada Lovelace"}])
    nlp.to_disk(tmp_path / "ner")
    report = bench_pii(data, rounds=1, tokens=5, ner_model=str(tmp_path / "ner"))
    assert report["coverage"]["mode"] == "patterns+ner"
    assert report["recall"]["PERSON"] == 1.0
    assert (report["leaks"], report["leaks_any"]) == (1, 1)


def test_prompts_join_records_up_to_the_size() -> None:
    texts = [{"full_text": "x" * 30, "spans": []} for _ in range(5)]
    assert [len(p) for p in prompts(texts, 60)] == [61, 61]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(pii)
    return app


def test_cli_prints_json_with_the_documented_fields(data: Path) -> None:
    result = runner.invoke(cli(), ["--data", str(data), "--json", "--ner-model", "none", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    required = {"texts", "leaks", "leaks_any", "recall", "precision", "latency_p50_ms", "latency_p99_ms"}
    assert required <= set(report)
    assert report["leaks"] == 1


def test_cli_summary_names_the_leaks(data: Path) -> None:
    result = runner.invoke(cli(), ["--data", str(data), "--ner-model", "none", "--rounds", "1"])
    assert result.exit_code == 0, result.output
    assert "leaks (structured PII reaching a cloud tier under local_only): 1" in result.stdout
    assert "not covered: PERSON" in result.stdout


@pytest.mark.parametrize("content", [None, '{"not": "a list"}', '[{"spans": []}]'])
def test_cli_bad_data_exits_2(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(cli(), ["--data", str(path), "--ner-model", "none"])
    assert result.exit_code == 2
    assert "hybridgate:" in result.stderr


def test_cli_unknown_ner_pipeline_exits_2(data: Path) -> None:
    result = runner.invoke(cli(), ["--data", str(data), "--ner-model", "en_core_web_nonexistent"])
    assert result.exit_code == 2
    assert "not installed" in result.stderr
