"""The TCO formulas over plain numbers: the planning table, break-even, profiles, bad input."""

from __future__ import annotations

import dataclasses

import pytest

from hybridgate.tco.model import (
    Assumptions,
    api_monthly,
    break_even_daily_tokens,
    compare,
    embed_api_monthly,
    embed_local_monthly,
    hybrid_monthly,
    local_tier,
    parse_tokens,
    parse_volumes,
    selfhost_monthly,
)
from hybridgate.tco.profiles import PROFILES, People, customise, get_profile

PLANNING = Assumptions(api_usd_per_mtok=8.0, profile=get_profile("l4"), selfhost_monthly_usd=8000.0)


def test_the_planning_table_exactly() -> None:
    rows = compare(parse_volumes("500k,5M,20M,50M,200M"), PLANNING)
    assert [round(r.api_monthly_usd, 6) for r in rows] == [120.0, 1200.0, 4800.0, 12000.0, 48000.0]
    assert {r.selfhost_monthly_usd for r in rows} == {8000.0}
    assert [r.cheapest for r in rows] == ["api", "api", "api", "selfhost", "selfhost"]
    assert break_even_daily_tokens(PLANNING) == pytest.approx(8000 / (8e-6 * 30))
    assert round(break_even_daily_tokens(PLANNING) or 0) == 33_333_333


@pytest.mark.parametrize(
    ("text", "value"),
    [("500k", 5e5), ("5M", 5e6), ("5m", 5e6), ("1.5B", 1.5e9), ("20000000", 2e7), (" 2 k ", 2e3), ("0", 0.0)],
)
def test_parse_tokens(text: str, value: float) -> None:
    assert parse_tokens(text) == value


@pytest.mark.parametrize("text", ["-5M", "five", "5X", "", "5MM"])
def test_parse_tokens_refuses_junk_and_negatives(text: str) -> None:
    with pytest.raises(ValueError, match=r"negative|not a token volume"):
        parse_tokens(text)


def test_parse_volumes_needs_at_least_one() -> None:
    with pytest.raises(ValueError, match="no daily token volumes"):
        parse_volumes(" , ")


def test_negative_volume_in_compare_is_an_error_not_a_number() -> None:
    with pytest.raises(ValueError, match="negative"):
        compare([1e6, -1.0], PLANNING)


@pytest.mark.parametrize(
    "changes",
    [{"api_usd_per_mtok": -1.0}, {"selfhost_monthly_usd": -5.0}, {"local_share": 1.5}, {"overhead": -0.1}],
)
def test_invalid_assumptions_are_refused(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(PLANNING, **changes)  # type: ignore[arg-type]


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown GPU profile 'v100'.*l4, a100, h100x2, k8s-pool"):
        get_profile("v100")


@pytest.mark.parametrize("changes", [{"utilisation": 0.0}, {"utilisation": 1.2}, {"throughput_tps": 0.0}])
def test_customised_profile_is_checked(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        customise(get_profile("a100"), **changes)


def test_people_cost_is_a_fraction_of_a_yearly_rate() -> None:
    assert People(0.5, 120_000).monthly_usd == 5000.0
    with pytest.raises(ValueError):
        People(-0.1)


def test_nodes_step_up_with_volume_and_k8s_pool_adds_its_platform_share() -> None:
    l4 = get_profile("l4")  # 800 tok/s at 50% -> 34.56M tokens a day per node
    a = Assumptions(api_usd_per_mtok=8.0, profile=l4, people=People(0.0))
    assert selfhost_monthly(34.56e6, a) == pytest.approx((576.0, 1))
    assert selfhost_monthly(34.57e6, a) == pytest.approx((1152.0, 2))
    pool = get_profile("k8s-pool")
    assert pool.node_monthly_usd == pytest.approx(2.50 * 720 * 1.30)
    assert Assumptions(8.0, pool, People(0.0)).profile.nodes_for(1.0) == 2  # a pool keeps two nodes


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("overhead", [0.0, 0.4])
def test_break_even_is_the_first_volume_where_self_hosting_costs_no_more(
    profile: str, overhead: float
) -> None:
    a = Assumptions(
        api_usd_per_mtok=8.0, profile=get_profile(profile), overhead=overhead, embed_daily_tokens=5e7
    )
    volume = break_even_daily_tokens(a)
    assert volume is not None
    assert selfhost_monthly(volume, a)[0] == pytest.approx(api_monthly(volume, a))
    assert selfhost_monthly(volume * 1.0001, a)[0] < api_monthly(volume * 1.0001, a)
    for below in (volume * f for f in (0.1, 0.5, 0.9, 0.999)):
        assert selfhost_monthly(below, a)[0] > api_monthly(below, a)


def test_break_even_past_the_first_node() -> None:
    # People cost so high that one node never pays: the crossover needs several.
    a = Assumptions(api_usd_per_mtok=8.0, profile=get_profile("l4"), people=People(1.0, 240_000))
    volume = break_even_daily_tokens(a)
    assert volume is not None and selfhost_monthly(volume, a)[1] == 3
    assert selfhost_monthly(volume, a)[0] == pytest.approx(api_monthly(volume, a))
    assert selfhost_monthly(volume * 0.99, a)[0] > api_monthly(volume * 0.99, a)


def test_no_break_even_when_a_node_costs_more_than_the_api_for_its_capacity() -> None:
    cheap_api = Assumptions(api_usd_per_mtok=0.10, profile=get_profile("h100x2"))
    assert break_even_daily_tokens(cheap_api) is None
    assert break_even_daily_tokens(dataclasses.replace(PLANNING, api_usd_per_mtok=0.0)) is None


def test_hybrid_between_the_extremes() -> None:
    a = Assumptions(api_usd_per_mtok=8.0, profile=get_profile("a100"), local_share=0.7)
    assert hybrid_monthly(2e7, dataclasses.replace(a, local_share=0.0)) == api_monthly(2e7, a)
    assert hybrid_monthly(2e7, dataclasses.replace(a, local_share=1.0)) == selfhost_monthly(2e7, a)[0]
    # Flat stack: the local tier costs the whole stack, the API carries the other half.
    assert hybrid_monthly(2e7, PLANNING) == pytest.approx(8000 + 0.5 * 4800)


def test_overhead_inflates_api_tokens_and_self_host_capacity() -> None:
    a = Assumptions(api_usd_per_mtok=8.0, profile=get_profile("l4"), overhead=0.5)
    assert api_monthly(2e7, a) == pytest.approx(1.5 * 4800)
    assert selfhost_monthly(3e7, a)[1] == 2  # 45M tokens/day of work > one L4's 34.56M


def test_embeddings_line_api_versus_gpu_time() -> None:
    a = dataclasses.replace(PLANNING, embed_daily_tokens=1e8, embed_usd_per_mtok=0.02)
    assert embed_api_monthly(a) == pytest.approx(100 * 0.02 * 30)
    hours = 1e8 * 30 / (20_000 * 3600)
    assert embed_local_monthly(a) == pytest.approx(hours * 0.80)
    assert api_monthly(0, a) == pytest.approx(60.0)
    assert selfhost_monthly(0, a)[0] == pytest.approx(8000 + hours * 0.80)


def test_local_tier_price_shows_idle_capacity() -> None:
    l4 = get_profile("l4")
    busy = local_tier(l4, None)
    assert busy["usd_per_mtok"] == pytest.approx(0.80 / (800 * 3600 * 0.5) * 1e6, abs=1e-4)
    assert busy["throughput_source"] == "profile"
    idle = local_tier(customise(l4, utilisation=0.25), None)
    assert idle["usd_per_mtok"] == pytest.approx(2 * busy["usd_per_mtok"], abs=1e-3)  # type: ignore[operator]
    # A gateway-measured speed (another machine) is shown, never priced as the profile's GPU.
    measured = local_tier(l4, 200.0)
    assert measured["throughput_source"] == "profile" and measured["gateway_measured_tps"] == 200.0
    assert measured["usd_per_mtok"] == busy["usd_per_mtok"]
    given = local_tier(customise(l4, throughput_tps=200.0), None, throughput_source="given")
    assert given["usd_per_mtok"] == pytest.approx(0.80 / (200 * 3600 * 0.5) * 1e6, abs=1e-4)
