"""``hybridgate bench cache`` on a tiny shipped file of hand-written pairs (tests/cache/data)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from hybridgate.cli import app
from hybridgate_bench.cache import load_pairs, operating_point, split

PAIRS = Path(__file__).parent / "data" / "pairs.jsonl"


def run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["bench", "cache", "--data", str(PAIRS), *args])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def test_bench_cache_prints_the_report() -> None:
    report = run("--json", "--entries", "60", "--queries", "20")
    for key in ("pairs", "threshold", "precision", "recall", "false_hit_rate", "curve", "lookup_p99_ms"):
        assert key in report
    assert report["pairs"] == 20 and report["held_out"]["pairs"] == 10  # the whole file, its held-out half
    assert report["threshold"] == 0.98
    curve = report["curve"]
    assert isinstance(curve, list) and len(curve) == 20
    assert all(len(point) == 3 and 0 <= point[1] <= 1 and 0 <= point[2] <= 1 for point in curve)
    assert [point[0] for point in curve] == sorted(point[0] for point in curve)
    assert set(report["lookup_p99_ms"]) == {"memory", "sqlite"}  # redis only with --redis-url
    assert report["hit_rate"]["memory"] == report["hit_rate"]["sqlite"] > 0
    assert report["synthetic_fill"] is True  # 40 texts cannot fill 60 entries + 20 queries
    assert report["false_hit_rate"] == 0.0  # at the default, no hand-written near miss slips through
    reference = report["reference"]
    assert isinstance(reference, dict) and len(reference["curve"]) == 20


def test_bench_cache_limit_and_threshold() -> None:
    report = run("--json", "--limit", "6", "--threshold", "0.5", "--entries", "10", "--queries", "5")
    assert report["pairs"] == 6 and report["threshold"] == 0.5


def test_bench_cache_summary_and_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "cache", "--data", str(PAIRS), "--entries", "10", "--queries", "5"]
    )
    assert result.exit_code == 0 and "20 pairs (the whole file)" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text_a": "x"}\n')
    result = CliRunner().invoke(app, ["bench", "cache", "--data", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output
    result = CliRunner().invoke(app, ["bench", "cache", "--data", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2


def test_pairs_load_from_gzip_and_split_is_disjoint(tmp_path: Path) -> None:
    packed = tmp_path / "pairs.jsonl.gz"
    packed.write_bytes(gzip.compress(PAIRS.read_bytes()))
    a, b, labels = load_pairs(packed)
    assert len(a) == len(b) == len(labels) == 20 and int(labels.sum()) == 10
    tune, held = split(20, None)
    assert len(set(tune) | set(held)) == 20 and not set(tune) & set(held)
    small_tune, small_held = split(20, 6)
    assert set(small_held) <= set(held) and set(small_tune) <= set(tune)


def test_operating_point_counts() -> None:
    import numpy as np

    hits = np.array([True, True, False, False, True])
    labels = np.array([1, 0, 1, 0, 0], dtype=np.int8)
    assert operating_point(hits, labels) == {"precision": 0.3333, "recall": 0.5, "false_hit_rate": 0.6667}


HARD = Path(__file__).parent / "data" / "hard_negatives.jsonl"


def test_hard_negatives_stay_under_one_percent_at_the_default_threshold() -> None:
    """The project's own near misses (bench/hard_negatives.py writes them): the shipped default
    must not serve another question's answer for more than 1% of them, roles and direction
    swaps included ("from savings to current" / "from current to savings")."""
    report = run("--json", "--entries", "10", "--queries", "5", "--hard-negatives", str(HARD))
    hard = report["hard_negatives"]
    assert hard["threshold"] == 0.98 and hard["pairs"] >= 150
    assert hard["false_hit_rate"] <= 0.01, hard["by_category"]
    assert hard["by_category"]["roles"]["hits"] == 0
    assert hard["false_hit_rate_plain_cosine"] > 0.2  # what the guards are for: cosine alone fails
    assert hard["paraphrase_recall"] >= 0.3  # recall on true paraphrases, reported beside it
