"""Reports from graded results: numbers, markdown and the HTML page with its SVG chart (pure)."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import pytest

from hybridgate.evals.graders import Verdict
from hybridgate.evals.html import chart, to_html
from hybridgate.evals.report import build_report, percentile, to_markdown
from hybridgate.evals.runner import CaseResult

SVG = "{http://www.w3.org/2000/svg}"


def result(case: str, route: str, verdict: Verdict, **extra: Any) -> CaseResult:
    fields: dict[str, Any] = {"latency_ms": 100.0, "cost_usd": 0.001, "tags": ["t"]} | extra
    reason = "" if verdict == "pass" else f"bad {case}"
    return CaseResult(case, route, verdict, reason, f"prompt {case}", **fields)


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(i) for i in range(1, 21)], 0.95) == pytest.approx(19.05)


def sample() -> dict[str, Any]:
    results = [
        result("a", "local", "pass", latency_ms=100.0, cost_usd=0.0, prompt_tokens=10, completion_tokens=5),
        result("b", "local", "soft", latency_ms=300.0, cost_usd=0.0, tags=["t", "u"]),
        result("c", "local", "fail", latency_ms=None, cost_usd=0.0, error="server_error"),
        result("a", "cloud", "pass", cost_usd=0.002, answer="<b>Paris</b> | x"),
        result("b", "cloud", "pass", cost_usd=0.002, judge_cost_usd=0.0005),
        result("c", "cloud", "fail", cost_usd=0.002, answer="<script>alert(1)</script>"),
    ]
    return build_report(results, ["local", "cloud"], golden="g.toml", name="demo", started=0.0)


def test_route_summaries() -> None:
    local, cloud = sample()["routes"].values()
    assert (local["pass"], local["soft"], local["fail"], local["errors"]) == (1, 1, 1, 1)
    assert local["pass_rate"] == 0.3333 and local["score"] == 0.5
    assert local["latency_p50_ms"] == 200.0 and local["latency_p95_ms"] == 290.0
    assert local["prompt_tokens"] == 10 and local["completion_tokens"] == 5
    assert local["tags"] == {
        "t": {"cases": 3, "pass": 1, "soft": 1, "fail": 1, "pass_rate": 0.3333, "score": 0.5},
        "u": {"cases": 1, "pass": 0, "soft": 1, "fail": 0, "pass_rate": 0.0, "score": 0.5},
    }
    assert cloud["cost_usd"] == pytest.approx(0.006) and cloud["pass_rate"] == 0.6667
    assert sample()["judge_cost_usd"] == 0.0005


def test_markdown_lists_what_did_not_pass() -> None:
    text = to_markdown(sample())
    assert "| local | 1 | 1 | 1 | 33% | $0 | 10/5 | 200 | 290 |" in text  # never $0.000000
    assert "| t | 1/1/1 | 2/0/1 |" in text
    assert "| u | 0/1/0 | - |" in text
    assert "| cloud | c | fail | <script>alert(1)</script> | bad c |" in text
    assert "| local | b | soft | (empty) | bad b |" in text
    assert "| cloud | a |" not in text


def test_html_escapes_answers_and_plots_every_route() -> None:
    page = to_html(sample())
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    svg = ElementTree.fromstring(chart(sample()))
    circles = svg.findall(f"{SVG}circle")
    assert len(circles) == 2
    titles = sorted(c.findtext(f"{SVG}title") or "" for c in circles)
    assert titles == ["cloud: 67% pass, 2 USD / 1k requests", "local: 33% pass, 0 USD / 1k requests"]
    # Cheaper is further left, better is higher up.
    positions = {
        (c.findtext(f"{SVG}title") or "").split(":")[0]: (float(c.get("cx", 0)), float(c.get("cy", 0)))
        for c in circles
    }
    assert positions["local"][0] < positions["cloud"][0]
    assert positions["local"][1] > positions["cloud"][1]
    assert re.search(r"<h2>Not passed</h2>", page)


def test_chart_with_all_routes_free_still_draws() -> None:
    report = sample()
    for summary in report["routes"].values():
        summary["cost_usd"] = 0.0
    svg = ElementTree.fromstring(chart(report))
    assert all(float(c.get("cx", 0)) == 70.0 for c in svg.findall(f"{SVG}circle"))
