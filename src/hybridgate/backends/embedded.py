"""The embedded backend: SmolLM2-135M-Instruct (or any chat GGUF) run in-process by llama.cpp.

Layer 3 of the flow (backends); the default local tier, so prompts never leave the process. The
model loads once, lazily on first use or in ``start()``, on one dedicated worker thread that also
runs every generation: a ``llama_cpp.Llama`` is not thread-safe, so requests queue for that thread
and the event loop only waits. Streamed text crosses from the thread to the loop through an
``asyncio.Queue``. Raises ``RequestError`` for what no other attempt would fix (images, a prompt
longer than the context window, an unusable ``response_format``) and ``BackendError`` when
llama.cpp itself fails. Knows nothing of routing, caching or the ledger.

Split in three: this module (asyncio and the OpenAI wire shape), ``embedded_llama`` (llama.cpp,
worker thread only) and ``embedded_prompt`` (pure: messages, tools convention, output schemas).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from hybridgate.backends import embedded_prompt as prompting
from hybridgate.backends.embedded_llama import (
    LocalModel,
    OnText,
    Outcome,
    Sampling,
    grammar_for,
    model_name,
    packaged_model_file,
)
from hybridgate.config import EmbeddedBackend as EmbeddedConfig
from hybridgate.errors import BackendError, ConfigError, RequestError, UpstreamTimeoutError
from hybridgate.types import ChatRequest, ChatResponse, Json, Usage

__all__ = ["EmbeddedBackend"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Job:
    messages: list[dict[str, str]]
    sampling: Sampling
    tools: list[Json]  # non-empty when the reply may be a tool call


class EmbeddedBackend:
    """A GGUF chat model in this process. ``model`` passed to ``complete``/``stream`` is ignored."""

    def __init__(self, name: str, config: EmbeddedConfig) -> None:
        self.name = name
        self.config = config
        self.local = config.local
        self._model_file = (
            Path(config.model_path).expanduser() if config.model_path else packaged_model_file()
        )
        if not self._model_file.is_file():
            raise ConfigError(f"backend '{name}': model file {self._model_file} does not exist")
        self.model = model_name(self._model_file)
        self.load_s: float | None = None  # how long loading took, once loaded
        self.loading = False  # the model is being loaded right now (/readyz says so)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hybridgate-{name}")
        self._loaded: LocalModel | None = None  # read and written on the worker thread only
        self._sha256: str | None = None
        self._closed = False

    @property
    def model_file(self) -> Path:
        return self._model_file

    def model_sha256(self) -> str:
        """SHA-256 of the GGUF, to pin the exact weights. Reads ~100 MB once; blocking."""
        if self._sha256 is None:
            with self._model_file.open("rb") as file:
                self._sha256 = hashlib.file_digest(file, "sha256").hexdigest()
        return self._sha256

    async def start(self) -> None:
        if self.config.load_at_startup:
            await self._on_worker(self._load)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._on_worker(self._unload)
            self._worker.shutdown(wait=False)

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        job = self._job(request)
        cancelled = threading.Event()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                outcome = await self._on_worker(partial(self._generate, job, cancelled, None))
        except TimeoutError as exc:
            raise self._timeout() from exc
        finally:
            cancelled.set()  # stops the worker if we timed out or were cancelled
        message, finish = self._reply(job, outcome)
        return ChatResponse(_Chunks(self.model).completion(message, finish, outcome))

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        job = self._job(request)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[tuple[str, list[Json]] | None] = asyncio.Queue()
        cancelled = threading.Event()

        def on_text(text: str, logprobs: list[Json]) -> None:  # called on the worker thread
            if not cancelled.is_set():  # an abandoned stream's loop may already be closed
                loop.call_soon_threadsafe(pieces.put_nowait, (text, logprobs))

        # A tool call is only recognisable once the reply is complete, so those replies are buffered.
        work = loop.run_in_executor(
            self._worker, partial(self._generate, job, cancelled, None if job.tools else on_text)
        )
        work.add_done_callback(lambda _: pieces.put_nowait(None))
        chunks, started = _Chunks(self.model), False
        try:
            while (piece := await self._next(pieces)) is not None:
                if not started:
                    started = True
                    yield chunks.role()
                yield chunks.choice({"content": piece[0]}, self._wanted(job, piece[1]))
            outcome = await work  # the worker's error, if any, surfaces here before any chunk
            if not started:
                yield chunks.role()
            for chunk in self._closing_chunks(chunks, job, outcome):
                yield chunk
        finally:
            cancelled.set()

    # -- on the event loop -------------------------------------------------------------------

    def _job(self, request: ChatRequest) -> _Job:
        if request.has_images():
            raise RequestError(
                f"backend '{self.name}' runs {self.model}, which cannot read images; "
                "send image requests to a route with a vision model",
                param="messages",
            )
        wants_logprobs = bool(request.logprobs) or request.top_logprobs is not None
        sampling = Sampling(
            max_tokens=request.output_limit() or self.config.default_max_tokens,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            seed=request.seed,
            stops=tuple(request.stop_list()),
            top_logprobs=(request.top_logprobs or 0) if wants_logprobs else None,
            frequency_penalty=prompting.penalty(request, "frequency_penalty"),
            presence_penalty=prompting.penalty(request, "presence_penalty"),
            grammar=grammar_for(prompting.output_schema(request)),
        )
        tools = prompting.functions(request) if prompting.uses_tools(request) else []
        return _Job(prompting.template_messages(request), sampling, tools)

    async def _on_worker(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    async def _next(self, pieces: asyncio.Queue[T]) -> T:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                return await pieces.get()
        except TimeoutError as exc:
            raise self._timeout() from exc

    def _timeout(self) -> UpstreamTimeoutError:
        return UpstreamTimeoutError(
            f"backend '{self.name}' ({self.model}) produced nothing for {self.config.timeout_s:g}s; "
            "the local model may be busy with other requests (raise timeout_s or route elsewhere)"
        )

    def _reply(self, job: _Job, outcome: Outcome) -> tuple[Json, str]:
        call = prompting.parse_tool_call(outcome.text, job.tools) if job.tools else None
        if call is not None:
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        return {"role": "assistant", "content": outcome.text}, outcome.finish_reason

    def _closing_chunks(self, chunks: _Chunks, job: _Job, outcome: Outcome) -> list[Json]:
        message, finish = self._reply(job, outcome)
        closing = []
        if message.get("tool_calls"):
            closing.append(chunks.choice({"tool_calls": [{"index": 0, **message["tool_calls"][0]}]}))
        elif job.tools and outcome.text:  # buffered plain-text reply to a request with tools
            closing.append(chunks.choice({"content": outcome.text}, outcome.logprobs))
        closing.append(chunks.choice({}, finish=finish))
        closing.append(chunks.chunk([], usage=_usage(outcome)))
        return closing

    @staticmethod
    def _wanted(job: _Job, logprobs: list[Json]) -> list[Json] | None:
        return logprobs if job.sampling.top_logprobs is not None else None

    # -- on the worker thread ----------------------------------------------------------------

    def _load(self) -> LocalModel:
        if self._loaded is None:
            started = time.perf_counter()
            self.loading = True
            try:
                self._loaded = LocalModel(self._model_file, self.config.n_ctx, self.config.n_threads)
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(f"backend '{self.name}' could not load {self._model_file}: {exc}") from exc
            finally:
                self.loading = False
            self.load_s = time.perf_counter() - started
        return self._loaded

    def _unload(self) -> None:
        if self._loaded is not None:
            self._loaded.close()
            self._loaded = None

    def _generate(self, job: _Job, cancelled: threading.Event, on_text: OnText | None) -> Outcome:
        model = self._load()
        try:
            return model.generate(model.prompt(job.messages), job.sampling, cancelled, on_text)
        except (RuntimeError, ValueError, OSError) as exc:
            raise BackendError(f"llama.cpp failed in backend '{self.name}': {exc}") from exc


@dataclass
class _Chunks:
    """Builds one reply's ``chat.completion`` body or its chunks, all sharing id and timestamp."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def completion(self, message: Json, finish: str, outcome: Outcome) -> Json:
        choice = {
            "index": 0,
            "message": message,
            "logprobs": _logprobs(outcome.logprobs),
            "finish_reason": finish,
        }
        return {**self._head("chat.completion"), "choices": [choice], "usage": _usage(outcome)}

    def role(self) -> Json:
        return self.choice({"role": "assistant", "content": ""})

    def choice(self, delta: Json, logprobs: list[Json] | None = None, finish: str | None = None) -> Json:
        return self.chunk(
            [{"index": 0, "delta": delta, "logprobs": _logprobs(logprobs), "finish_reason": finish}]
        )

    def chunk(self, choices: list[Json], **extra: Any) -> Json:
        return {**self._head("chat.completion.chunk"), "choices": choices, **extra}

    def _head(self, kind: str) -> Json:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}


def _logprobs(entries: list[Json] | None) -> Json | None:
    return None if entries is None else {"content": entries, "refusal": None}


def _usage(outcome: Outcome) -> Json:
    return Usage(outcome.prompt_tokens, outcome.completion_tokens).as_openai()
