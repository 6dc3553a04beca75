"""The 5-step framework, one test per branch, and the starter config for every recommendation."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hybridgate.config import GatewayConfig, load_config
from hybridgate.tco.answers import RouteScore, parse_answers
from hybridgate.tco.decide import CHOICES, Recommendation, decide
from hybridgate.tco.measure import Workload
from hybridgate.tco.starter import starter_config

HIGH = "100M"  # well above the 33.3M break-even of $8/Mtok against an $8,000 stack
LOW = "1M"


def answers(**tables: dict[str, Any]) -> dict[str, Any]:
    """A mature team with steady high volume and a proven open-weights tier, changed per test."""
    base: dict[str, dict[str, Any]] = {
        "data": {"can_leave_network": True, "pii": "none"},
        "quality": {"open_weights_meet_bar": True},
        "volume": {"daily_tokens": HIGH, "shape": "steady"},
        "ops": {"gpu_oncall": True, "version_pinning": True},
        "finetune": {"need": "none"},
    }
    for name, values in tables.items():
        base[name] = base[name] | values
    return base


def run(
    data: dict[str, Any], workload: Workload | None = None, scores: dict[str, RouteScore] | None = None
) -> Recommendation:
    return decide(parse_answers(data), workload, scores)


def test_data_that_cannot_leave_stops_at_self_host() -> None:
    rec = run(
        answers(data={"can_leave_network": False}, ops={"gpu_oncall": False}, volume={"daily_tokens": LOW})
    )
    assert (rec.choice, rec.stopped_at) == ("self_host", 1)
    assert len(rec.steps) == 1 and rec.steps[0].hard_stop
    assert rec.numbers == {}  # stopped before the volume step priced anything


def test_systemic_pii_stops_at_enterprise_zero_retention() -> None:
    rec = run(answers(data={"pii": "systemic"}))
    assert (rec.choice, rec.stopped_at) == ("enterprise_zdr", 1)


def test_episodic_pii_continues_with_redaction() -> None:
    rec = run(answers(data={"pii": "episodic"}))
    assert rec.stopped_at is None and rec.choice == "self_host"
    assert any("redact" in reason for reason in rec.reasons)


def test_eval_report_below_the_bar_stops_at_closed_api() -> None:
    scores = {"local": RouteScore(6, 2, 2), "openai": RouteScore(10, 0, 0)}
    rec = run(answers(quality={"bar": 0.8}), scores=scores)
    assert (rec.choice, rec.stopped_at) == ("closed_api", 2)
    assert rec.numbers["local_pass_rate"] == 0.6
    assert "60%" in rec.reasons[0]


def test_eval_report_overrides_the_answer_when_it_covers_a_local_route() -> None:
    scores = {"vllm": RouteScore(95, 0, 5)}
    data = answers(quality={"open_weights_meet_bar": False, "local_routes": ["vllm"], "bar": 0.9})
    assert run(data, scores=scores).choice == "self_host"


def test_answered_quality_shortfall_stops_at_closed_api() -> None:
    rec = run(answers(quality={"open_weights_meet_bar": False}))
    assert (rec.choice, rec.stopped_at) == ("closed_api", 2)


def test_below_break_even_is_a_closed_api() -> None:
    rec = run(answers(volume={"daily_tokens": LOW}))
    assert (rec.choice, rec.stopped_at) == ("closed_api", None)
    assert [s.number for s in rec.steps] == [1, 2, 3, 4, 5]
    assert rec.numbers["api_monthly_usd"] == 240.0
    assert rec.numbers["break_even_daily_tokens"] == 33333333.33


def test_below_break_even_with_fine_tuned_weights_is_managed_open_weights() -> None:
    rec = run(answers(volume={"daily_tokens": LOW}, finetune={"need": "weights"}))
    assert rec.choice == "managed_open_weights" and rec.stopped_at is None


def test_steady_volume_above_break_even_with_mature_ops_is_self_host() -> None:
    rec = run(answers(finetune={"need": "weights"}))
    assert rec.choice == "self_host"
    assert rec.numbers["api_monthly_usd"] == 24000.0 and rec.numbers["selfhost_monthly_usd"] == 8000.0


def test_bursty_volume_above_break_even_is_hybrid() -> None:
    assert run(answers(volume={"shape": "bursty"})).choice == "hybrid"


def test_no_gpu_on_call_stops_at_managed_open_weights() -> None:
    rec = run(answers(ops={"gpu_oncall": False}))
    assert (rec.choice, rec.stopped_at) == ("managed_open_weights", 4)


def test_no_version_pinning_keeps_an_api_fallback() -> None:
    rec = run(answers(ops={"version_pinning": False}))
    assert rec.choice == "hybrid" and rec.stopped_at is None


def test_unproven_quality_never_goes_all_in_on_self_host() -> None:
    rec = run(answers(quality={"open_weights_meet_bar": None}))
    assert rec.choice == "hybrid"
    assert "unproven" in rec.steps[1].finding


def test_volume_and_shape_come_from_the_ledger_when_not_answered() -> None:
    w = Workload(
        days=7.0, requests=70_000, daily_tokens=6e7, input_share=0.7, local_share=0.4,
        avg_prompt_tokens=9000.0, cloud_usd_per_mtok=6.0, local_tps=300.0, peak_to_mean=1.5, shape="steady",
    )  # fmt: skip
    rec = run(answers(volume={"daily_tokens": None, "shape": None}), workload=w)
    assert rec.choice == "self_host"
    assert rec.numbers["daily_tokens_source"] == "ledger"
    assert rec.numbers["api_usd_per_mtok"] == 6.0  # measured cloud price, not the $8 default
    assert rec.numbers["shape"] == "steady"
    assert any("KV cache" in reason for reason in rec.reasons)  # 9,000-token average context


def test_no_volume_anywhere_is_an_error() -> None:
    with pytest.raises(ValueError, match="no volume"):
        run(answers(volume={"daily_tokens": None}))


@pytest.mark.parametrize("choice", list(CHOICES))
def test_every_starter_config_validates(choice: str) -> None:
    text = starter_config(choice, CHOICES[choice])
    config = GatewayConfig.model_validate(tomllib.loads(text))
    assert config.default_route in config.routes
    assert CHOICES[choice] in text


def test_recommendation_as_json_carries_its_starter_config() -> None:
    body = run(answers(volume={"shape": "bursty"})).to_dict()
    assert body["recommendation"] == "hybrid" and body["title"] == "Hybrid routing"
    config = GatewayConfig.model_validate(tomllib.loads(body["starter_config"]))
    assert config.routes["auto"].try_[0] == "local" and config.routes["auto"].cascade
    first = {"number": 1, "name": "data classification", "finding": "prompts may leave the network; no PII"}
    assert body["steps"][0] == first | {"hard_stop": False}


def test_unknown_starter_choice() -> None:
    with pytest.raises(ValueError, match="no starter config"):
        starter_config("mainframe", "x")


@pytest.mark.parametrize(
    ("chunks", "advice"),
    [
        (200_000, "API embeddings with cached vectors are fine"),
        (2_000_000, "either works"),
        (20_000_000, "self-host the embedder or batch-embed on a schedule"),
    ],
)
def test_decide_applies_the_embeddings_rule_of_thumb_and_cites_its_numbers(chunks: int, advice: str) -> None:
    rec = run(answers(volume={"corpus_chunks": chunks, "reembeds_per_month": 4, "chunk_tokens": 400}))
    (reason,) = [r for r in rec.reasons if r.startswith("Embeddings:")]
    assert advice in reason and f"{chunks:,} chunks" in reason
    expected = chunks * 400 * 4 * 0.02 / 1e6
    assert rec.numbers["corpus_embed_monthly_usd"] == pytest.approx(expected, abs=0.01)
    assert f"${expected:,.2f}/month" in reason
    assert rec.numbers["embed_rule_chunks"] == [500_000, 5_000_000]


def test_decide_without_a_corpus_says_nothing_about_embeddings() -> None:
    rec = run(answers())
    assert not any(r.startswith("Embeddings:") for r in rec.reasons)
    assert "corpus_chunks" not in rec.numbers


BRANCHES: list[dict[str, Any]] = [
    answers(data={"can_leave_network": False}),
    answers(data={"pii": "systemic"}),
    answers(data={"pii": "episodic"}),
    answers(quality={"open_weights_meet_bar": False}),
    answers(volume={"daily_tokens": LOW}),
    answers(volume={"shape": "bursty"}),
    answers(ops={"gpu_oncall": False}),
    answers(ops={"version_pinning": False}),
    answers(volume={"daily_tokens": LOW}, finetune={"need": "weights"}),
]


@pytest.mark.parametrize("data", BRANCHES)
def test_the_starter_config_contains_everything_the_recommendation_advises(
    data: dict[str, Any], tmp_path: Path
) -> None:
    rec = run(data)
    path = tmp_path / "starter.toml"
    path.write_text(rec.to_dict()["starter_config"])
    config = load_config(path)  # the full check, cross-references included
    advice = " ".join(rec.reasons)
    assert "Pin every backend" in advice and "[auth] enabled = true" in advice
    assert config.auth.enabled
    remote = [b for b in config.backends.values() if b.type != "embedded"]
    assert remote and all(b.pin for b in remote)
    for policy in ("redact", "local_only"):
        if f'policy = "{policy}"' in advice:
            assert config.privacy is not None and config.privacy.policy == policy
    if data["data"]["pii"] != "none" or not data["data"]["can_leave_network"]:
        assert config.privacy is not None


def test_a_recommendation_that_is_not_the_cheapest_names_the_step_that_forced_it() -> None:
    rec = run(answers(volume={"shape": "bursty"}))
    costs = {k: rec.numbers[f"{k}_monthly_usd"] for k in ("api", "selfhost", "hybrid")}
    assert rec.choice == "hybrid" and min(costs, key=lambda k: costs[k]) != "hybrid"
    (why,) = [r for r in rec.reasons if r.startswith("Not the cheapest option")]
    assert "Step 3 (volume and shape) forced it: above break-even with bursty traffic" in why
    assert f"${costs['hybrid']:,.2f}/month" in why
    # the volume reason states the numbers it used
    assert any("tokens/day at $8.00/Mtok: API $" in r for r in rec.reasons)
    cheapest = run(answers())
    assert cheapest.choice == "self_host" and not any(
        r.startswith("Not the cheapest") for r in cheapest.reasons
    )
