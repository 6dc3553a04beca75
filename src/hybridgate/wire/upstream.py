"""What an upstream must send: the fields hybridgate reads, as small pydantic-validated TypedDicts.

The cloud backends check every answer and every stream chunk here before anything else reads it,
so an off-format reply (``choices: [1, 2]``, ``usage.prompt_tokens: "many"``, a chunk
``{"choices": "abc"}``) is an ``UpstreamProtocolError`` (a 502 the cascade falls back on) rather
than a crash further down. Only the fields the gateway itself reads are checked; everything else
is allowed and passed on untouched. Pure: the bodies are not changed, nothing does I/O.
"""

from __future__ import annotations

from typing import Any, Literal, Required

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from hybridgate.errors import UpstreamProtocolError

__all__ = [
    "check_anthropic_message",
    "check_chunk",
    "check_completion",
    "check_response",
    "check_response_event",
]

# TypedDicts rather than BaseModels: the result is thrown away (the body passes on untouched), and
# they validate in half the time, which counts once per stream chunk (bench/upstream_checks.py).
# Keys not named here are ignored, whatever they hold.


class _PromptDetails(TypedDict, total=False):
    cached_tokens: int | None


class _Usage(TypedDict, total=False):
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    prompt_tokens_details: _PromptDetails | None


class _Function(TypedDict, total=False):
    name: str | None
    arguments: str | None


class _ToolCall(TypedDict, total=False):
    index: int | None
    id: str | None
    function: _Function | None


class _Message(TypedDict, total=False):
    role: str | None
    content: str | list[dict[str, Any]] | None
    tool_calls: list[_ToolCall] | None


class _Logprobs(TypedDict, total=False):
    content: list[dict[str, Any]] | None


class _Choice(TypedDict, total=False):
    index: int
    message: Required[_Message]
    finish_reason: str | None
    logprobs: _Logprobs | None


class _Completion(TypedDict, total=False):
    id: str | None
    model: str | None
    system_fingerprint: str | None
    choices: Required[list[_Choice]]
    usage: _Usage | None


class _Delta(TypedDict, total=False):
    role: str | None
    content: str | None
    tool_calls: list[_ToolCall] | None


class _ChunkChoice(TypedDict, total=False):
    index: int
    delta: _Delta | None
    finish_reason: str | None
    logprobs: _Logprobs | None


class _Chunk(TypedDict, total=False):
    id: str | None
    model: str | None
    system_fingerprint: str | None
    choices: list[_ChunkChoice]
    usage: _Usage | None


class _AnthropicUsage(TypedDict, total=False):
    input_tokens: int | None
    output_tokens: int | None
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None


class _AnthropicMessage(TypedDict, total=False):
    type: Required[Literal["message"]]
    id: str | None
    model: str | None
    content: Required[list[dict[str, Any]]]
    stop_reason: str | None
    usage: Required[_AnthropicUsage]


class _ResponseTokens(TypedDict, total=False):
    cached_tokens: int | None
    reasoning_tokens: int | None


class _ResponseUsage(TypedDict, total=False):
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    input_tokens_details: _ResponseTokens | None
    output_tokens_details: _ResponseTokens | None


class _OutputPart(TypedDict, total=False):
    type: Required[str]
    text: str
    refusal: str


class _OutputItem(TypedDict, total=False):
    type: Required[str]
    id: str
    call_id: str
    name: str
    arguments: str
    content: list[_OutputPart] | None
    summary: list[_OutputPart] | None


class _Incomplete(TypedDict, total=False):
    reason: str | None


class _Response(TypedDict, total=False):
    id: Required[str]
    object: Required[Literal["response"]]
    created_at: float | None
    model: str | None
    status: str | None
    output: Required[list[_OutputItem]]
    incomplete_details: _Incomplete | None
    usage: _ResponseUsage | None


class _ResponseEvent(TypedDict, total=False):
    type: Required[str]
    delta: str
    item_id: str
    arguments: str
    item: _OutputItem
    response: _Response


_COMPLETION = TypeAdapter(_Completion)
_CHUNK = TypeAdapter(_Chunk)
_ANTHROPIC_MESSAGE = TypeAdapter(_AnthropicMessage)
_RESPONSE = TypeAdapter(_Response)
_RESPONSE_EVENT = TypeAdapter(_ResponseEvent)


def check_completion(body: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``body`` is a ``chat.completion`` with a choice."""
    _check(_COMPLETION, body, who, "answer")
    if not body["choices"]:
        raise UpstreamProtocolError(f"{who} sent an answer with no choices")


def check_chunk(chunk: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``chunk`` is a ``chat.completion.chunk``."""
    _check(_CHUNK, chunk, who, "stream chunk")


def check_anthropic_message(body: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``body`` is an Anthropic ``message`` object."""
    _check(_ANTHROPIC_MESSAGE, body, who, "message")


def check_response(body: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``body`` is a Responses API ``response`` object."""
    _check(_RESPONSE, body, who, "response")


def check_response_event(event: Any, who: str) -> None:
    """Raise ``UpstreamProtocolError`` unless ``event`` is a Responses API stream event (only the
    fields hybridgate reads are checked; ``error`` events are read before this)."""
    _check(_RESPONSE_EVENT, event, who, "stream event")


def _check(adapter: TypeAdapter[Any], data: Any, who: str, what: str) -> None:
    try:
        adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise UpstreamProtocolError(f"{who} sent a malformed {what} ({where}: {first['msg']})") from exc
