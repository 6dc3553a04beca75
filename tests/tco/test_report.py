"""Rendering a TCO report: JSON shape, CSV, the rich table, and the SVG chart's geometry."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from io import StringIO

import pytest

from hybridgate.tco.chart import render_svg
from hybridgate.tco.measure import Workload
from hybridgate.tco.model import Assumptions, parse_volumes
from hybridgate.tco.profiles import customise, get_profile
from hybridgate.tco.report import build_report, human_tokens, render_csv, render_json, render_table

SVG = "{http://www.w3.org/2000/svg}"
PLANNING = Assumptions(api_usd_per_mtok=8.0, profile=get_profile("l4"), selfhost_monthly_usd=8000.0)
VOLUMES = parse_volumes("500k,5M,20M,50M,200M")


def test_json_report_has_the_acceptance_keys() -> None:
    report = json.loads(render_json(build_report(VOLUMES, PLANNING, sources={"price": "given"})))
    assert [r["daily_tokens"] for r in report["rows"]] == VOLUMES
    assert [r["api_monthly_usd"] for r in report["rows"]] == [120.0, 1200.0, 4800.0, 12000.0, 48000.0]
    assert all({"selfhost_monthly_usd", "hybrid_monthly_usd"} <= set(r) for r in report["rows"])
    assert report["break_even_daily_tokens"] == 33333333.33
    assert report["assumptions"]["sources"] == {"price": "given"}
    assert report["measured"] is None


def test_measured_workload_is_reported_beside_the_profile_local_tier() -> None:
    w = Workload(
        days=2.0, requests=10, daily_tokens=1e6, input_share=0.8, local_share=0.6, avg_prompt_tokens=80.0,
        cloud_usd_per_mtok=5.0, local_tps=250.0, peak_to_mean=None, shape="unknown",
    )  # fmt: skip
    report = build_report([w.daily_tokens], PLANNING, workload=w)
    assert report["measured"]["local_share"] == 0.6
    assert report["local_tier"]["throughput_tps"] == PLANNING.profile.throughput_tps
    assert report["local_tier"]["throughput_source"] == "profile"
    assert report["local_tier"]["gateway_measured_tps"] == 250.0


def test_csv_round_trips() -> None:
    rows = list(csv.DictReader(StringIO(render_csv(build_report(VOLUMES, PLANNING)))))
    assert [float(r["api_monthly_usd"]) for r in rows] == [120.0, 1200.0, 4800.0, 12000.0, 48000.0]
    assert rows[-1]["cheapest"] == "selfhost"


def test_table_shows_rows_and_break_even() -> None:
    text = render_table(build_report(VOLUMES, PLANNING))
    assert "48,000.00" in text and "8,000.00" in text
    assert "break-even: 33.3M tokens/day" in text
    never = render_table(build_report(VOLUMES, Assumptions(0.0, get_profile("l4"))))
    assert "break-even: never" in never


@pytest.mark.parametrize(
    ("value", "text"), [(33_333_333.3, "33.3M"), (500_000, "500k"), (1.5e9, "1.5B"), (12, "12")]
)
def test_human_tokens(value: float, text: str) -> None:
    assert human_tokens(value) == text


def test_chart_marks_the_crossover_where_the_curves_meet() -> None:
    root = ET.fromstring(render_svg(VOLUMES, PLANNING))
    lines = root.findall(f"{SVG}polyline")
    assert [line.get("data-name") for line in lines] == ["closed API", "self-host", "hybrid"]
    marker = root.find(f"{SVG}line[@id='break-even']")
    assert marker is not None
    x = float(marker.get("x1", "nan"))
    api = [tuple(map(float, p.split(","))) for p in (lines[0].get("points") or "").split()]
    selfhost = [tuple(map(float, p.split(","))) for p in (lines[1].get("points") or "").split()]
    # The API line starts below the flat self-host line and ends above it; it crosses at the marker.
    crossing = next(i for i, (a, s) in enumerate(zip(api, selfhost, strict=True)) if a[1] <= s[1])
    assert api[crossing - 1][0] <= x <= api[crossing][0]
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "break-even 33.3M tokens/day" in texts
    assert len(root.findall(f"{SVG}circle")) == 3 * len(VOLUMES) + 1


def test_chart_without_break_even_says_so() -> None:
    svg = render_svg([1e6], Assumptions(0.0, get_profile("l4")))
    assert "no break-even" in svg and 'break-even"' not in svg


def test_chart_needs_a_positive_volume() -> None:
    with pytest.raises(ValueError, match="positive"):
        render_svg([0.0], PLANNING)


def test_local_tier_priced_at_the_ledger_volume_utilisation() -> None:
    """hourly / (tps x 3600 x utilisation) with the utilisation the measured volume gives a node."""
    w = Workload(
        days=2.0, requests=10, daily_tokens=1e6, input_share=0.8, local_share=0.6, avg_prompt_tokens=80.0,
        cloud_usd_per_mtok=5.0, local_tps=None, peak_to_mean=None, shape="unknown",
    )  # fmt: skip
    node = customise(get_profile("l4"), throughput_tps=100.0)  # $0.80/hour, 50% assumed
    a = Assumptions(8.0, node, local_share=0.5, overhead=0.2)
    v = build_report([], a, workload=w)["local_tier"]["at_measured_volume"]
    assert v["daily_tokens"] == 600_000 and v["nodes"] == 1  # 1M x 50% local x 1.2 overhead
    assert v["utilisation"] == pytest.approx(600_000 / (100 * 86_400), abs=1e-6)
    assert v["usd_per_mtok"] == pytest.approx(0.80 * 720 / (600_000 * 30) * 1e6, abs=1e-3)  # $32/Mtok
    assert "at the ledger's volume (600k local tokens/day): 1 node 6.94% busy -> $32.00/Mtok" in render_table(
        build_report([], a, workload=w)
    )
    assert build_report(VOLUMES, PLANNING)["local_tier"]["at_measured_volume"] is None  # no ledger
