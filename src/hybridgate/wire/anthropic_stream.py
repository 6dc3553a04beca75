"""Streaming translation between Anthropic SSE events and OpenAI ``chat.completion.chunk`` dicts.

``AnthropicStreamReader`` serves backends/anthropic.py: fed one decoded upstream event at a time,
it returns the chunks that event becomes, and raises ``UpstreamProtocolError`` /
``UpstreamStatusError`` for out-of-order events or an in-band ``error`` event.
``AnthropicStreamWriter`` serves the ``/v1/messages`` ingress: fed our backends' chunks, it returns
Anthropic events (dicts whose ``type`` is also the SSE event name). Framing bytes is api/sse.py's
job; nothing here performs I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

from hybridgate.errors import BackendError, UpstreamAuthError, UpstreamProtocolError, UpstreamStatusError
from hybridgate.types import Json
from hybridgate.wire.anthropic_responses import (
    ERROR_STATUSES,
    anthropic_usage,
    finish_reason,
    lenient_input,
    message_id,
    openai_usage,
    stop_details,
    tool_use_block,
)

T = TypeVar("T")
_TEXT = -1  # block map value for a text block; tool blocks map to their OpenAI tool index
_SKIPPED = -2  # server tools and future block types: no OpenAI slot
_THINKING = -3  # a thinking block: its text becomes reasoning_content
_EMPTY_TEXT: Json = {"type": "text", "text": ""}
_EMPTY_THINKING: Json = {"type": "thinking", "thinking": "", "signature": ""}


def _get(obj: Json, key: str, kind: type[T]) -> T:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise UpstreamProtocolError(f"anthropic stream: {obj.get('type', 'object')} has no valid '{key}'")
    return value


class AnthropicStreamReader:
    """Anthropic stream events in, OpenAI chunks out. ``finished`` turns True at message_stop."""

    def __init__(self, *, created: int | None = None) -> None:
        self.id = ""
        self.model = ""
        self.created = created if created is not None else int(time.time())
        self.finished = False
        self._started = False
        self._blocks: dict[int, int] = {}
        self._usage: Json = {}
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None

    def feed(self, event: Json) -> list[Json]:
        kind = event.get("type")
        if kind == "error":
            raise _in_band_error(event)
        if kind == "message_start":
            return self._message_start(event)
        if kind not in ("content_block_start", "content_block_delta", "message_delta", "message_stop"):
            return []  # ping, content_block_stop, and event types added after this was written
        if not self._started or self.finished:
            raise UpstreamProtocolError(f"anthropic stream: {kind} outside message_start..message_stop")
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            self._message_delta(event)
            return []
        return self._message_stop()

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def _message_start(self, event: Json) -> list[Json]:
        if self._started:
            raise UpstreamProtocolError("anthropic stream: a second message_start")
        message = _get(event, "message", dict)
        self.id, self.model = _get(message, "id", str), str(message.get("model", ""))
        self._merge_usage(message.get("usage"))
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: Json) -> list[Json]:
        index, block = _get(event, "index", int), _get(event, "content_block", dict)
        if block.get("type") == "text":
            self._blocks[index] = _TEXT
            return [self._chunk({"content": block["text"]})] if block.get("text") else []
        if block.get("type") == "thinking":
            self._blocks[index] = _THINKING
            return [self._chunk({"reasoning_content": block["thinking"]})] if block.get("thinking") else []
        if block.get("type") == "redacted_thinking":
            self._blocks[index] = _SKIPPED
            return [self._chunk({"thinking_blocks": [block]})]  # opaque: passed on whole
        if block.get("type") != "tool_use":
            self._blocks[index] = _SKIPPED
            return []
        tool_index = sum(1 for target in self._blocks.values() if target >= 0)
        self._blocks[index] = tool_index
        # The API streams tool input as input_json_delta after an empty ``input``; a non-empty one
        # is passed on whole so no argument is lost.
        arguments = json.dumps(block["input"]) if block.get("input") else ""
        function = {"name": _get(block, "name", str), "arguments": arguments}
        call = {"index": tool_index, "id": _get(block, "id", str), "type": "function", "function": function}
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, event: Json) -> list[Json]:
        index, delta = _get(event, "index", int), _get(event, "delta", dict)
        target = self._blocks.get(index)
        if target is None:
            raise UpstreamProtocolError(f"anthropic stream: delta for content block {index}, never started")
        if delta.get("type") == "text_delta" and target == _TEXT:
            return [self._chunk({"content": _get(delta, "text", str)})]
        if delta.get("type") == "input_json_delta" and target >= 0:
            partial = _get(delta, "partial_json", str)
            call = {"index": target, "function": {"arguments": partial}}
            return [self._chunk({"tool_calls": [call]})] if partial else []
        if delta.get("type") == "thinking_delta" and target == _THINKING:
            return [self._chunk({"reasoning_content": _get(delta, "thinking", str)})]
        if delta.get("type") == "signature_delta" and target == _THINKING:
            signed = {"type": "thinking", "thinking": "", "signature": _get(delta, "signature", str)}
            return [self._chunk({"thinking_blocks": [signed]})]
        return []  # citation deltas and future delta types have no OpenAI slot

    def _message_delta(self, event: Json) -> None:
        delta = _get(event, "delta", dict)
        self._stop_reason = delta.get("stop_reason") or self._stop_reason
        if isinstance(delta.get("stop_sequence"), str):
            self._stop_sequence = delta["stop_sequence"]
        self._merge_usage(event.get("usage"))

    def _message_stop(self) -> list[Json]:
        self.finished = True
        final = self._chunk({}, finish_reason(self._stop_reason) or "stop")
        if self._stop_reason == "stop_sequence" and self._stop_sequence is not None:
            final["choices"][0]["stop_reason"] = self._stop_sequence  # vLLM's field for the match
        usage = {**self._chunk({}), "choices": [], "usage": openai_usage(self._usage)}
        return [final, usage]

    def _merge_usage(self, usage: Any) -> None:
        # message_delta counts are cumulative, so later values replace earlier ones.
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if isinstance(v, int)})


def _in_band_error(event: Json) -> BackendError:
    error = event.get("error")
    error = error if isinstance(error, dict) else {}
    type_ = str(error.get("type") or "api_error")[:64]
    status = ERROR_STATUSES.get(type_, 502)
    if status in (401, 403):  # the gateway's key, not the caller's
        return UpstreamAuthError("anthropic upstream failed mid-stream: upstream authentication failed")
    # The upstream's own message stays out: it is for the operator (the backend logs it).
    message = f"anthropic upstream failed mid-stream ({type_})"
    return UpstreamStatusError(message, status_code=status, type=type_)


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class AnthropicStreamWriter:
    """OpenAI chunks in, Anthropic events out; call ``finish()`` once the chunks end.

    Reasoning (``reasoning_content``, signed ``thinking_blocks``) streams live as thinking blocks
    and text as text blocks, each opened when its kind of delta starts. Tool calls are assembled
    by their ``index`` and sent as whole tool_use blocks at the end: OpenAI may interleave
    fragments of parallel calls, while an Anthropic block cannot reopen once stopped (the API
    itself buffers tool input by default).
    """

    def __init__(self, *, model: str | None = None, input_tokens: int = 0) -> None:
        self.model = model
        self.input_tokens = input_tokens  # message_start wants it before usage is known
        self._started = False
        self._finished = False
        self._open: str | None = None  # "text" or "thinking": the block deltas go to
        self._index = -1  # the index of the last block started
        self._tools: dict[int, _ToolCall] = {}
        self._finish_reason: str | None = None
        self._stop_sequence: str | None = None
        self._usage: Json | None = None

    def feed(self, chunk: Json) -> list[Json]:
        events = [] if self._started else [self._message_start(chunk)]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def finish(self) -> list[Json]:
        if self._finished:
            return []
        self._finished = True
        events = [] if self._started else [self._message_start({})]
        events += self._close()
        for _, call in sorted(self._tools.items()):
            self._index += 1
            events += _tool_events(self._index, call)
        reason, sequence = stop_details(
            {"finish_reason": self._finish_reason, "stop_reason": self._stop_sequence}, bool(self._tools)
        )
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        events.append({"type": "message_delta", "delta": delta, "usage": anthropic_usage(self._usage)})
        events.append({"type": "message_stop"})
        return events

    def _message_start(self, chunk: Json) -> Json:
        self._started = True
        message: Json = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model or str(chunk.get("model", "")),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return {"type": "message_start", "message": message}

    def _choice(self, choice: Json) -> list[Json]:
        delta = choice.get("delta") or {}
        events: list[Json] = []
        if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
            thought = {"type": "thinking_delta", "thinking": delta["reasoning_content"]}
            events += self._delta("thinking", thought)
        for block in delta.get("thinking_blocks") or []:
            events += self._thinking_block(block)
        if isinstance(delta.get("content"), str) and delta["content"]:
            events += self._delta("text", {"type": "text_delta", "text": delta["content"]})
        for fragment in delta.get("tool_calls") or []:
            self._tool_fragment(fragment)
        if choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])
            matched = choice.get("stop_reason")
            self._stop_sequence = matched if isinstance(matched, str) else None
        return events

    def _delta(self, kind: str, delta: Json) -> list[Json]:
        """A delta for a block of ``kind``, opening one (and closing the other) when needed."""
        events: list[Json] = []
        if self._open != kind:
            events += self._close()
            self._index += 1
            self._open = kind
            empty = _EMPTY_TEXT if kind == "text" else _EMPTY_THINKING
            events.append({"type": "content_block_start", "index": self._index, "content_block": empty})
        events.append({"type": "content_block_delta", "index": self._index, "delta": delta})
        return events

    def _thinking_block(self, block: Any) -> list[Json]:
        if not isinstance(block, dict):
            return []
        if block.get("type") == "thinking" and isinstance(block.get("signature"), str):
            # the signature ends its block: the next reasoning opens a new one
            signed = self._delta("thinking", {"type": "signature_delta", "signature": block["signature"]})
            return signed + self._close()
        if block.get("type") == "redacted_thinking":
            events = self._close()
            self._index += 1
            events.append({"type": "content_block_start", "index": self._index, "content_block": block})
            events.append({"type": "content_block_stop", "index": self._index})
            return events
        return []

    def _close(self) -> list[Json]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._index}]

    def _tool_fragment(self, fragment: Json) -> None:
        call = self._tools.setdefault(int(fragment.get("index", 0)), _ToolCall())
        call.id = call.id or str(fragment.get("id") or "")
        function = fragment.get("function") or {}
        call.name += str(function.get("name") or "")
        call.arguments += str(function.get("arguments") or "")


def _tool_events(index: int, call: _ToolCall) -> list[Json]:
    block = tool_use_block({"id": call.id, "function": {"name": call.name}})
    partial = json.dumps(lenient_input(call.arguments))  # valid JSON even when the model's was not
    return [
        {"type": "content_block_start", "index": index, "content_block": block},
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": partial},
        },
        {"type": "content_block_stop", "index": index},
    ]


async def anthropic_events(
    chunks: AsyncIterable[Json], *, model: str | None = None, input_tokens: int = 0
) -> AsyncIterator[Json]:
    """The whole Anthropic event sequence for a stream of OpenAI chunks."""
    writer = AnthropicStreamWriter(model=model, input_tokens=input_tokens)
    async for chunk in chunks:
        for event in writer.feed(chunk):
            yield event
    for event in writer.finish():
        yield event
