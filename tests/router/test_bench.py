"""The router benchmark's honest parts, on small data made here (never the shared benchmark data).

Duplicate prompts stay in one fold and in one side of the development split; RouteLLM's
decile metric on a hand-made example whose answer is worked out in the comments; the random
router measured on the same rows lands on the straight line; the TF-IDF baseline learns.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hybridgate.training.quality import curve, random_share_for_quality
from hybridgate_bench.router import SETTINGS, TFIDF_C, parallel, run_bench
from hybridgate_bench.router_data import STRONG, WEAK
from hybridgate_bench.router_gated import SKIP_SHARES, choose_skip_share, gated_at95, gated_curve
from hybridgate_bench.router_metrics import (
    full_summary,
    paired_bootstrap,
    random_scores_summary,
    routellm_points,
    routellm_summary,
)
from hybridgate_bench.router_split import development_rows, group_fold_ids, prompt_groups
from hybridgate_bench.router_tfidf import cross_validated_gain, tf_rows
from tests.router.synthetic import rows, write_csv


def test_duplicate_prompts_share_their_fold_and_their_side_of_the_development_split() -> None:
    rng = random.Random(3)
    base = [f"Question {i}: what is {rng.randint(1, 10**6)} squared?" for i in range(400)]
    # 60 copies that differ only by case, spacing or a compatibility character, put anywhere.
    copies = [base[i].upper().replace(" ", "  ") + "\n" for i in range(0, 120, 2)]
    wide = "".join(chr(ord(c) + 0xFEE0) for c in "QUESTION")  # full-width letters: NFKC-equal
    copies[0] = base[0].replace("Question", wide)
    prompts = base + copies
    rng.shuffle(prompts)
    groups = prompt_groups(prompts)
    assert len(np.unique(groups)) == 400
    dev = development_rows(prompts)
    assert 0.15 < dev.mean() < 0.35  # a quarter of the groups
    for seed in range(5):
        folds = group_fold_ids(groups, 5, seed)
        assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
        for g in np.unique(groups):
            members = np.nonzero(groups == g)[0]
            assert len(set(folds[members])) == 1
            assert len(set(dev[members])) == 1
    # Balanced: every fold holds 80 of the 400 groups.
    folds = group_fold_ids(groups, 5, 0)
    first = {g: folds[i] for i, g in enumerate(groups)}
    assert sorted(np.bincount(list(first.values()))) == [80] * 5


def test_routellm_metric_on_a_hand_made_example() -> None:
    # 20 rows scored 0..19. np.quantile edges at positions 0, 1.9, 3.8, ... 17.1, 19 select
    # (>=, and > for the last edge) 20, 18, 16, ... 2, 0 rows: shares 1.0, 0.9, ... 0.1, 0.
    scores = np.arange(20, dtype=np.float64)
    strong = np.ones(20)
    weak = np.ones(20)
    weak[[19, 16]] = 0.0  # quality: weak 0.9, strong 1.0
    share, quality = routellm_points(scores, weak, strong)
    assert np.allclose(share, np.linspace(0, 1, 11))
    # share 0: 0.9; 0.1 (rows 19, 18): 0.95; 0.2 (rows 19..16): 1.0; then 1.0.
    assert np.allclose(quality, [0.9, 0.95] + [1.0] * 9)
    r = routellm_summary(scores, weak, strong)
    # 95% of 1.0 = 0.95 is reached at the 0.1 point; CPT(50%) is the same level.
    assert r["strong_share_at_95"] == 0.1
    assert r["cpt50"] == 0.1
    # CPT(20%) = 0.92: between (0, 0.9) and (0.1, 0.95): 0.04. CPT(80%) = 0.98: 0.1 + 0.06.
    assert r["cpt20"] == 0.04
    assert r["cpt80"] == 0.16
    # Area: 0.1 (0.9 + 0.95) / 2 + 0.1 (0.95 + 1) / 2 + 0.8 = 0.99; APGR = (0.99 - 0.9) / 0.1.
    assert r["apgr"] == 0.9
    # Full resolution sees that row 19 alone (share 0.05) already reaches 0.95.
    full = full_summary(scores, weak, strong)
    assert full["strong_share_at_95"] == 0.05
    assert full["cpt50"] == 0.05


def test_random_router_measured_on_the_rows_lands_on_the_straight_line() -> None:
    rng = np.random.default_rng(1)
    weak = (rng.random(4000) < 0.6).astype(np.float64)
    strong = (rng.random(4000) < 0.9).astype(np.float64)
    line = random_share_for_quality(weak.mean(), strong.mean())
    r = random_scores_summary(weak, strong, draws=10)
    assert abs(r["strong_share_at_95"] - line) < 0.03
    assert abs(r["apgr"] - 0.5) < 0.03
    assert abs(r["routellm"]["strong_share_at_95"] - line) < 0.03
    assert abs(r["routellm"]["apgr"] - 0.5) < 0.03
    # The oracle (true gain) is far better, and the paired bootstrap says so.
    oracle = strong - weak
    assert full_summary(oracle, weak, strong)["strong_share_at_95"] < line - 0.3
    diff = paired_bootstrap(oracle, rng.random(4000), weak, strong, resamples=50)
    assert diff["significant"] and diff["ci95"][1] < 0
    # A constant router is exactly the random line at full resolution (ties are linear).
    assert abs(curve(np.zeros(4000), weak, strong).share_for_quality(0.95) - line) < 1e-9


def test_tfidf_baseline_learns_which_prompts_need_the_strong_tier() -> None:
    data = rows(600, seed=5)
    prompts = [str(r["prompt"]) for r in data]
    weak = np.array([float(bool(r["small"])) for r in data])
    strong = np.array([float(bool(r["big"])) for r in data])
    folds = group_fold_ids(prompt_groups(prompts), 5, 0)
    scores = cross_validated_gain(tf_rows(prompts), weak, strong, folds, c=1.0)
    hard = np.array([r["kind"] == "hard" for r in data])
    assert scores[hard].mean() > scores[~hard].mean() + 0.3
    learned = full_summary(scores, weak, strong)["strong_share_at_95"]
    assert learned < random_share_for_quality(weak.mean(), strong.mean()) - 0.2


def write_routellm_layout(root: Path) -> Path:
    """Synthetic data in RouteLLM's layout (two MMLU 'subjects', GSM8K with answers), made here."""
    (root / "mmlu").mkdir(parents=True)
    (root / "gsm8k").mkdir()
    data = rows(700, seed=9)
    for subject, part in (("easy", data[:350]), ("mixed", data[350:500])):
        write_csv(root / "mmlu" / f"mmlu_{subject}.csv", _relabel(part), ["prompt", WEAK, STRONG])
    # One exact duplicate pair and one contaminated prompt, like RouteLLM's files.
    gsm = _relabel(data[500:])
    gsm.append(dict(gsm[0]))
    for row in gsm:
        row[f"{WEAK}_response"] = "It is 12." if row[WEAK] else "I think maybe 7?"
        row[f"{STRONG}_response"] = "The answer is 12 because 3 * 4 = 12."
    columns = ["prompt", WEAK, STRONG, f"{WEAK}_response", f"{STRONG}_response"]
    write_csv(root / "gsm8k" / "gsm8k_responses.csv", gsm, columns)
    for folder, prompt in (("mmlu", data[0]["prompt"]), ("gsm8k", gsm[1]["prompt"])):
        (root / folder / "contaminated_prompts.jsonl").write_text(json.dumps({"eval_prompt": prompt}) + "\n")
    return root


def _relabel(part: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{**r, WEAK: r["small"], STRONG: r["big"]} for r in part]


def test_bench_router_measures_every_router_on_the_same_rows(tmp_path: Path) -> None:
    report, curves = run_bench(write_routellm_layout(tmp_path / "data"), list(SETTINGS), latency_rows=5)
    assert set(curves) == set(SETTINGS)
    for name, result in report["benchmarks"].items():
        if name == "gsm8k_gated":
            continue  # its own report: below
        routers = result["routers"]
        expected = {"learned", "tfidf_lr", "random", "random_line", "oracle"}
        # Per-subject intercepts are measured beside the learned router where subjects exist.
        extra = {"learned_with_task"} if name == "mmlu" else set()
        extra |= {"learned_tfidf_blend"} if name in ("mmlu", "gsm8k") else set()
        assert set(routers) == expected | extra, name
        for router in ("learned", "tfidf_lr", "oracle"):
            assert 0.0 <= routers[router]["strong_share_at_95"] <= 1.0
            assert set(routers[router]["routellm"]) == {
                "cpt20",
                "cpt50",
                "cpt80",
                "strong_share_at_95",
                "apgr",
            }
        # The prompts separate the tiers' outcomes: both trained routers beat random, the oracle both.
        assert routers["learned"]["strong_share_at_95"] < routers["random"]["strong_share_at_95"], name
        assert routers["oracle"]["strong_share_at_95"] <= routers["learned"]["strong_share_at_95"], name
        assert result["development_rows_excluded"] > 0
        assert result["chosen_on_development_split"]["tfidf_c"] in TFIDF_C
    gsm = report["benchmarks"]["gsm8k"]
    # Template prompts repeat: every copy of the contaminated one is left out, nothing else.
    assert gsm["contaminated_excluded"] >= 1
    assert gsm["rows_evaluated"] + gsm["development_rows_excluded"] + gsm["contaminated_excluded"] == 201
    cascade = report["benchmarks"]["gsm8k_cascade"]
    cost = cascade["routers"]["learned"]["cost"]
    # Every request pays the cheap call: the cascade costs more than its strong share of all-strong.
    assert cost["cost_share_of_all_strong_at_95"] > cascade["routers"]["learned"]["strong_share_at_95"]
    assert cascade["goal"]["judged_on"].startswith("cost_share_of_all_strong_at_95")
    assert cascade["cascade_latency"]["cheap_answer_tokens_p50"] > 0
    gated = report["benchmarks"]["gsm8k_gated"]
    for router in ("learned", "tfidf_lr"):
        chosen = gated["chosen_on_development_split"][router]["skip_share"]
        assert chosen in SKIP_SHARES
        assert gated["routers"][router]["gated"]["skipped_share"] == pytest.approx(chosen, abs=0.01)
    # Skip share 0 is the plain cascade: the same scores, folds and costs as gsm8k_cascade.
    plain = gated["routers"]["learned"]["plain_cascade"]["cost_share_of_all_strong_at_95"]
    assert plain == pytest.approx(cost["cost_share_of_all_strong_at_95"], abs=1e-3)


def test_gated_cascade_costs_on_a_hand_made_example() -> None:
    # 4 requests. Strong call 1.0 each, cheap call 0.1. The cheap tier fails rows 0 and 1.
    weak = np.array([0.0, 0.0, 1.0, 1.0])
    strong = np.ones(4)
    weak_cost, strong_cost = np.full(4, 0.1), np.ones(4)
    skip = np.array([0.9, 0.1, 0.2, 0.0])  # the prompt router is sure only about row 0
    escalate = np.array([0.0, 0.8, 0.1, 0.2])  # the answer router spots row 1
    # 95% of the strong quality is 0.95. Plain cascade, escalating in the answer router's order
    # (row 1, 3, 2, 0): quality 0.5, 0.75, 0.75, 0.75, 1.0; 0.95 is 80% of the way through the
    # 4th escalation: strong share 0.95; cost 4 cheap calls + 3.8 strong = 4.2 of all-strong 4.
    plain = gated_at95(skip, escalate, weak, strong, weak_cost, strong_cost, 0.0)
    assert plain["strong_share_at_95"] == pytest.approx(0.95)
    assert plain["cost_share_of_all_strong_at_95"] == pytest.approx(4.2 / 4)
    # Gated, skip share 1/4: row 0 goes straight to the strong tier (1.0, no cheap call); rows
    # 1-3 get cheap answers (0.3): quality 0.75; escalating row 1 reaches 1.0, so 0.95 is 80% of
    # that step: strong share (1 + 0.8) / 4, cost 1.0 + 0.3 + 0.8 = 2.1.
    gated = gated_at95(skip, escalate, weak, strong, weak_cost, strong_cost, 0.25)
    assert gated["strong_share_at_95"] == pytest.approx(0.45)
    assert gated["cost_share_of_all_strong_at_95"] == pytest.approx(2.1 / 4)
    assert gated["escalated_share"] == pytest.approx(0.2)
    # Skipping every request is all-strong, with no cheap call at all.
    everything = gated_curve(skip, escalate, weak, strong, weak_cost, strong_cost, 1.0)
    assert everything.cost_at(1.0) == pytest.approx(4.0)
    # Choosing the skip share on these rows picks the cheapest.
    best, tried = choose_skip_share(skip, escalate, weak, strong, weak_cost, strong_cost)
    assert best == min(tried, key=lambda t: t["cost_share_of_all_strong_at_95"])["skip_share"]


def test_folds_run_in_forked_workers_give_the_serial_results() -> None:
    data = rows(300, seed=2)
    prompts = [str(r["prompt"]) for r in data]
    weak = np.array([float(bool(r["small"])) for r in data])
    strong = np.array([float(bool(r["big"])) for r in data])
    counts = tf_rows(prompts)
    folds = group_fold_ids(prompt_groups(prompts), 5, 0)
    serial = cross_validated_gain(counts, weak, strong, folds, c=1.0)

    # Closures are not picklable: the workers must inherit them by fork.
    def fold(k: int) -> Callable[[], np.ndarray]:
        return lambda: cross_validated_gain(counts, weak, strong, folds, c=1.0)[folds == k]

    jobs = [fold(k) for k in range(5)]
    pieces = parallel(jobs, 3)
    for k in range(5):
        assert np.allclose(pieces[k], serial[folds == k])
