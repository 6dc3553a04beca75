"""What an upstream must send: the fields hybridgate reads, as small pydantic models.

The cloud backends check every answer and every stream chunk here before anything else reads it,
so an off-format reply (``choices: [1, 2]``, ``usage.prompt_tokens: "many"``, a chunk
``{"choices": "abc"}``) is an ``UpstreamProtocolError`` (a 502 the cascade falls back on) rather
than a crash further down. Only the fields the gateway itself reads are checked; everything else
is allowed and passed on untouched. Pure: the bodies are not changed, nothing does I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from hybridgate.errors import UpstreamProtocolError

__all__ = ["check_anthropic_message", "check_chunk", "check_completion"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Usage(_Open):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class _Function(_Open):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(_Open):
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _Message(_Open):
    role: str | None = None
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[_ToolCall] | None = None


class _Logprobs(_Open):
    content: list[dict[str, Any]] | None = None


class _Choice(_Open):
    index: int = 0
    message: _Message
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Completion(_Open):
    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    choices: list[_Choice]
    usage: _Usage | None = None


class _Delta(_Open):
    role: str | None = None
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChunkChoice(_Open):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None
    logprobs: _Logprobs | None = None


class _Chunk(_Open):
    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    choices: list[_ChunkChoice] = []
    usage: _Usage | None = None


class _AnthropicUsage(_Open):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _AnthropicMessage(_Open):
    type: Literal["message"]
    id: str | None = None
    model: str | None = None
    content: list[dict[str, Any]]
    stop_reason: str | None = None
    usage: _AnthropicUsage


def check_completion(body: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``body`` is a ``chat.completion`` with a choice."""
    _check(_Completion, body, who, "answer")
    if not body["choices"]:
        raise UpstreamProtocolError(f"{who} sent an answer with no choices")


def check_chunk(chunk: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``chunk`` is a ``chat.completion.chunk``."""
    _check(_Chunk, chunk, who, "stream chunk")


def check_anthropic_message(body: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``body`` is an Anthropic ``message`` object."""
    _check(_AnthropicMessage, body, who, "message")


def _check(model: type[BaseModel], data: Any, who: str, what: str) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise UpstreamProtocolError(f"{who} sent a malformed {what} ({where}: {first['msg']})") from exc
