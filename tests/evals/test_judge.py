"""Parsing an LLM judge's verdict from the many shapes models answer in (pure, no server).

The judge's round trip through the gateway and a stand-in upstream is in test_runner.py.
"""

from __future__ import annotations

import pytest

from hybridgate.evals.graders import Answer
from hybridgate.evals.judge import judge_request, parse_verdict
from hybridgate.evals.specs import Judge


@pytest.mark.parametrize(
    ("text", "verdict", "reason"),
    [
        ("PASS\nThe answer mentions June.", "pass", "The answer mentions June."),
        ("**FAIL** - it never mentions June", "fail", "it never mentions June"),
        ("Soft: covers half of the rubric.", "soft", "covers half of the rubric."),
        ("Verdict: partial. Missing the date.", "soft", "Missing the date."),
        ("The answer is good. Verdict: PASS", "pass", "The answer is good."),
        ('```json\n{"verdict": "FAIL", "reason": "off topic"}\n```', "fail", "off topic"),
        ('{"grade": "pass"}', "pass", ""),
        ("## Result\nFailed, the summary is wrong", "fail", "the summary is wrong"),
    ],
)
def test_parse_verdict(text: str, verdict: str, reason: str) -> None:
    grade = parse_verdict(text)
    assert grade is not None
    assert grade.verdict == verdict
    assert " ".join(grade.reason.split()) == " ".join(reason.split())


@pytest.mark.parametrize(
    "text", ["", "The rubric asks whether the answer mentions June.", '{"score": 3}', "passes"]
)
def test_no_verdict(text: str) -> None:
    assert parse_verdict(text) is None


def test_labelled_verdict_wins_over_an_earlier_bare_word() -> None:
    grade = parse_verdict("It does not fail to mention June. Verdict: pass")
    assert grade is not None and grade.verdict == "pass"


def test_judge_request_shows_question_answer_reference_and_rubric() -> None:
    spec = Judge(grader="judge", rubric="mentions June", reference="June", max_tokens=20)
    request = judge_request(
        spec, "When is the launch?", Answer("", ({"function": {"name": "f", "arguments": "{}"}},))
    )
    assert request.max_tokens == 20 and request.temperature == 0
    text = request.messages[1].text()
    parts = [
        "Question:\nWhen is the launch?",
        "Answer:\nf({})",
        "Reference answer:\nJune",
        "Rubric:\nmentions June",
    ]
    assert text == "\n\n".join(parts)
    assert "PASS" in request.messages[0].text()
