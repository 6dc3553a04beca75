"""Text statistics: the named lists line up, and the answer checks catch what they claim to."""

from __future__ import annotations

from hybridgate.embedder import window
from hybridgate.router.textstats import (
    ANSWER_STAT_NAMES,
    PROMPT_STAT_NAMES,
    answer_stats,
    check_equations,
    prompt_stats,
)


def stat(names: tuple[str, ...], values: list[float], name: str) -> float:
    return values[names.index(name)]


def test_prompt_stats_line_up_with_names() -> None:
    values = prompt_stats("Which is NOT prime?\nA. 2\nB. 3\nC. 9\nD. 5")
    assert len(values) == len(PROMPT_STAT_NAMES)
    assert stat(PROMPT_STAT_NAMES, values, "has_negation") == 1.0
    assert stat(PROMPT_STAT_NAMES, values, "log_option_lines") > 1.0
    assert prompt_stats("")[0] == 0.0


def test_equations_are_checked() -> None:
    assert check_equations("16 - 3 = 13 and 13 - 4 = 9, so <<9*2=18>>18 dollars") == (3, 0)
    assert check_equations("2/2 * 1/2 = 1/2 ... 5 + 4 = 10") == (0, 1)
    assert check_equations("1,000 + 200 = 1,200") == (1, 0)


def test_answer_stats_flag_suspicious_answers() -> None:
    prompt = "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts?"
    good = answer_stats("It takes 2 + 1 = 3 bolts.\n#### 3", prompt)
    bad = answer_stats("However, 2 + 1 = 4, so roughly 2.5 bolts", prompt)
    assert len(good) == len(ANSWER_STAT_NAMES)
    assert stat(ANSWER_STAT_NAMES, good, "answer_any_wrong") == 0.0
    assert stat(ANSWER_STAT_NAMES, bad, "answer_any_wrong") == 1.0
    assert stat(ANSWER_STAT_NAMES, bad, "answer_last_not_whole") == 1.0
    assert stat(ANSWER_STAT_NAMES, bad, "answer_hedges") > stat(ANSWER_STAT_NAMES, good, "answer_hedges")


def test_long_texts_are_windowed() -> None:
    text = "a" * 3000 + "MIDDLE" + "b" * 5000
    cut = window(text)
    assert "MIDDLE" not in cut and cut.startswith("a") and cut.endswith("b")
    assert window("short") == "short"
