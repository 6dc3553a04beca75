"""Anthropic ``message`` <-> OpenAI ``chat.completion``, plus stop reasons, usage and errors.

``completion_from_message`` reads what an Anthropic upstream sent, so a body that is not the
documented shape raises ``UpstreamProtocolError``. ``message_from_completion`` reads our own
backends' output for the ``/v1/messages`` ingress and is lenient. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from hybridgate.errors import UpstreamProtocolError
from hybridgate.types import Json

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# The documented error type for each status (docs "Errors"); the SDKs pick exceptions by status.
# The one table for both directions: the /v1/messages edge renders errors with it (error_type),
# and the Anthropic backend reads in-band stream errors with it (ERROR_STATUSES).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",  # not in the table Anthropic documents, but what a 503 means to its clients
    504: "timeout_error",
    529: "overloaded_error",
}
ERROR_STATUSES = {type_: status for status, type_ in ERROR_TYPES.items() if status != 503}
_THINKING = ("thinking", "redacted_thinking")


def finish_reason(stop_reason: str | None) -> str | None:
    """Anthropic ``stop_reason`` -> OpenAI ``finish_reason`` (unknown future reasons: stop)."""
    return None if stop_reason is None else _FINISH_REASONS.get(stop_reason, "stop")


def stop_reason(finish_reason: str | None, has_tool_calls: bool = False) -> str:
    """OpenAI ``finish_reason`` -> Anthropic ``stop_reason`` (missing or unknown: end_turn)."""
    reason = _STOP_REASONS.get(finish_reason or "", "end_turn")
    # Some OpenAI-compatible servers finish tool calls with "stop"; Anthropic clients run tools
    # only on "tool_use".
    return "tool_use" if has_tool_calls and reason == "end_turn" else reason


def openai_usage(usage: Json) -> Json:
    """Anthropic usage -> OpenAI usage. Cache reads and writes are input tokens too."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0) + cached
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def anthropic_usage(usage: Json | None) -> Json:
    """OpenAI usage -> Anthropic usage; OpenAI's cached tokens come back as cache reads."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    return {
        "input_tokens": int(usage.get("prompt_tokens") or 0) - cached,
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def error_type(status_code: int) -> str:
    """The Anthropic error ``type`` for an HTTP status (undocumented ones by their class)."""
    fallback = "api_error" if status_code >= 500 else "invalid_request_error"
    return ERROR_TYPES.get(status_code, fallback)


def error_body(status_code: int, message: str, type: str | None = None) -> Json:
    """An Anthropic error body; ``type`` defaults to the documented one for the status."""
    return {"type": "error", "error": {"type": type or error_type(status_code), "message": message}}


def message_id(openai_id: str | None) -> str:
    """An Anthropic-looking ``msg_`` id that still contains the OpenAI id, for tracing."""
    openai_id = openai_id or uuid.uuid4().hex
    return openai_id if openai_id.startswith("msg_") else f"msg_{openai_id.removeprefix('chatcmpl-')}"


# --- Anthropic message -> chat.completion ----------------------------------------------------


def completion_from_message(message: Any, *, created: int | None = None) -> Json:
    """An Anthropic Messages API response body as an OpenAI ``chat.completion`` body."""
    if not isinstance(message, dict) or message.get("type") != "message":
        raise UpstreamProtocolError("anthropic upstream sent a body that is not a message object")
    content, usage = message.get("content"), message.get("usage")
    if not isinstance(content, list) or not isinstance(usage, dict):
        raise UpstreamProtocolError("anthropic upstream sent a message without content or usage")
    texts, calls = _split_content(content)
    reply: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    thinking = [b for b in content if isinstance(b, dict) and b.get("type") in _THINKING]
    if thinking:
        # reasoning_content for OpenAI clients; the signed blocks themselves for Anthropic ones.
        reply["reasoning_content"] = "".join(str(b.get("thinking", "")) for b in thinking)
        reply["thinking_blocks"] = thinking
    choice = {
        "index": 0,
        "message": reply,
        "logprobs": None,
        "finish_reason": finish_reason(message.get("stop_reason")) or "stop",
    }
    if message.get("stop_reason") == "stop_sequence" and isinstance(message.get("stop_sequence"), str):
        choice["stop_reason"] = message["stop_sequence"]  # the matched string, as vLLM reports it
    return {
        "id": str(message.get("id", "")),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": str(message.get("model", "")),
        "choices": [choice],
        "usage": openai_usage(usage),
    }


def _split_content(content: list[Any]) -> tuple[list[str], list[Json]]:
    texts: list[str] = []
    calls: list[Json] = []
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamProtocolError("anthropic upstream sent a content block that is not an object")
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(_tool_call(block))
        # thinking, server tool blocks and future types have no OpenAI slot and are skipped
    return texts, calls


def _tool_call(block: Json) -> Json:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise UpstreamProtocolError("anthropic upstream sent a tool_use block without id or name")
    arguments = json.dumps(block.get("input") or {})
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": arguments},
    }


# --- chat.completion -> Anthropic message ----------------------------------------------------


def message_from_completion(completion: Json, *, model: str | None = None) -> Json:
    """An OpenAI ``chat.completion`` body (from one of our backends) as an Anthropic message."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    reply = choice.get("message") or {}
    content: list[Json] = thinking_blocks(reply)
    if isinstance(reply.get("content"), str) and reply["content"]:
        content.append({"type": "text", "text": reply["content"]})
    calls = [tool_use_block(call) for call in reply.get("tool_calls") or []]
    reason, sequence = stop_details(choice, bool(calls))
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model or str(completion.get("model", "")),
        "content": content + calls,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic_usage(completion.get("usage")),
    }


def stop_details(choice: Json, has_tool_calls: bool) -> tuple[str, str | None]:
    """Anthropic ``(stop_reason, stop_sequence)`` for an OpenAI choice. The matched stop string
    comes in the choice's ``stop_reason`` (vLLM's field; our embedded and Anthropic backends
    set it too); a number there is a stop token id, not a sequence."""
    matched = choice.get("stop_reason")
    if choice.get("finish_reason") == "stop" and isinstance(matched, str) and not has_tool_calls:
        return "stop_sequence", matched
    return stop_reason(choice.get("finish_reason"), has_tool_calls), None


def thinking_blocks(reply: Json) -> list[Json]:
    """Thinking blocks for an OpenAI reply: Anthropic's own signed blocks when it carried them,
    else the ``reasoning_content`` a reasoning model returned (unsigned: no Anthropic signature)."""
    blocks = reply.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        return [b for b in blocks if isinstance(b, dict)]
    reasoning = reply.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        return [{"type": "thinking", "thinking": reasoning, "signature": ""}]
    return []


def tool_use_block(call: Json) -> Json:
    """An OpenAI tool call as a complete Anthropic ``tool_use`` block."""
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
        "name": str(function.get("name", "")),
        "input": lenient_input(function.get("arguments")),
    }


def lenient_input(arguments: Any) -> Json:
    """Tool-call arguments as an object. Small local models emit broken JSON now and then; it is
    kept under ``"arguments"`` rather than dropped, so the client sees what the model said."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}
