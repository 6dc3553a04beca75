"""Checks on a finished answer: is it what the request asked for?

The cascade runs these on every non-streamed answer. A failed check lets it escalate to the next
backend of the route instead of handing a broken answer to the caller:

- structured output: with ``response_format`` ``json_object`` / ``json_schema``, the content must
  be JSON (and valid against the schema). Obvious breakage (a code fence, a trailing comma, a
  missing brace) is repaired with ``json-repair`` first: a repaired answer passes, and the caller
  gets the repaired JSON.
- tool calls: each call must name a tool of the request, with arguments that are a JSON object
  valid against that tool's ``parameters`` schema.

Pure functions over provider-neutral types: no I/O (a ``$ref`` never leaves its schema), no
knowledge of backends. CPU-bound: the cascade runs them on a thread with ``CHECK_TIMEOUT_S``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import json_repair
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from hybridgate.types import ChatRequest, ChatResponse, Json
from hybridgate.wire import schemas

# Validating one answer against its schemas; past it, the request fails (``SchemaTooSlowError``).
CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str = ""
    repaired: ChatResponse | None = None  # set when the check passed only after a repair


def run_checks(
    request: ChatRequest, response: ChatResponse, *, strict: bool = False, min_confidence: float | None = None
) -> list[CheckResult]:
    """Every applicable check. ``strict`` (cascade routes) adds: the answer is not empty and was not
    cut off by the token limit; ``min_confidence`` adds the mean token probability check."""
    results = []
    if (result := check_structured_output(request, response)) is not None:
        results.append(result)
        response = result.repaired or response
    if (result := check_tool_calls(request, response)) is not None:
        results.append(result)
    if strict:
        results.append(check_complete(response))
    if min_confidence is not None:
        results.append(check_confidence(response, min_confidence))
    return results


def has_schemas(request: ChatRequest) -> bool:
    """Whether checking an answer to ``request`` may validate JSON against a schema (CPU work)."""
    return bool(request.tools) or (request.response_format or {}).get("type") == "json_schema"


def check_complete(response: ChatResponse) -> CheckResult:
    message = _message(response)
    choice = (response.body.get("choices") or [{}])[0]
    if not (message.get("content") or "").strip() and not message.get("tool_calls"):
        return CheckResult("non_empty", False, "the answer is empty")
    if choice.get("finish_reason") == "length":
        return CheckResult("finish_reason", False, "the answer was cut off by the token limit")
    return CheckResult("complete", True)


def mean_token_probability(body: Json) -> float | None:
    """exp(mean log-probability) of the answer's tokens, from OpenAI-format ``logprobs``; None
    when the backend sent none."""
    choice = (body.get("choices") or [{}])[0]
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice, dict) else None
    values = [
        t["logprob"]
        for t in content or ()
        if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
    ]
    if not values:
        return None
    return math.exp(sum(values) / len(values))


def check_confidence(response: ChatResponse, min_confidence: float) -> CheckResult:
    confidence = mean_token_probability(response.body)
    if confidence is None:
        return CheckResult("confidence", True, "no logprobs: confidence not checked")
    if confidence < min_confidence:
        return CheckResult("confidence", False, f"mean token probability {confidence:.3f} < {min_confidence}")
    return CheckResult("confidence", True, f"mean token probability {confidence:.3f}")


def _message(response: ChatResponse) -> Json:
    choices = response.body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return message if isinstance(message, dict) else {}


def check_structured_output(request: ChatRequest, response: ChatResponse) -> CheckResult | None:
    kind = (request.response_format or {}).get("type")
    message = _message(response)
    if kind not in ("json_object", "json_schema") or message.get("tool_calls"):
        return None
    name = str(kind)
    content = message.get("content")
    if not isinstance(content, str):
        return CheckResult(name, False, "no text content to parse as JSON")
    value, repaired = _parse_or_repair(content)
    if value is None:
        return CheckResult(name, False, "content is not JSON and could not be repaired")
    if kind == "json_object" and not isinstance(value, dict):
        return CheckResult(name, False, "content is JSON but not an object")
    schema = ((request.response_format or {}).get("json_schema") or {}).get("schema")
    if kind == "json_schema" and isinstance(schema, dict) and (problem := schema_problem(schema, value)):
        return CheckResult(name, False, problem)
    fixed = _with_content(response, json.dumps(value)) if repaired else None
    return CheckResult(name, True, "repaired" if repaired else "", fixed)


def _parse_or_repair(content: str) -> tuple[Any, bool]:
    try:
        return json.loads(content), False
    except ValueError:
        pass
    value = json_repair.repair_json(content, return_objects=True)
    if value in ("", None) or (
        isinstance(value, dict | list) and not value and content.strip() not in ("{}", "[]")
    ):
        return None, False
    return value, True


def _with_content(response: ChatResponse, content: str) -> ChatResponse:
    body = copy.deepcopy(response.body)
    body["choices"][0]["message"]["content"] = content
    return ChatResponse(body)


def check_tool_calls(request: ChatRequest, response: ChatResponse) -> CheckResult | None:
    calls = _message(response).get("tool_calls")
    if not calls:
        return None
    tools = {
        str(t["function"]["name"]): t["function"].get("parameters") or {}
        for t in request.tools or []
        if isinstance(t.get("function"), dict) and "name" in t["function"]
    }
    for call in calls:
        function = call.get("function") or {}
        name = function.get("name")
        if name not in tools:
            return CheckResult("tool_call", False, f"call to unknown tool {name!r}")
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            return CheckResult("tool_call", False, f"arguments of {name!r} are not JSON")
        if not isinstance(arguments, dict):
            return CheckResult("tool_call", False, f"arguments of {name!r} are not a JSON object")
        if problem := schema_problem(tools[name], arguments):
            return CheckResult("tool_call", False, f"{name}: {problem}")
    return CheckResult("tool_call", True)


def schema_problem(schema: Json, value: Any) -> str | None:
    """The first way ``value`` breaks ``schema``, or None. A broken schema is the caller's problem
    and is not held against the model."""
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
        error = next(iter(validator.iter_errors(value)), None)
    except (SchemaError, Unresolvable, RecursionError):
        return None
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    return schemas.validator(schema)  # $refs resolve inside the schema or nowhere: nothing is fetched
