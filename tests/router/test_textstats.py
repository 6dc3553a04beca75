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


def test_fast_paths_equal_the_plain_definitions() -> None:
    # prompt_stats counts ASCII classes on UTF-8 bytes and skips a regex when its literal parts
    # are absent; the plain definitions (str.count per character, every regex run) must agree.
    import math
    import string

    from hybridgate.router.textstats import CODE, FRACTION, MATH_CHARS, NEGATION, NUMBER

    texts = [
        "",
        "Which is NOT prime?\nA. 2\nB. 3\nC. 9\nD. 5",
        "٣ Arabic-Indic digits ٤٥ only",  # \d matches them: not an ASCII-only text
        "ÉCOLE ÜBER naïve café 1/2 = 0.5 + (3 * 4) ^ 2",
        "def f(x): return {x; y}\n```python\n```",
        "undefined returned; never mind, it is false",
        "snake_def return_value deft",
        "\ud800 lone surrogate 7",
        "plain words and nothing else",
    ]
    for text in texts:
        plain = window(text)
        n = len(plain) + 1
        values = prompt_stats(text)
        stat_of = dict(zip(PROMPT_STAT_NAMES, values, strict=True))
        numbers = NUMBER.findall(plain)
        assert stat_of["digit_fraction"] == sum(map(plain.count, string.digits)) / n
        assert stat_of["math_char_fraction"] == sum(map(plain.count, MATH_CHARS)) / n
        assert stat_of["upper_fraction"] == sum(map(plain.count, string.ascii_uppercase)) / n
        assert stat_of["log_numbers"] == math.log1p(len(numbers))
        assert stat_of["longest_number"] == max(map(len, numbers), default=0) / 5
        assert stat_of["has_fraction"] == float(FRACTION.search(plain) is not None)
        assert stat_of["has_negation"] == float(NEGATION.search(plain) is not None)
        assert stat_of["has_code"] == float(CODE.search(plain) is not None)
