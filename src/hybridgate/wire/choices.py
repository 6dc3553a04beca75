"""``n > 1`` for backends that answer one choice per call: n answers merged into one completion.

Pure: the cascade makes the calls (wire/fields.py says which backend kinds need them); this
numbers the choices 0..n-1 and adds up the usage, as one upstream answering ``n`` would. No I/O.
"""

from __future__ import annotations

from hybridgate.types import ChatResponse, Json, Usage


def merge_choices(answers: list[ChatResponse]) -> ChatResponse:
    """One ``chat.completion`` holding the first choice of each answer, in order."""
    body: Json = dict(answers[0].body)
    choices = []
    for index, answer in enumerate(answers):
        first = (answer.body.get("choices") or [{}])[0]
        choices.append({**first, "index": index})
    usage = Usage(
        # The prompt is the same for every call; upstreams answering n count it once.
        answers[0].usage.prompt_tokens,
        sum(answer.usage.completion_tokens for answer in answers),
    )
    body["choices"] = choices
    body["usage"] = usage.as_openai()
    return ChatResponse(body)
