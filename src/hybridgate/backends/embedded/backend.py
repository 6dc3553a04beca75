"""The embedded backend: SmolLM2-135M-Instruct (or any chat GGUF) run on this machine by llama.cpp.

Layer 3 of the flow (backends); the default local tier, so prompts never leave the machine.
llama.cpp runs in an engine process of its own (``process`` / ``engine``), as
vLLM keeps its engine apart from its API server: a native crash there costs the request in flight
(``EngineCrashedError``) and the engine is restarted, while the gateway keeps serving. The model
loads once, when the engine starts (first use, or ``start()``); jobs queue in the engine and run
one at a time. Streamed text crosses the process boundary a piece at a time. The JSON Schema of
``response_format`` / a forced tool becomes a grammar on a thread with a time budget
(``grammar_timeout_s``), never on the event loop. Raises ``RequestError`` for what no other
attempt would fix (images, a prompt longer than the context window, an unusable
``response_format``) and ``BackendError`` when llama.cpp itself fails. Knows nothing of routing,
caching or the ledger.

Split in five: this module (asyncio and the OpenAI wire shape), ``process`` (the engine
process, seen from the gateway), ``engine`` and ``llama`` (the engine process:
llama.cpp), ``grammar`` (schema -> GBNF) and ``prompt`` (pure: messages, tools
convention, output schemas).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridgate.backends.embedded import prompt as prompting
from hybridgate.backends.embedded.grammar import grammar_text
from hybridgate.backends.embedded.llama import Outcome, Sampling, model_name, packaged_model_file
from hybridgate.backends.embedded.process import EngineProcess
from hybridgate.config import EmbeddedBackend as EmbeddedConfig
from hybridgate.errors import ConfigError, RequestError, UpstreamTimeoutError
from hybridgate.types import ChatRequest, ChatResponse, Json, Usage

__all__ = ["EmbeddedBackend"]


@dataclass(frozen=True)
class _Job:
    messages: list[dict[str, str]]
    sampling: Sampling
    tools: list[Json]  # non-empty when the reply may be a tool call

    def wire(self, stream: bool) -> Json:
        return {"messages": self.messages, "sampling": dataclasses.asdict(self.sampling), "stream": stream}


class EmbeddedBackend:
    """A GGUF chat model in an engine process. ``model`` passed to ``complete``/``stream`` is ignored."""

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
        settings = {"model_path": str(self._model_file), "n_ctx": config.n_ctx, "n_threads": config.n_threads}
        self.engine = EngineProcess(name, settings)
        self._sha256: str | None = None

    @property
    def loading(self) -> bool:
        return self.engine.loading

    @property
    def model_file(self) -> Path:
        return self._model_file

    @property
    def load_s(self) -> float | None:
        """How long the engine took to load the model, once loaded."""
        return self.engine.load_s

    def model_sha256(self) -> str:
        """SHA-256 of the GGUF, to pin the exact weights. Reads ~100 MB once; blocking."""
        if self._sha256 is None:
            with self._model_file.open("rb") as file:
                self._sha256 = hashlib.file_digest(file, "sha256").hexdigest()
        return self._sha256

    async def start(self) -> None:
        if self.config.load_at_startup:
            await self.engine.start()

    async def aclose(self) -> None:
        await self.engine.aclose()

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        job = await self._job(request)
        try:
            async with asyncio.timeout(self.config.timeout_s):
                outcome = await _outcome(self.engine.run(job.wire(stream=False)))
        except TimeoutError as exc:
            raise self._timeout() from exc
        message, finish = self._reply(job, outcome)
        return ChatResponse(_Chunks(self.model).completion(message, finish, outcome))

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        job = await self._job(request)
        # A tool call is only recognisable once the reply is complete, so those replies are buffered.
        replies = self.engine.run(job.wire(stream=not job.tools))
        chunks, started = _Chunks(self.model), False
        try:
            while "outcome" not in (message := await self._next(replies)):
                if not started:
                    started = True
                    yield chunks.role()
                yield chunks.choice({"content": message["text"]}, self._wanted(job, message["logprobs"]))
            outcome = Outcome(**message["outcome"])
            if not started:
                yield chunks.role()
            for chunk in self._closing_chunks(chunks, job, outcome):
                yield chunk
        finally:
            await replies.aclose()  # an abandoned stream cancels its job in the engine

    # -- on the event loop -------------------------------------------------------------------

    async def _job(self, request: ChatRequest) -> _Job:
        if request.has_images():
            raise RequestError(
                f"backend '{self.name}' runs {self.model}, which cannot read images; "
                "send image requests to a route with a vision model",
                param="messages",
            )
        wants_logprobs = bool(request.logprobs) or request.top_logprobs is not None
        max_tokens = request.output_limit() or self.config.default_max_tokens
        sampling = Sampling(
            max_tokens=max_tokens,
            temperature=self.config.temperature if request.temperature is None else request.temperature,
            top_p=self.config.top_p if request.top_p is None else request.top_p,
            seed=request.seed,
            stops=tuple(request.stop_list()),
            top_logprobs=(request.top_logprobs or 0) if wants_logprobs else None,
            frequency_penalty=prompting.penalty(request, "frequency_penalty"),
            presence_penalty=prompting.penalty(request, "presence_penalty"),
            repeat_penalty=self._repeat_penalty(request),
            top_k=int(prompting.number(request, "top_k", 0, 1000) or 40),
            grammar=await self._grammar(prompting.output_schema(request), min(max_tokens, self.config.n_ctx)),
        )
        tools = prompting.functions(request) if prompting.uses_tools(request) else []
        return _Job(prompting.template_messages(request), sampling, tools)

    def _repeat_penalty(self, request: ChatRequest) -> float:
        """The request's ``repetition_penalty``; else the backend's default for a request that
        left sampling to us (no temperature, no penalty), and none for one that chose its own."""
        asked = prompting.number(request, "repetition_penalty", 0.5, 2.0)
        if asked is not None:
            return asked
        extra = request.model_extra or {}
        penalties = any(extra.get(k) for k in ("frequency_penalty", "presence_penalty"))
        chose = request.temperature is not None or penalties
        return 1.0 if chose else self.config.repeat_penalty

    async def _grammar(self, schema: Json | None, max_tokens: int) -> str | None:
        """The schema's grammar, built on a thread: past ``grammar_timeout_s`` the request fails."""
        if schema is None:
            return None
        try:
            async with asyncio.timeout(self.config.grammar_timeout_s):
                return await asyncio.to_thread(grammar_text, schema, max_tokens)
        except TimeoutError as exc:
            raise RequestError(
                f"turning this JSON schema into a grammar took over {self.config.grammar_timeout_s:g}s; "
                "simplify the schema",
                param="response_format",
            ) from exc

    async def _next(self, replies: AsyncIterator[Json]) -> Json:
        try:
            async with asyncio.timeout(self.config.timeout_s):
                return await anext(replies)
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
        if outcome.stop_sequence is not None and finish == "stop":
            closing[-1]["choices"][0]["stop_reason"] = outcome.stop_sequence  # vLLM's field
        closing.append(chunks.chunk([], usage=_usage(outcome)))
        return closing

    @staticmethod
    def _wanted(job: _Job, logprobs: list[Json]) -> list[Json] | None:
        return logprobs if job.sampling.top_logprobs is not None else None


async def _outcome(replies: AsyncGenerator[Json, None]) -> Outcome:
    try:
        async for message in replies:
            if "outcome" in message:
                return Outcome(**message["outcome"])
    finally:
        await replies.aclose()
    raise RuntimeError("the engine ended a job without an outcome")  # run() always yields one


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
        if outcome.stop_sequence is not None and finish == "stop":
            choice["stop_reason"] = outcome.stop_sequence  # which stop sequence cut the text, as vLLM says
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
