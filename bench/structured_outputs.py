"""How often does the embedded model return JSON that validates against the requested schema?

Generates N JSON-schema requests (objects with string, integer, number, boolean, enum and array
fields, some required, some optional), sends each to the embedded SmolLM2 backend through the
gateway's own backend code (grammar-constrained decoding), and validates every answer with
``jsonschema``: as the model produced it (``valid``), and as the gateway returns it after its
answer checks (``valid_after_checks``: cascade/checks.py repairs a truncated or broken JSON text, and on a
cascade route a still-invalid answer would escalate). Prints one JSON object.

    .venv/bin/python bench/structured_outputs.py [--cases 100] [--max-tokens 160] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from typing import Any

from jsonschema import Draft202012Validator

from hybridgate.backends.embedded.backend import EmbeddedBackend
from hybridgate.cascade.checks import run_checks
from hybridgate.config import EmbeddedBackend as EmbeddedConfig
from hybridgate.types import ChatRequest

FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("name", {"type": "string"}, "a person's name"),
    ("city", {"type": "string"}, "a city"),
    ("age", {"type": "integer", "minimum": 0, "maximum": 120}, "an age in years"),
    ("price", {"type": "number", "minimum": 0}, "a price"),
    ("in_stock", {"type": "boolean"}, "whether it is in stock"),
    ("colour", {"type": "string", "enum": ["red", "green", "blue"]}, "a colour"),
    ("tags", {"type": "array", "items": {"type": "string"}, "maxItems": 3}, "up to three tags"),
    ("rating", {"type": "integer", "minimum": 1, "maximum": 5}, "a rating from 1 to 5"),
]


def make_case(rng: random.Random) -> tuple[str, dict[str, Any]]:
    chosen = rng.sample(FIELDS, rng.randint(1, 4))
    schema = {
        "type": "object",
        "properties": {name: spec for name, spec, _ in chosen},
        "required": [name for name, _, _ in chosen if rng.random() < 0.7],
        "additionalProperties": False,
    }
    prompt = "Return JSON with " + ", ".join(f"{name} ({what})" for name, _, what in chosen) + "."
    return prompt, schema


async def run(cases: int, max_tokens: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    backend = EmbeddedBackend("local", EmbeddedConfig(type="embedded"))
    valid = valid_after = 0
    failures: list[dict[str, Any]] = []
    latencies: list[float] = []
    truncated = 0
    for index in range(cases):
        prompt, schema = make_case(rng)
        request = ChatRequest.model_validate(
            {
                "model": "local",
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 0.7,
                "seed": index,
                "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}},
            }
        )
        started = time.perf_counter()
        response = await backend.complete(request, "local")
        latencies.append((time.perf_counter() - started) * 1000)
        choice = response.body["choices"][0]
        truncated += choice["finish_reason"] == "length"
        problem = _problem(choice["message"]["content"] or "", schema)
        checked = response
        for check in run_checks(request, response):
            checked = check.repaired or checked
        valid_after += _problem(checked.body["choices"][0]["message"]["content"] or "", schema) is None
        if problem is None:
            valid += 1
        else:
            failures.append({"case": index, "problem": problem, "finish_reason": choice["finish_reason"]})
    await backend.aclose()
    return {
        "cases": cases,
        "valid": valid,
        "valid_share": valid / cases,
        "valid_after_checks": valid_after,
        "valid_after_checks_share": valid_after / cases,
        "truncated": truncated,
        "latency_p50_ms": statistics.median(latencies),
        "max_tokens": max_tokens,
        "failures": failures[:10],
    }


def _problem(content: str, schema: dict[str, Any]) -> str | None:
    try:
        value = json.loads(content)
    except ValueError as exc:
        return f"not JSON: {exc}"
    error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    return None if error is None else error.message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.cases, args.max_tokens, args.seed)), indent=2))


if __name__ == "__main__":
    main()
