"""Synthetic outcome data for router tests: two kinds of prompts with different tier outcomes.

"Easy" prompts (short chit-chat) are answered well by both tiers; "hard" prompts (multi-step
arithmetic word problems) mostly only by the strong tier. A router that learns anything should
send the hard ones to the strong tier. Outcomes are random draws, so there is noise to calibrate
against. Nothing here reads the shared benchmark data.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

EASY = ["say hello to {n}", "thank {n} for the flowers", "wish {n} a happy birthday", "greet {n} politely"]
HARD = [
    "{n} buys {a} boxes of {b} pencils and gives away {c}. How many pencils are left after {d} days?",
    "A train travels {a} km at {b} km/h and then {c} km at {d} km/h. What is its average speed?",
    "If {n} saves {a}% of {b} dollars each week for {c} weeks, how much is saved after {d} weeks?",
]
NAMES = ["Ada", "Bob", "Chen", "Dana", "Eve", "Farid", "Gita", "Hugo"]

# P(correct) per kind: (cheap tier, strong tier)
RATES = {"easy": (0.95, 0.97), "hard": (0.2, 0.9)}


def prompt(rng: random.Random, kind: str) -> str:
    template = rng.choice(EASY if kind == "easy" else HARD)
    numbers = {k: rng.randint(2, 99) for k in "abcd"}
    return template.format(n=rng.choice(NAMES), **numbers)


def rows(n: int, seed: int = 0, hard_share: float = 0.4) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for _ in range(n):
        kind = "hard" if rng.random() < hard_share else "easy"
        cheap_rate, strong_rate = RATES[kind]
        out.append(
            {
                "prompt": prompt(rng, kind),
                "small": rng.random() < cheap_rate,
                "big": rng.random() < strong_rate,
                "cost_small": 0.0001,
                "cost_big": 0.003,
                "kind": kind,
            }
        )
    return out


def write_csv(path: Path, data: list[dict[str, object]], columns: list[str] | None = None) -> Path:
    columns = columns or ["prompt", "small", "big", "cost_small", "cost_big"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(data)
    return path


def write_jsonl(path: Path, data: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in data), encoding="utf-8")
    return path
