"""Features for the learned router: a static word embedding, token n-grams and text statistics.

The default embedding is WordLlama (``l2_supercat``, 256 dimensions), loaded by
``hybridgate.embedder`` (shared with the semantic cache and the embedded embeddings backend).

One tokenisation feeds three blocks, each named in the router file:
- ``embedding``: the mean of the tokens' vectors (what WordLlama's ``embed`` computes);
- ``tokens``: token unigrams and hashed bigrams, log term frequency x IDF, L2-normalised, so a
  linear model can weigh single words the embedding averages away;
- ``stats``: ``textstats.prompt_stats`` (and ``answer_stats`` when the router judges an answer).

Very long texts are cut to a head and a tail window first, which bounds the decision time.
Part of the router (step 2 of the flow): CPU only, no I/O after loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.embedder import EMBEDDER, WordLlamaEmbedder
from hybridgate.errors import ConfigError
from hybridgate.router.sparse import SparseRows
from hybridgate.router.textstats import (
    ANSWER_STAT_NAMES,
    PROMPT_STAT_NAMES,
    answer_stats,
    prompt_stats,
)

BIGRAM_PRIME = 1_000_003


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a router file was trained on; stored in the file, checked at load."""

    embedder: str = EMBEDDER
    token_buckets: int = 1 << 17  # unigrams use the first vocab-size slots, bigrams the rest
    answer: bool = False  # also featurise the cheap tier's answer (a cascade verifier)

    def to_json(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "token_buckets": self.token_buckets, "answer": self.answer}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(str(data["embedder"]), int(data["token_buckets"]), bool(data["answer"]))

    def stat_names(self) -> tuple[str, ...]:
        return PROMPT_STAT_NAMES + (ANSWER_STAT_NAMES if self.answer else ())


@dataclass(frozen=True)
class Features:
    """Feature rows for ``n`` texts: a dense block (embeddings + stats) and a sparse one."""

    dense: NDArray[np.float64]
    tokens: SparseRows


class Featurizer:
    """Turns prompts (and, for a cascade verifier, answers) into ``Features``."""

    def __init__(self, spec: FeatureSpec, embedder: WordLlamaEmbedder) -> None:
        if spec.embedder != embedder.name:
            raise ConfigError(f"router was trained with embedder '{spec.embedder}', not '{embedder.name}'")
        self.spec = spec
        self.embedder = embedder

    @property
    def dense_names(self) -> list[str]:
        """Names of the dense columns, in order: embedding dimensions, then statistics."""
        answer = [f"answer_embedding[{i}]" for i in range(self.embedder.dim)] if self.spec.answer else []
        prompt = [f"embedding[{i}]" for i in range(self.embedder.dim)]
        return prompt + answer + list(self.spec.stat_names())

    def one(self, prompt: str, answer: str | None = None) -> Features:
        """One request's features, built without the batch path's stacking (the request path)."""
        ids = self.embedder.token_ids(prompt)
        parts = [self.embedder.pool(ids).astype(np.float64)]
        stats = prompt_stats(prompt)
        if self.spec.answer:
            parts.append(self.embedder.pool(self.embedder.token_ids(answer or "")).astype(np.float64))
            stats += answer_stats(answer or "", prompt)
        parts.append(np.asarray(stats, dtype=np.float64))
        dense = np.concatenate(parts).reshape(1, -1)
        buckets, counts = self.token_grams(ids)
        indptr = np.array([0, len(buckets)], dtype=np.int64)
        return Features(dense, SparseRows(indptr, buckets, counts, self.spec.token_buckets))

    def many(self, prompts: list[str], answers: list[str] | None = None) -> Features:
        ids = self.embedder.token_ids_many(prompts)
        answer_ids = None
        if self.spec.answer:
            answers = answers if answers is not None else [""] * len(prompts)
            answer_ids = self.embedder.token_ids_many(answers)
        return self._build(prompts, ids, answers or [""] * len(prompts), answer_ids)

    def _build(
        self,
        prompts: list[str],
        ids: list[NDArray[np.int64]],
        answers: list[str],
        answer_ids: list[NDArray[np.int64]] | None,
    ) -> Features:
        blocks = [np.stack([self.embedder.pool(i) for i in ids]).astype(np.float64)]
        if answer_ids is not None:
            blocks.append(np.stack([self.embedder.pool(i) for i in answer_ids]).astype(np.float64))
        stats = [prompt_stats(p) for p in prompts]
        if self.spec.answer:
            stats = [s + answer_stats(a, p) for s, a, p in zip(stats, answers, prompts, strict=True)]
        blocks.append(np.asarray(stats, dtype=np.float64))
        grams = [self.token_grams(i) for i in ids]
        return Features(np.hstack(blocks), SparseRows.from_rows(grams, self.spec.token_buckets))

    def token_grams(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Bucket ids and log term frequencies of one text's token unigrams and bigrams."""
        vocab = self.embedder.vocab_size
        spare = self.spec.token_buckets - vocab
        unigrams = np.clip(ids, 0, vocab - 1)
        bigrams = vocab + (ids[:-1] * BIGRAM_PRIME + ids[1:]) % spare
        buckets, counts = np.unique(np.concatenate([unigrams, bigrams]), return_counts=True)
        return buckets, np.log1p(counts.astype(np.float64))
