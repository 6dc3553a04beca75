"""Write ``tests/hybridgate_bench/data/hard_negatives.jsonl``: question pairs a semantic cache must not merge.

Offline tool, never imported by the gateway. Every pair is written here by hand from templates, in
six categories of near misses (negation, roles and direction, entities, numbers, dates, scope),
plus true paraphrases (label 1) so the recall paid for safety is measured on the same file.
``hybridgate bench cache --hard-negatives FILE`` reports the false-hit rate per category.
Run from the repo root: ``.venv/bin/python -m bench.hard_negatives``; the output is deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "cache" / "data" / "hard_negatives.jsonl"

NEGATION = [
    (
        "Is {x} safe to eat?",
        "Is {x} not safe to eat?",
        ["raw chicken", "sushi", "expired yogurt", "raw cookie dough", "moldy bread"],
    ),
    (
        "Should I take {x} with food?",
        "Should I take {x} without food?",
        ["ibuprofen", "vitamin D", "iron supplements", "antibiotics"],
    ),
    ("Can I use {x} with a VPN?", "Can I use {x} without a VPN?", ["Netflix", "online banking", "Zoom"]),
    ("Why does my {x} turn on?", "Why doesn't my {x} turn on?", ["laptop", "phone", "dishwasher", "router"]),
    ("Is {x} a good investment?", "Is {x} never a good investment?", ["gold", "real estate"]),
    ("Do I need a visa to visit {x}?", "Do I not need a visa to visit {x}?", ["Japan", "Brazil", "Kenya"]),
    (
        "How do I know if my {x} is working?",
        "How do I know if my {x} is not working?",
        ["thermostat", "smoke detector", "water heater"],
    ),
]
ROLES = [
    (
        "How do I transfer money from my {a} account to my {b} account?",
        "How do I transfer money from my {b} account to my {a} account?",
        [("savings", "current"), ("checking", "savings"), ("brokerage", "checking")],
    ),
    (
        "How do I convert {a} to {b}?",
        "How do I convert {b} to {a}?",
        [
            ("celsius", "fahrenheit"),
            ("miles", "kilometers"),
            ("pounds", "kilograms"),
            ("inches", "centimeters"),
            ("pdf", "word"),
            ("mp4", "gif"),
        ],
    ),
    (
        "Translate this sentence from {a} to {b}.",
        "Translate this sentence from {b} to {a}.",
        [("english", "french"), ("spanish", "german"), ("italian", "portuguese")],
    ),
    (
        "Can a {a} fire a {b}?",
        "Can a {b} fire a {a}?",
        [("manager", "employee"), ("tenant", "landlord"), ("client", "lawyer")],
    ),
    (
        "Why do {a} chase {b}?",
        "Why do {b} chase {a}?",
        [("cats", "mice"), ("dogs", "cats"), ("lions", "zebras")],
    ),
    (
        "How do I move files from my {a} to my {b}?",
        "How do I move files from my {b} to my {a}?",
        [("phone", "laptop"), ("laptop", "external drive"), ("tablet", "desktop")],
    ),
    (
        "What is the flight time from {a} to {b}?",
        "What is the flight time from {b} to {a}?",
        [("london", "new york"), ("paris", "tokyo")],
    ),
    (
        "Does the {a} pay the {b}'s legal fees?",
        "Does the {b} pay the {a}'s legal fees?",
        [("buyer", "seller"), ("employer", "employee")],
    ),
    (
        "Is {a} faster than {b}?",
        "Is {b} faster than {a}?",
        [("python", "java"), ("rust", "go"), ("walking", "cycling")],
    ),
]
ENTITIES = [
    ("What is the capital of {x}?", ["Australia", "Austria", "Canada", "Chile", "Niger", "Nigeria"]),
    ("How do I install {x} on Ubuntu?", ["python", "java", "docker", "postgres", "redis"]),
    ("What is the population of {x}?", ["India", "Indonesia", "Sweden", "Switzerland"]),
    ("Who founded {x}?", ["Microsoft", "Apple", "Amazon", "Netflix"]),
    ("What are the side effects of {x}?", ["aspirin", "ibuprofen", "paracetamol", "melatonin"]),
    ("How do I cancel my {x} subscription?", ["spotify", "netflix", "hulu", "audible"]),
]
NUMBERS = [
    ("Is {x} a prime number?", ["17", "21", "91", "97"]),
    ("What is 15% of {x}?", ["80", "90", "120"]),
    ("How many calories are in {x} grams of rice?", ["100", "200", "150"]),
    ("What size generator do I need for a {x} square foot house?", ["1500", "2000", "3000"]),
    ("How long does it take to drive {x} miles?", ["50", "300", "500"]),
    ("Can I retire at {x} with one million dollars?", ["55", "60", "45"]),
]
DATES = [
    ("What happened in Europe in {x}?", ["1989", "1991", "1945", "1968"]),
    ("Is the office open on {x}?", ["Monday", "Sunday", "Saturday"]),
    ("What is the weather usually like in Paris in {x}?", ["January", "July", "October"]),
    ("Who won the World Cup in {x}?", ["2014", "2018", "2022"]),
]
SCOPE = [
    ("How do I delete a file in Linux?", "How do I delete all files in a folder in Linux?"),
    ("How do I reset my password?", "How do I reset my router password?"),
    ("What is the tax rate for a single filer?", "What is the tax rate for a married couple filing jointly?"),
    ("How do I remove a stain from a shirt?", "How do I remove a stain from a carpet?"),
    ("How do I back up my phone?", "How do I back up my whole computer?"),
    ("What is the best laptop for students?", "What is the best laptop for gaming?"),
    ("How much does it cost to replace a car battery?", "How much does it cost to replace a car engine?"),
    ("How do I get a refund for one item?", "How do I get a refund for my whole order?"),
    ("Can I bring a laptop in my carry-on?", "Can I bring a power bank in my checked luggage?"),
    ("How do I learn to swim as an adult?", "How do I teach my child to swim?"),
    ("What is the minimum wage in California?", "What is the average wage in California?"),
    ("How do I close my bank account?", "How do I open a bank account?"),
    ("What are the symptoms of a cold?", "What are the symptoms of a heart attack?"),
    ("How do I sort a list in Python?", "How do I sort a dictionary by value in Python?"),
    ("How do I unsubscribe from one newsletter?", "How do I unsubscribe from all emails?"),
]
MEASURES = [
    ("How tall is Mount Everest?", "How old is Mount Everest?"),
    ("How far is the moon?", "How big is the moon?"),
    ("How long is a marathon?", "How hard is a marathon?"),
    ("How deep is Lake Baikal?", "How cold is Lake Baikal?"),
    ("How heavy is a blue whale?", "How fast is a blue whale?"),
    ("How expensive is a trip to Iceland?", "How long is a trip to Iceland?"),
]
PARAPHRASES = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("What is the capital of Australia?", "What's the capital city of Australia?"),
    ("How do I convert celsius to fahrenheit?", "How can I convert celsius into fahrenheit?"),
    ("Is raw chicken safe to eat?", "Is it safe to eat raw chicken?"),
    ("How do I cancel my spotify subscription?", "How can I cancel my spotify subscription?"),
    ("What are the side effects of aspirin?", "What side effects does aspirin have?"),
    ("How do I install docker on Ubuntu?", "How can I install docker on Ubuntu?"),
    ("Who founded Microsoft?", "Who was the founder of Microsoft?"),
    ("Is 17 a prime number?", "Is the number 17 prime?"),
    ("What is 15% of 80?", "What's 15 percent of 80?"),
    ("How do I delete a file in Linux?", "How can I delete a file on Linux?"),
    ("What is the best laptop for students?", "Which laptop is best for students?"),
    ("How do I learn Python quickly?", "What is the fastest way to learn Python?"),
    ("How do I back up my phone?", "What is the best way to back up my phone?"),
    ("Why doesn't my laptop turn on?", "Why won't my laptop turn on?"),
    (
        "How do I transfer money from my savings account to my current account?",
        "How can I move money from my savings account to my current account?",
    ),
    (
        "Translate this sentence from english to french.",
        "Please translate this sentence from english into french.",
    ),
    ("What is the flight time from london to new york?", "How long is the flight from london to new york?"),
    ("How many calories are in 100 grams of rice?", "How many calories does 100 grams of rice have?"),
    ("Who won the World Cup in 2014?", "Which country won the World Cup in 2014?"),
    ("What is the population of India?", "How many people live in India?"),
    ("How do I close my bank account?", "How can I close my bank account?"),
    ("Is the office open on Monday?", "Is the office open on Mondays?"),
    ("Should I take ibuprofen with food?", "Should ibuprofen be taken with food?"),
    ("Do I need a visa to visit Japan?", "Do I need a visa for visiting Japan?"),
    ("How do I remove a stain from a shirt?", "How can I get a stain out of a shirt?"),
    ("What is the minimum wage in California?", "What's the minimum wage in California?"),
    ("How do I sort a list in Python?", "How can I sort a list in Python?"),
    ("Can a manager fire an employee?", "Is a manager allowed to fire an employee?"),
    (
        "What is the weather usually like in Paris in January?",
        "What is the typical weather in Paris in January?",
    ),
]


def pairs() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []

    def add(a: str, b: str, category: str, label: int = 0) -> None:
        out.append({"text_a": a, "text_b": b, "label": label, "category": category})

    for one, other, fillers in NEGATION:
        for x in fillers:
            add(one.format(x=x), other.format(x=x), "negation")
    for one, other, swaps in ROLES:
        for a, b in swaps:
            add(one.format(a=a, b=b), other.format(a=a, b=b), "roles")
    for category, table in (("entities", ENTITIES), ("numbers", NUMBERS), ("dates", DATES)):
        for template, values in table:
            for i, x in enumerate(values):
                for y in values[i + 1 :]:
                    add(template.format(x=x), template.format(x=y), category)
    for a, b in SCOPE:
        add(a, b, "scope")
    for a, b in MEASURES:
        add(a, b, "measure")
    for a, b in PARAPHRASES:
        add(a, b, "paraphrase", label=1)
    return out


def main() -> None:
    rows = pairs()
    OUT.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} pairs to {OUT}")


if __name__ == "__main__":
    main()
