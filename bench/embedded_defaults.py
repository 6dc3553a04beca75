"""Embedded default sampling: "Say hello in French." with the old and the new defaults, side by side.

Runs the real SmolLM2-135M (llama.cpp) in-process; prints JSON: per setting, the median
completion tokens, how many answers hit the token limit, and the median share of repeated
word 3-grams (0: no loops). Usage: ``python bench/embedded_defaults.py [--runs 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics

from hybridgate.backends.embedded.backend import EmbeddedBackend
from hybridgate.config import EmbeddedBackend as EmbeddedConfig
from hybridgate.types import ChatRequest

SETTINGS = {
    "old (t=1, top_p=1, no penalty, 256)": {
        "temperature": 1.0, "top_p": 1.0, "repeat_penalty": 1.0, "default_max_tokens": 256,
    },
    "new (defaults)": {},
}  # fmt: skip


def repeated_share(text: str) -> float:
    words = text.split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


async def run(settings: dict[str, float], runs: int) -> dict[str, object]:
    backend = EmbeddedBackend("local", EmbeddedConfig.model_validate({"type": "embedded", **settings}))
    await backend.start()
    tokens, limited, repeats = [], 0, []
    try:
        for seed in range(runs):
            request = ChatRequest.model_validate(
                {
                    "model": "local",
                    "seed": seed,
                    "messages": [{"role": "user", "content": "Say hello in French."}],
                }
            )
            body = (await backend.complete(request, backend.model)).body
            text = body["choices"][0]["message"]["content"] or ""
            tokens.append(body["usage"]["completion_tokens"])
            limited += body["choices"][0]["finish_reason"] == "length"
            repeats.append(repeated_share(text))
    finally:
        await backend.aclose()
    return {
        "median_completion_tokens": statistics.median(tokens),
        "hit_token_limit": f"{limited}/{runs}",
        "median_repeated_3gram_share": round(statistics.median(repeats), 3),
        "example": text[:160],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    print(json.dumps({name: asyncio.run(run(s, runs)) for name, s in SETTINGS.items()}, indent=2))


if __name__ == "__main__":
    main()
