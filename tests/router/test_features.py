"""The request path's fast tokenisation and features equal the plain ones, id for id, bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

import hybridgate.embedder as embedder_module
from hybridgate.embedder import HEAD_CHARS, TAIL_CHARS, WordLlamaEmbedder, window
from hybridgate.router.features import FeatureSpec, Featurizer

EDGES = [
    "",
    " ",
    "   ",
    "a  b",
    "  leading spaces",
    "trailing spaces   ",
    "tabs\tand\nnew  \n  lines\r\n",
    "\u2581\u2581already marked \u2581 spaces",
    "été 中文  \U0001f600 emoji, accents: naïve café",
    "special tokens <s> and </s> and <unk> inside",
    "a<s>b",
    "٣ Arabic-Indic digits ٤٥ and 12,345.67",
    "Which is NOT prime?\nA. 2\nB. 3\nC. 9\nD. 5",
    "x" * 5000,
    ("word " * 700) + "end",
]


def random_texts(embedder: WordLlamaEmbedder, n: int, seed: int) -> list[str]:
    """Texts stitched from vocabulary pieces, spaces and punctuation, some past the window."""
    rng = random.Random(seed)
    vocab = [t.replace("\u2581", " ") for t in embedder.tokenizer.get_vocab() if not t.startswith("<")]
    texts = []
    for _ in range(n):
        size = rng.choice([3, 20, 200, (HEAD_CHARS + TAIL_CHARS) // 2])
        parts = [rng.choice(vocab) + rng.choice(["", "", " ", "  ", "\n", ", ", "."]) for _ in range(size)]
        texts.append("".join(parts))
    return texts


def plain_ids(embedder: WordLlamaEmbedder, text: str) -> list[int]:
    return list(embedder.tokenizer.encode(window(text), add_special_tokens=False).ids)


def test_token_ids_equal_the_tokenizer(embedder: WordLlamaEmbedder) -> None:
    texts = EDGES + random_texts(embedder, 300, seed=1)
    for text in texts + texts:  # the second pass reads every piece from memory
        assert embedder.token_ids(text).tolist() == plain_ids(embedder, text), text[:80]


def test_token_ids_stay_exact_when_the_memory_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedder_module, "PIECE_CACHE", 40)
    fresh = WordLlamaEmbedder()
    longest = 0
    for text in random_texts(fresh, 60, seed=2) + EDGES:
        ids = fresh.token_ids(text).tolist()
        assert ids == plain_ids(fresh, text)
        longest = max(longest, len(ids))
        assert len(fresh._cache) <= 40 + longest  # cleared when full, not grown past the bound


@pytest.mark.parametrize("answer", [False, True])
def test_one_request_features_equal_the_batch_features(embedder: WordLlamaEmbedder, answer: bool) -> None:
    # The batch path (training, evaluation) tokenises with the plain tokenizer; the request path
    # with the memory of pieces: the router must see the same numbers either way.
    featurizer = Featurizer(FeatureSpec(answer=answer), embedder)
    prompts = EDGES + random_texts(embedder, 40, seed=3)
    answers = list(reversed(prompts)) if answer else None
    batch = featurizer.many(prompts, answers)
    for i, prompt in enumerate(prompts):
        one = featurizer.one(prompt, answers[i] if answers else None)
        assert np.array_equal(one.dense[0], batch.dense[i])
        start, end = batch.tokens.indptr[i], batch.tokens.indptr[i + 1]
        assert one.tokens.indices.tolist() == batch.tokens.indices[start:end].tolist()
        assert one.tokens.data.tolist() == batch.tokens.data[start:end].tolist()
