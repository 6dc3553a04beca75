"""The semantic matcher and its guards: hand-written near misses are rejected, paraphrases hit.

Guard cases pass a similarity above the threshold, so they test the guard alone; the paraphrase
and end-to-end cases embed with the real WordLlama embedder (loaded once for the module).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from hybridgate.cache.guards import difference, surface
from hybridgate.cache.semantic import SemanticMatcher
from hybridgate.embedder import WordLlamaEmbedder


@pytest.fixture(scope="module")
def matcher() -> Iterator[SemanticMatcher]:
    yield SemanticMatcher(WordLlamaEmbedder(), threshold=0.9)


@pytest.mark.parametrize(
    ("query", "candidate", "reason"),
    [
        ("Is coffee good for your health?", "Is coffee not good for your health?", "negation"),
        (
            "How do I transfer money from my savings account to my current account?",
            "How do I transfer money from my current account to my savings account?",
            "roles",
        ),
        ("How do I convert celsius to fahrenheit?", "How do I convert fahrenheit to celsius?", "roles"),
        ("Why do cats chase mice?", "Why do mice chase cats?", "roles"),
        ("Does the buyer pay the seller's fees?", "Does the seller pay the buyer's fees?", "roles"),
        ("How tall is Mount Everest?", "How old is Mount Everest?", "measure"),
        ("How do I bake bread without yeast?", "How do I bake bread with yeast?", "negation"),
        ("Why doesn't my car start?", "Why does my car start?", "negation"),
        ("What is 15% of 200?", "What is 20% of 200?", "number"),
        ("Best phone under 300 dollars", "Best phone under 500 dollars", "number"),
        ("Split the bill between three people", "Split the bill between four people", "number"),
        ("Who won the World Cup in 2014?", "Who won the World Cup in 2018?", "date"),
        ("Flights to Rome on Monday", "Flights to Rome on Friday", "date"),
        ("Visa requirements for Canada", "Visa requirements for Germany", "entity"),
        ("What do people in Paris eat?", "What do people in London eat?", "entity"),
        ("How do I install PostgreSQL?", "How do I install MySQL?", "entity"),
        ("Why is Science Diet good for dogs?", "Why is Science Diet bad for dogs?", "antonym"),
        ("Should I buy bitcoin before the halving?", "Should I buy bitcoin after the halving?", "antonym"),
        ("Is 5 greater than 3?", "Is 3 greater than 5?", "order"),
        ("Convert 100 USD to EUR", "Convert 100 EUR to USD", "order"),
    ],
)
def test_guards_reject_near_misses(matcher: SemanticMatcher, query: str, candidate: str, reason: str) -> None:
    assert matcher.rejection(query, candidate, similarity=0.99) == reason
    assert matcher.rejection(candidate, query, similarity=0.99) == reason
    assert not matcher.accept(query, candidate, 0.99)


@pytest.mark.parametrize(
    ("query", "candidate"),
    [
        ("How do I reset my password?", "How can I reset my password?"),
        ("What is the best way to learn guitar?", "What is the best way to learn the guitar?"),
        ("What's the capital of France?", "what is the capital of france"),
        ("Is 1,000 a lot?", "is 1000 a lot"),
        ("Explain ten tips for Python", "Explain 10 tips for Python"),
        ("What is good and bad about remote work?", "What is bad and good about remote work?"),
        ("Is raw chicken safe to eat?", "Is it safe to eat raw chicken?"),
        ("How many calories are in rice?", "How many calories does rice have?"),
    ],
)
def test_paraphrases_pass_the_guards(matcher: SemanticMatcher, query: str, candidate: str) -> None:
    assert difference(surface(query), surface(candidate)) is None
    assert matcher.accept(query, candidate, 0.95)


def test_threshold_rejects_below_it(matcher: SemanticMatcher) -> None:
    assert matcher.rejection("How do I reset my password?", "How can I reset my password?", 0.89) == (
        "below_threshold"
    )


def test_real_embeddings_hit_paraphrases_and_miss_other_questions(matcher: SemanticMatcher) -> None:
    query = matcher.embed("How do I reset my password?")
    paraphrase = matcher.embed("How can I reset my password?")
    other = matcher.embed("How do I train for a marathon?")
    assert query.dtype == np.float32 and abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert matcher.accept(
        "How do I reset my password?", "How can I reset my password?", float(query @ paraphrase)
    )
    assert matcher.rejection(
        "How do I reset my password?", "How do I train for a marathon?", float(query @ other)
    ) == ("below_threshold")


def test_embed_many_matches_embed(matcher: SemanticMatcher) -> None:
    texts = ["How do I reset my password?", "", "Visa requirements for Canada"]
    rows = matcher.embed_many(texts)
    assert rows.shape == (3, matcher.dim)
    for row, text in zip(rows, texts, strict=True):
        assert np.allclose(row, matcher.embed(text), atol=1e-6)
    assert not rows[1].any()  # no tokens: a zero vector, which matches nothing


def test_threshold_must_be_a_cosine() -> None:
    with pytest.raises(ValueError, match="threshold"):
        SemanticMatcher(WordLlamaEmbedder(), threshold=1.5)
