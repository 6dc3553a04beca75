"""The shared static embedder: WordLlama (``l2_supercat``, 256 dimensions), loaded from its wheel.

Used by the learned router's features, the semantic cache and the in-process embeddings backend,
so it sits below all three. The weights and tokenizer ship inside the ``wordllama`` wheel; we read
those two files directly with ``safetensors`` and ``tokenizers`` (wordllama's own dependencies)
instead of importing ``wordllama``: its import configures the root logger at INFO, which would
make every library in the gateway chatty, and its loader looks for the tokenizer elsewhere and
then tries to download. Nothing here touches the network. CPU only, no I/O after loading.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridgate.errors import ConfigError

EMBEDDER = "wordllama/l2_supercat_256"
# Long texts are read as their head and tail (the router's statistics read the same window), so a
# huge prompt costs no more than a long one.
HEAD_CHARS = 1000
TAIL_CHARS = 500


def window(text: str) -> str:
    """The text, or its head and tail when it is long: the decision time stays bounded."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


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
