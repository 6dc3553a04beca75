"""Embedders: the models behind ``POST /v1/embeddings``, one Protocol for all.

``WordLlamaEmbedder`` runs in process on WordLlama's static token vectors (shipped in its wheel);
``OpenAICompatEmbedder`` POSTs to any server speaking OpenAI's ``/v1/embeddings`` (OpenAI, TEI,
vLLM, Ollama, llama.cpp server). Both return float32 unit vectors and the tokens each input
cost, and raise only ``BackendError`` subclasses. They know nothing of routing, caching or the
ledger. Upstream answers are validated (``_Answer``): an off-format answer is an upstream protocol
error, which the caller treats like a 5xx.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import aiohttp
import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import BaseModel, Field, ValidationError

from hybridgate.backends.base import status_error
from hybridgate.backends.http import Pool
from hybridgate.config import (
    WORDLLAMA_MODEL,
    EmbedderConfig,
    OpenAICompatEmbedderConfig,
    WordLlamaEmbedderConfig,
)
from hybridgate.errors import (
    ConfigError,
    GatewayError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

if TYPE_CHECKING:
    from hybridgate.embedder import WordLlamaEmbedder as WordLlamaVectors
    from hybridgate.embeddings.request import EmbeddingInput

logger = logging.getLogger(__name__)

Vectors = NDArray[np.float32]
INLINE_TEXTS = 8  # the local embedder runs smaller batches on the event loop, larger in a thread


@dataclass(frozen=True)
class Embedded:
    """One call's answer: a float32 row per input, in order, and the tokens each input cost."""

    vectors: Vectors
    tokens: list[int]


class Embedder(Protocol):
    name: str
    model: str  # what the vectors are comparable with
    local: bool
    max_batch: int

    def refusal(self, dimensions: int | None, tokens: bool) -> str | None:
        """Why this embedder cannot serve such a request (None: it can)."""
        ...

    async def embed(self, inputs: Sequence[EmbeddingInput], dimensions: int | None) -> Embedded: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def build_embedder(name: str, config: EmbedderConfig, env: Mapping[str, str]) -> Embedder:
    if isinstance(config, WordLlamaEmbedderConfig):
        return WordLlamaEmbedder(name, config)
    key = None
    if config.api_key_env is not None:
        key = env.get(config.api_key_env)
        if not key:
            raise ConfigError(
                f"embedder '{name}' reads its API key from ${config.api_key_env}, which is not set"
            )
    return OpenAICompatEmbedder(name, config, key)


def unit_rows(vectors: NDArray[np.floating], dimensions: int | None = None) -> Vectors:
    """Rows cut to ``dimensions`` (Matryoshka-style) and scaled to unit length, as float32."""
    rows = np.asarray(vectors, dtype=np.float32)
    if dimensions is not None:
        rows = rows[:, :dimensions]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: Vectors = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return unit


class WordLlamaEmbedder:
    """WordLlama (l2_supercat, 256 dimensions): the mean of the texts' token vectors, unit length.

    Loaded lazily on first use (or at ``start``): the weights are the router's, read from the
    installed wheel, never downloaded. Any ``dimensions`` up to 256 is honoured by truncation,
    which WordLlama's Matryoshka training makes meaningful."""

    local = True

    def __init__(self, name: str, config: WordLlamaEmbedderConfig) -> None:
        self.name = name
        self.model = WORDLLAMA_MODEL
        self.local = config.local
        self.max_batch = config.max_batch
        self._vectors: WordLlamaVectors | None = None

    dim = 256  # l2_supercat_256

    def refusal(self, dimensions: int | None, tokens: bool) -> str | None:
        if tokens:
            return f"embedder '{self.name}' ({self.model}) takes texts, not token arrays"
        if dimensions is not None and dimensions > self.dim:
            return f"embedder '{self.name}' ({self.model}) has {self.dim} dimensions; ask for at most that"
        return None

    async def embed(self, inputs: Sequence[EmbeddingInput], dimensions: int | None) -> Embedded:
        texts = [item.text or "" for item in inputs]
        if self._vectors is None:  # the first request loads the weights, off the event loop
            await asyncio.to_thread(self._load)
        if len(texts) <= INLINE_TEXTS:
            return self.embed_now(texts, dimensions)
        return await asyncio.to_thread(self.embed_now, texts, dimensions)

    def embed_now(self, texts: list[str], dimensions: int | None) -> Embedded:
        model = self._load()
        ids = model.token_ids_many(texts, whole=True)
        pooled = np.stack([model.pool(row) for row in ids]) if ids else np.zeros((0, model.dim), np.float32)
        return Embedded(unit_rows(pooled, dimensions), [len(row) for row in ids])

    def count_tokens(self, text: str) -> int:
        return len(self._load().token_ids_many([text], whole=True)[0])

    def _load(self) -> WordLlamaVectors:
        if self._vectors is None:
            from hybridgate.embedder import WordLlamaEmbedder as Vectors

            self._vectors = Vectors()
        return self._vectors

    async def start(self) -> None:
        return None  # loaded by the first request: most gateways never embed

    async def aclose(self) -> None:
        return None


class _Item(BaseModel):
    index: int = Field(ge=0)
    embedding: list[float] | str


class _Usage(BaseModel):
    prompt_tokens: int = Field(ge=0, le=2**40)


class _Answer(BaseModel):
    """What an OpenAI-compatible ``/embeddings`` answer must hold for us to use it."""

    data: list[_Item]
    usage: _Usage | None = None


class OpenAICompatEmbedder:
    def __init__(self, name: str, config: OpenAICompatEmbedderConfig, api_key: str | None) -> None:
        self.name = name
        self.model = config.model
        self.local = config.local
        self.max_batch = config.max_batch
        self.max_concurrency = config.max_concurrency
        self._config = config
        self._url = f"{config.base_url.rstrip('/')}/embeddings"
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._pool = Pool(headers, config.timeout_s, config.max_connections)

    def refusal(self, dimensions: int | None, tokens: bool) -> str | None:
        if tokens and not self._config.tokens:
            return f"embedder '{self.name}' ({self.model}) takes texts, not token arrays"
        if dimensions is not None and not self._config.dimensions:
            return f"embedder '{self.name}' ({self.model}) cannot honour dimensions"
        return None

    async def embed(self, inputs: Sequence[EmbeddingInput], dimensions: int | None) -> Embedded:
        body: dict[str, object] = {
            "model": self.model,
            "input": [item.text if item.text is not None else list(item.tokens or ()) for item in inputs],
        }
        if dimensions is not None:
            body["dimensions"] = dimensions
        if self._config.upstream_base64:
            body["encoding_format"] = "base64"
        content = await self._post(orjson.dumps(body))
        answer = self._answer(content, len(inputs))
        rows = [_vector(item.embedding) for item in sorted(answer.data, key=lambda item: item.index)]
        if len({len(row) for row in rows}) != 1 or (dimensions is not None and len(rows[0]) != dimensions):
            raise UpstreamProtocolError(
                f"embedder '{self.name}' answered vectors of the wrong or mixed sizes"
            )
        vectors = np.stack(rows).astype(np.float32)
        total = answer.usage.prompt_tokens if answer.usage else 0
        return Embedded(vectors, apportion(total, inputs))

    async def _post(self, data: bytes) -> bytes:
        try:
            async with self._pool.session().post(self._url, data=data, allow_redirects=False) as response:
                content = await response.read()
                if response.status >= 300:
                    raise self._status_error(response.status, content, response.headers)
                return content
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"embedder '{self.name}' did not answer within {self._config.timeout_s}s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailableError(
                f"embedder '{self.name}' is unreachable ({type(exc).__name__})"
            ) from exc

    def _status_error(self, status: int, content: bytes, headers: Mapping[str, str]) -> GatewayError:
        if 300 <= status < 400:  # redirects are never followed: the prompt stays where it was sent
            logger.warning(
                "embedder %s answered a redirect (HTTP %d) to %s", self.name, status, headers.get("location")
            )
            return UpstreamProtocolError(f"embedder '{self.name}' answered with a redirect (HTTP {status})")
        try:
            error = orjson.loads(content).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            error = None
        if not isinstance(error, dict):
            logger.warning("embedder %s answered HTTP %d: %r", self.name, status, content[:2000])
            error = {}
        return status_error(
            self.name,
            status,
            headers,
            type=_str(error.get("type")),
            message=_str(error.get("message")) or "",  # an unstructured body goes to the log only
            param=_str(error.get("param")),
        )

    def _answer(self, content: bytes, expected: int) -> _Answer:
        try:
            answer = _Answer.model_validate_json(content)
        except ValidationError as exc:
            raise UpstreamProtocolError(
                f"embedder '{self.name}' answered off-format ({exc.error_count()} problems)"
            ) from exc
        if sorted(item.index for item in answer.data) != list(range(expected)):
            raise UpstreamProtocolError(
                f"embedder '{self.name}' answered {len(answer.data)} vectors for {expected} inputs"
            )
        return answer

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        await self._pool.aclose()


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _vector(value: list[float] | str) -> NDArray[np.float32]:
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise UpstreamProtocolError("an embedder sent a vector that is not base64") from exc
        if not raw or len(raw) % 4:
            raise UpstreamProtocolError("an embedder sent a base64 vector that is not float32")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not value:
        raise UpstreamProtocolError("an embedder sent an empty vector")
    return np.asarray(value, dtype=np.float32)


def apportion(total: int, inputs: Sequence[EmbeddingInput]) -> list[int]:
    """An upstream reports one token count per call; share it by input length (token arrays
    count exactly), so each cached text remembers roughly what it cost."""
    sizes = [len(item.tokens) if item.tokens is not None else max(len(item.text or ""), 1) for item in inputs]
    if all(item.tokens is not None for item in inputs):
        return sizes
    whole = sum(sizes)
    shares = [total * size // whole for size in sizes]
    shares[-1] += total - sum(shares)
    return shares
