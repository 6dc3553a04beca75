"""The shared static embedder: WordLlama (``l2_supercat``, 256 dimensions), loaded from its wheel.

Used by the learned router's features, the semantic cache and the in-process embeddings backend,
so it sits below all three. The weights and tokenizer ship inside the ``wordllama`` wheel; we read
those two files directly with ``safetensors`` and ``tokenizers`` (wordllama's own dependencies)
instead of importing ``wordllama``: its import configures the root logger at INFO, which would
make every library in the gateway chatty, and its loader looks for the tokenizer elsewhere and
then tries to download. Nothing here touches the network. CPU only, no I/O after loading.
"""

from __future__ import annotations

import bisect
import importlib.util
import re
from itertools import chain
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hybridgate.errors import ConfigError

EMBEDDER = "wordllama/l2_supercat_256"
# Long texts are read as their head and tail (the router's statistics read the same window), so a
# huge prompt costs no more than a long one.
HEAD_CHARS = 1000
TAIL_CHARS = 500
SPACE = "\u2581"  # the tokenizer's normaliser prepends one and replaces every " " with it
# A run of SPACE and what follows up to the next one: the vocabulary has no token with SPACE after
# another character, so BPE never merges across these pieces and each can be tokenised alone.
PIECE = re.compile(f"{SPACE}*[^{SPACE}]+|{SPACE}+")
PIECE_CACHE = 1 << 16  # pieces remembered per embedder (cleared when full)


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
        # The same BPE without the normaliser, for text that is normalised already (``token_ids``).
        self._pieces = Tokenizer.from_str(self.tokenizer.to_str())
        self._pieces.normalizer = None
        self._special = [t.content for t in self.tokenizer.get_added_tokens_decoder().values()]
        self._cache: dict[str, list[int]] = {}
        if any(SPACE in t.lstrip(SPACE) for t in self.tokenizer.get_vocab()):
            raise ConfigError(f"{tokenizer.name}: a token spans pieces; token_ids would not be exact")

    def token_ids(self, text: str) -> NDArray[np.int64]:
        """The tokenizer's ids of the text's window (one request: words seen before cost a lookup).

        Exactly ``tokenizer.encode``: BPE runs piece by piece (``PIECE``), each piece remembered;
        the request path pays the tokenizer only for pieces it has not seen."""
        text = window(text)
        if not text or any(special in text for special in self._special):
            return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        pieces = PIECE.findall(SPACE + text.replace(" ", SPACE))
        cache = self._cache
        try:
            found = [cache[piece] for piece in pieces]
        except KeyError:
            learned = self._learn([p for p in dict.fromkeys(pieces) if p not in cache])
            found = [learned[p] if p in learned else cache[p] for p in pieces]
        return np.fromiter(chain.from_iterable(found), dtype=np.int64)

    def _learn(self, pieces: list[str]) -> dict[str, list[int]]:
        """Tokenise the pieces in one call (they never merge) and remember each piece's ids."""
        if len(self._cache) + len(pieces) > PIECE_CACHE:
            self._cache = {}
        starts, at = [], 0
        for piece in pieces:
            starts.append(at)
            at += len(piece)
        encoded = self._pieces.encode("".join(pieces), add_special_tokens=False)
        found: list[list[int]] = [[] for _ in pieces]
        for token, (start, _) in zip(encoded.ids, encoded.offsets, strict=True):
            found[bisect.bisect_right(starts, start) - 1].append(token)
        learned = dict(zip(pieces, found, strict=True))
        self._cache.update(learned)
        return learned

    def token_ids_many(self, texts: list[str], whole: bool = False) -> list[NDArray[np.int64]]:
        """Token ids per text; long texts cut to their head and tail window unless ``whole``."""
        cut = texts if whole else [window(t) for t in texts]
        encoded = self.tokenizer.encode_batch(cut, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encoded]

    def pool(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        if len(ids) == 0:
            return np.zeros(self.dim, dtype=np.float32)
        pooled: NDArray[np.float32] = np.take(self.vectors, ids, axis=0, mode="clip").mean(axis=0)
        return pooled


def _wordllama_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the learned router needs the 'wordllama' package: pip install wordllama")
    return Path(next(iter(spec.submodule_search_locations)))
