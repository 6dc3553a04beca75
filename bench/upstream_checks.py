"""What the upstream wire-format checks and the media URL policy cost per chunk and per request.

Offline tool, never imported by the gateway. Times, in one process and interleaved in rounds,
the work a cloud backend already did per stream chunk and per answer (``orjson.loads``) beside
the same work plus the checks (wire/upstream.py), and the cascade's media URL check
(backends/egress.py) on a request without media and with one image URL. Prints one JSON object
with medians over rounds, in microseconds.

    PYTHONPATH=src .venv/bin/python bench/upstream_checks.py            # 15 rounds
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import orjson

from hybridgate.backends.egress import MediaPolicy
from hybridgate.types import ChatRequest
from hybridgate.wire.upstream import check_chunk, check_completion

CHUNK = orjson.dumps(
    {
        "id": "chatcmpl-0123456789",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0123",
        "choices": [{"index": 0, "delta": {"content": " word"}, "logprobs": None, "finish_reason": None}],
    }
)
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-0123456789",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * 200, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 200, "total_tokens": 320},
    }
)


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    text_only = ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hello " * 50}]}
    )
    with_image = ChatRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "https://images.example.com/cat.png"}},
                    ],
                }
            ],
        }
    )
    policy = MediaPolicy()
    cases: dict[str, Callable[[], object]] = {
        "chunk_loads": lambda: orjson.loads(CHUNK),
        "chunk_loads_and_check": lambda: check_chunk(orjson.loads(CHUNK), "b"),
        "answer_loads": lambda: orjson.loads(ANSWER),
        "answer_loads_and_check": lambda: check_completion(orjson.loads(ANSWER), "b"),
        "media_check_text_only": lambda: policy.check(text_only, "b"),
        "media_check_one_url": lambda: policy.check(with_image, "b"),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits every case alike
        for name, fn in cases.items():
            samples[name].append(per_call_us(fn, args.calls))
    medians = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    result = {
        "command": "bench/upstream_checks.py",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "median_us": medians,
        "chunk_check_added_us": round(medians["chunk_loads_and_check"] - medians["chunk_loads"], 3),
        "answer_check_added_us": round(medians["answer_loads_and_check"] - medians["answer_loads"], 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
