"""Features for the learned router: a static word embedding, token n-grams and text statistics.

The default embedding is WordLlama (``l2_supercat``, 256 dimensions), whose weights and tokenizer
ship inside the ``wordllama`` wheel. We read those two files directly with ``safetensors`` and
``tokenizers`` (wordllama's own dependencies) instead of importing ``wordllama``: its import
configures the root logger at INFO, which would make every library in the gateway chatty, and its
loader looks for the tokenizer elsewhere and then tries to download. Nothing here touches the
network.

One tokenisation feeds three blocks, each named in the router file:
- ``embedding``: the mean of the tokens' vectors (what WordLlama's ``embed`` computes);
- ``tokens``: token unigrams and hashed bigrams, log term frequency x IDF, L2-normalised, so a
  linear model can weigh single words the embedding averages away;
- ``stats``: ``textstats.prompt_stats`` (and ``answer_stats`` when the router judges an answer).

Very long texts are cut to a head and a tail window first, which bounds the decision time.
Part of the router (step 2 of the flow): CPU only, no I/O after loading.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hybridgate.errors import ConfigError
from hybridgate.router.sparse import SparseRows
from hybridgate.router.textstats import (
    ANSWER_STAT_NAMES,
    PROMPT_STAT_NAMES,
    answer_stats,
    prompt_stats,
    window,
)

EMBEDDER = "wordllama/l2_supercat_256"
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


class WordLlamaEmbedder:
    """WordLlama's static token vectors and tokenizer, loaded once from the installed wheel."""

    name = EMBEDDER

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        root = _wordllama_dir()
        weights = root / "weights" / "l2_supercat_256.safetensors"
        tokenizer = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
        if not weights.exists() or not tokenizer.exists():
            raise ConfigError(f"the wordllama package in {root} lacks {weights.name} or {tokenizer.name}")
        self.vectors = load_file(str(weights))["embedding.weight"].astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.vocab_size = int(self.vectors.shape[0])
        self.dim = int(self.vectors.shape[1])

    def token_ids(self, text: str) -> NDArray[np.int64]:
        ids = self.tokenizer.encode(window(text), add_special_tokens=False).ids
        return np.asarray(ids, dtype=np.int64)

    def token_ids_many(self, texts: list[str], whole: bool = False) -> list[NDArray[np.int64]]:
        """Token ids per text; long texts cut to their head and tail window unless ``whole``."""
        cut = texts if whole else [window(t) for t in texts]
        encoded = self.tokenizer.encode_batch(cut, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encoded]

    def pool(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        if len(ids) == 0:
            return np.zeros(self.dim, dtype=np.float32)
        pooled: NDArray[np.float32] = self.vectors[np.clip(ids, 0, self.vocab_size - 1)].mean(axis=0)
        return pooled


def _wordllama_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the learned router needs the 'wordllama' package: pip install wordllama")
    return Path(next(iter(spec.submodule_search_locations)))


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
