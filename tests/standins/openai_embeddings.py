"""A stand-in for an OpenAI-compatible ``POST /v1/embeddings`` server, on loopback, for tests.

This is NOT OpenAI, TEI or vLLM: a small starlette app that speaks the documented wire format
(``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model",
"usage": {"prompt_tokens", "total_tokens"}}``, vectors as JSON floats or as base64 little-endian
float32 when ``encoding_format`` is ``"base64"``, ``{"error": {...}}`` bodies on failure). Its
vectors are deterministic pseudo-random unit vectors seeded by the text (or token ids), so equal
inputs give bit-identical vectors; tokens are counted as whitespace-separated words (a stand-in
for a real tokenizer). It records every request, and can be scripted to fail the next calls with
a status or to answer garbage.
"""

from __future__ import annotations

import base64
import hashlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.servers import serve_in_thread


def vector_for(item: str | list[int], dim: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The stand-in's embedding of one input: a unit float32 vector seeded by its content."""
    seed = hashlib.sha256(repr(item).encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    v = rng.standard_normal(dim).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def served_vector(item: str | list[int], dim: int, full_dim: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """What the stand-in answers for ``item`` at ``dim`` dimensions (cut and re-normalised)."""
    vector = vector_for(item, full_dim)
    if dim == full_dim:
        return vector
    cut = vector[:dim]
    return (cut / np.linalg.norm(cut)).astype(np.float32)


def tokens_of(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else max(len(item.split()), 1)


@dataclass
class EmbeddingsStandIn:
    model: str = "text-embedding-3-small"
    dim: int = 64
    api_key: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: deque[int | str] = field(default_factory=deque)  # a status, or "garbage"
    base_url: str = ""

    def fail_next(self, *what: int | str) -> None:
        self.failures.extend(what)

    def texts_received(self) -> list[Any]:
        return [item for body in self.requests for item in body["input"]]

    def reset(self) -> None:
        self.requests.clear()
        self.failures.clear()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/embeddings", self._embeddings, methods=["POST"])])

    async def _embeddings(self, request: Request) -> Response:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided: sk-...xyz", "invalid_request_error")
        body = await request.json()
        self.requests.append(body)
        if self.failures:
            failure = self.failures.popleft()
            if failure == "garbage":
                return JSONResponse({"data": "not a list", "usage": {"prompt_tokens": "many"}})
            return _error(int(failure), "scripted failure", "server_error")
        if body.get("model") != self.model:
            return _error(404, f"The model `{body.get('model')}` does not exist", "invalid_request_error")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dim = int(body.get("dimensions") or self.dim)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(inputs):
            vector = served_vector(item, dim, self.dim).astype("<f4")
            encoded: Any = base64.b64encode(vector.tobytes()).decode() if as_base64 else vector.tolist()
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(tokens_of(item) for item in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": self.model, "usage": usage})


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)


@contextmanager
def run_embeddings_standin(**kwargs: Any) -> Iterator[EmbeddingsStandIn]:
    """Serve a fresh stand-in on 127.0.0.1 on a free port; ``base_url`` ends in ``/v1``."""
    standin = EmbeddingsStandIn(**kwargs)
    with serve_in_thread(standin.app(), lifespan="off", graceful_s=1) as url:
        standin.base_url = f"{url}/v1"
        yield standin
