"""Cheap text statistics for the learned router: how long, how numeric, how structured a text is.

Two families, each a fixed, named list of floats (the names go into the router file and into
explanations): ``prompt_stats`` describe a request; ``answer_stats`` describe a cheap tier's
answer for a cascade that decides whether to escalate (hedging, arithmetic that does not add up,
a final number that is not a whole number). Every statistic is O(length of the text) and
language-agnostic enough for any prompt; none is tuned to one benchmark's wording.

Pure functions, no I/O; part of the router (step 2 of the flow).
"""

from __future__ import annotations

import math
import re
import string

from hybridgate.embedder import window

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
OPTION_LINE = re.compile(r"^\s*\(?[A-Ha-h][.)]\s", re.MULTILINE)
NEGATION = re.compile(r"\b(?:NOT|EXCEPT|LEAST|never|false)\b")
CODE = re.compile(r"```|\bdef |\breturn\b|[{};]")
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
FRACTION = re.compile(r"\d/\d")
MATH_CHARS = "+-*/=^<>()"
# Substrings every match of a pattern contains: a text without them skips the (slower) regex.
NEGATION_WORDS = ("NOT", "EXCEPT", "LEAST", "never", "false")
CODE_MARKS = ("```", "def ", "return", "{", "}", ";")
LONG_WORD = 9
DIGITS = string.digits.encode()
MATH_BYTES = MATH_CHARS.encode()
UPPER = string.ascii_uppercase.encode()
HEDGE = re.compile(
    r"\b(?:however|actually|wait|assum\w*|approximately|round\w*|cannot|can't|impossible|"
    r"mistake|incorrect|re-?evaluat\w*|recalculat\w*|sorry|unclear)\b",
    re.IGNORECASE,
)
# "a op b = c" as step-by-step solutions write it; "= 1/2" is a fraction, not a result of 1.
EQUATION = re.compile(
    r"(-?\d[\d,]*(?:\.\d+)?)\s*([-+*/x\u00d7\u00f7])\s*(-?\d[\d,]*(?:\.\d+)?)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)(?![\d/])"
)

PROMPT_STAT_NAMES = (
    "log_chars",
    "log_words",
    "log_lines",
    "log_sentences",
    "digit_fraction",
    "log_numbers",
    "longest_number",
    "has_decimal",
    "has_percent",
    "has_currency",
    "has_fraction",
    "math_char_fraction",
    "upper_fraction",
    "log_questions",
    "mean_word_length",
    "long_word_fraction",
    "log_pipes",
    "log_option_lines",
    "has_negation",
    "has_code",
    "log_distinct_words",
)

ANSWER_STAT_NAMES = (
    "answer_log_chars",
    "answer_log_lines",
    "answer_hedges",
    "answer_no_number",
    "answer_last_not_whole",
    "answer_last_negative",
    "answer_equations_ok",
    "answer_equations_wrong",
    "answer_any_wrong",
    "answer_log_numbers",
    "answer_last_in_prompt",
    "answer_repeats_prompt",
)


def prompt_stats(text: str) -> list[float]:
    """One float per name in ``PROMPT_STAT_NAMES``."""
    full_length = len(text)
    text = window(text)
    n = len(text) + 1
    words = text.split()
    lengths = list(map(len, words))
    encoded = text.encode("utf-8", "surrogatepass")  # counts of ASCII characters, at C speed
    digits = _count(encoded, DIGITS)
    # \d matches other scripts' digits too: only an ASCII text without digits skips the search
    numbers = NUMBER.findall(text) if digits or not text.isascii() else []
    return [
        math.log1p(full_length),
        math.log1p(len(words)),
        math.log1p(text.count("\n")),
        math.log1p(len(SENTENCE_END.findall(text))),
        digits / n,
        math.log1p(len(numbers)),
        max(map(len, numbers), default=0) / 5,
        float(any("." in x for x in numbers)),
        float("%" in text),
        float("$" in text or "\u20ac" in text or "\u00a3" in text),
        float("/" in text and FRACTION.search(text) is not None),
        _count(encoded, MATH_BYTES) / n,
        _count(encoded, UPPER) / n,
        math.log1p(text.count("?")),
        sum(lengths) / len(words) / 5 if words else 0.0,
        len([x for x in lengths if x >= LONG_WORD]) / len(words) if words else 0.0,
        math.log1p(text.count("|")),
        math.log1p(len(OPTION_LINE.findall(text))),
        float(_has(text, NEGATION_WORDS) and NEGATION.search(text) is not None),
        float(_has(text, CODE_MARKS) and CODE.search(text) is not None),
        math.log1p(len(set(text.lower().split()))),
    ]


def _count(encoded: bytes, characters: bytes) -> int:
    """How many of the (ASCII) characters the UTF-8 text holds: a multi-byte character never
    contains an ASCII byte, and deleting bytes runs in C (str.count per character was 3x slower)."""
    return len(encoded) - len(encoded.translate(None, characters))


def _has(text: str, needles: tuple[str, ...]) -> bool:
    return any(needle in text for needle in needles)


def answer_stats(answer: str, prompt: str) -> list[float]:
    """One float per name in ``ANSWER_STAT_NAMES``: signs that a cheap answer went wrong."""
    full_length = len(answer)
    answer, prompt = window(answer), window(prompt)
    numbers = NUMBER.findall(answer)
    last = _number(numbers[-1]) if numbers else None
    ok, wrong = check_equations(answer)
    prompt_numbers = {_canonical(x) for x in NUMBER.findall(prompt)}
    head = prompt.strip()[:80]
    return [
        math.log1p(full_length),
        math.log1p(answer.count("\n")),
        math.log1p(len(HEDGE.findall(answer))),
        float(last is None),
        float(last is not None and last != round(last)),
        float(last is not None and last < 0),
        math.log1p(ok),
        math.log1p(wrong),
        float(wrong > 0),
        math.log1p(len(numbers)),
        float(bool(numbers) and _canonical(numbers[-1]) in prompt_numbers),
        float(bool(head) and head in answer),
    ]


def check_equations(text: str) -> tuple[int, int]:
    """How many ``a op b = c`` statements in the text are right and how many are wrong."""
    ok = wrong = 0
    for left, op, right, result in EQUATION.findall(text):
        a, b, c = _number(left), _number(right), _number(result)
        if a is None or b is None or c is None:
            continue
        value = _apply(a, op, b)
        if value is None:
            continue
        if abs(value - c) <= 1e-6 + 0.01 * abs(c):  # allow the rounding people write
            ok += 1
        else:
            wrong += 1
    return ok, wrong


def _apply(a: float, op: str, b: float) -> float | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op in "*x\u00d7":
        return a * b
    return a / b if b else None


def _number(text: str) -> float | None:
    try:
        return float(_canonical(text))
    except ValueError:
        return None


def _canonical(text: str) -> str:
    return text.replace(",", "").rstrip(".")
