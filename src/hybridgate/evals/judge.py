"""The LLM judge: another model grades an answer against a rubric, through the gateway.

Offline tooling (``hybridgate eval``); never imported by the request path. The judge is asked for
PASS, SOFT or FAIL on the first line and a one-sentence reason; models paraphrase, wrap that in
JSON or markdown, or ramble, so ``parse_verdict`` accepts all of those and says so honestly when
it finds no verdict at all (which counts as a fail: an ungraded answer has not passed).
"""

from __future__ import annotations

import json
import re

from hybridgate.config import GatewayConfig
from hybridgate.evals.calls import ask
from hybridgate.evals.graders import Answer, Grade, Verdict
from hybridgate.evals.specs import Judge
from hybridgate.pipeline.core import Pipeline
from hybridgate.types import ChatRequest, Json, Message

SYSTEM = (
    "You grade an AI assistant's answer against a rubric. Be strict and brief. Reply with one word "
    "on the first line: PASS if the answer meets the rubric, SOFT if it partly meets it, FAIL if it "
    "does not. On the second line give one short sentence saying why."
)
WORDS: dict[str, Verdict] = {
    "pass": "pass",
    "passed": "pass",
    "soft": "soft",
    "partial": "soft",
    "partially": "soft",
    "fail": "fail",
    "failed": "fail",
}
LABELLED = re.compile(
    r"(?:verdict|grade|result|decision)\W{0,4}(pass|passed|soft|partial|fail|failed)\b", re.I
)
BARE = re.compile(r"\b(pass|passed|soft|partial|partially|fail|failed)\b", re.I)
JSON_OBJECT = re.compile(r"\{.*?\}", re.S)


def judge_request(spec: Judge, question: str, answer: Answer) -> ChatRequest:
    parts = [f"Question:\n{question}", f"Answer:\n{answer.text() or '(empty)'}"]
    if spec.reference:
        parts.append(f"Reference answer:\n{spec.reference}")
    parts.append(f"Rubric:\n{spec.rubric}")
    return ChatRequest(
        model="judge",
        messages=[Message(role="system", content=SYSTEM), Message(role="user", content="\n\n".join(parts))],
        max_tokens=spec.max_tokens,
        temperature=0,
    )


async def judge(
    pipeline: Pipeline,
    config: GatewayConfig,
    spec: Judge,
    route: str,
    question: str,
    answer: Answer,
    policy: str | None = None,
) -> tuple[Grade, float]:
    """Grade ``answer`` with the judge on ``route``; returns the grade and the judge's cost.

    ``policy``: the graded request's effective privacy policy; the judge call keeps it."""
    request = judge_request(spec, question, answer)
    called = await ask(pipeline, config, request, route, "eval-judge", policy)
    text = Answer.from_response(called.completion.response).content
    grade = parse_verdict(text) or Grade("fail", f"judge gave no verdict: {text[:120]!r}")
    return grade, called.completion.cost_usd


def parse_verdict(text: str) -> Grade | None:
    """Find the judge's verdict in JSON, a ``Verdict: X`` label, or the first verdict word."""
    if found := _from_json(text):
        return found
    cleaned = text.replace("*", "").replace("#", "")
    match = LABELLED.search(cleaned) or BARE.search(cleaned)
    if match is None:
        return None
    reason = (cleaned[: match.start()] + " " + cleaned[match.end() :]).strip().lstrip(":,.-\u2014 ")
    return Grade(WORDS[match.group(1).lower()], " ".join(reason.split())[:200])


def _from_json(text: str) -> Grade | None:
    for candidate in JSON_OBJECT.findall(text):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and (grade := _grade_from_dict(data)):
            return grade
    return None


def _grade_from_dict(data: Json) -> Grade | None:
    for key in ("verdict", "grade", "result", "decision"):
        word = str(data.get(key, "")).strip().lower()
        if word in WORDS:
            return Grade(WORDS[word], str(data.get("reason") or data.get("explanation") or "")[:200])
    return None
