"""Replies of the Anthropic stand-in, rendered as a ``message`` body or as its SSE events.

Part of the stand-in in ``anthropic_upstream.py`` (NOT Anthropic): given a request body and a
scripted ``Reply``, it produces what the documented Messages API would send: a ``msg_`` id,
text/thinking/tool_use blocks, stop reasons (including stop sequences and max_tokens cut-offs
counted in whitespace words), usage, and the streaming event order with its ``ping``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.standins.anthropic_rules import text_of

Json = dict[str, Any]


def _tool_id() -> str:
    return f"toolu_01{uuid.uuid4().hex[:22]}"


@dataclass(frozen=True, kw_only=True)
class ToolUse:
    name: str
    input: Json
    id: str = field(default_factory=_tool_id)


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    delay_s: float = 0.0  # wait before the first byte of the response


@dataclass(frozen=True, kw_only=True)
class Reply(Behaviour):
    """A successful message: optional thinking, then text, then tool_use blocks."""

    text: str | None = None  # None with no tool uses: the echo reply
    tool_uses: Sequence[ToolUse] = ()
    thinking: str | None = None
    stop_reason: str | None = None  # default: tool_use / max_tokens / stop_sequence / end_turn
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: whitespace-separated words."""
    return len(text.split())


class Message:
    """One reply, rendered either as a ``message`` body or as the SSE event sequence."""

    def __init__(self, request: Json, reply: Reply) -> None:
        self.request = request
        self.reply = reply
        self.id = f"msg_01{uuid.uuid4().hex[:22]}"
        self.text, self.stop_reason, self.stop_sequence = self._generate()
        self.input_tokens = count_tokens(text_of(request.get("system"))) + sum(
            count_tokens(text_of(m.get("content"))) for m in request["messages"]
        )
        self.output_tokens = count_tokens(self.text or "") + sum(
            count_tokens(json.dumps(t.input)) for t in reply.tool_uses
        )

    def _generate(self) -> tuple[str | None, str, str | None]:
        """The text as the model would stop it: at a stop sequence, or after max_tokens words."""
        text, reply = self.reply.text, self.reply
        if text is None:
            return None, reply.stop_reason or "tool_use", None
        for sequence in self.request.get("stop_sequences") or []:
            if sequence in text:
                return text[: text.index(sequence)], reply.stop_reason or "stop_sequence", sequence
        words = re.findall(r"\s*\S+", text)
        if len(words) > self.request["max_tokens"]:
            return "".join(words[: self.request["max_tokens"]]), reply.stop_reason or "max_tokens", None
        return text, reply.stop_reason or ("tool_use" if reply.tool_uses else "end_turn"), None

    def usage(self, output_tokens: int) -> Json:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.reply.cache_creation_input_tokens,
            "cache_read_input_tokens": self.reply.cache_read_input_tokens,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def blocks(self) -> list[Json]:
        blocks: list[Json] = []
        if self.reply.thinking is not None:
            blocks.append({"type": "thinking", "thinking": self.reply.thinking, "signature": "c2lnbmVk"})
        if self.text:
            blocks.append({"type": "text", "text": self.text})
        blocks += [
            {"type": "tool_use", "id": t.id, "name": t.name, "input": t.input} for t in self.reply.tool_uses
        ]
        return blocks

    def body(self) -> Json:
        return {**self._skeleton(), "content": self.blocks(), "usage": self.usage(self.output_tokens)}

    def _skeleton(self) -> Json:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.request["model"],
            "content": [],
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
        }

    def events(self) -> list[Json]:
        start = {**self._skeleton(), "stop_reason": None, "stop_sequence": None, "usage": self.usage(1)}
        events: list[Json] = [{"type": "message_start", "message": start}]
        for index, block in enumerate(self.blocks()):
            events += _block_events(index, block)
            if index == 0:
                events.append({"type": "ping"})  # the API pings after the first block starts
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        events.append(
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": self.output_tokens}}
        )
        events.append({"type": "message_stop"})
        return events


def _block_events(index: int, block: Json) -> list[Json]:
    kind = block["type"]
    # A block starts empty and is filled by its deltas.
    empties: dict[str, Json] = {
        "text": {"text": ""},
        "thinking": {"thinking": "", "signature": ""},
        "tool_use": {"input": {}},
    }
    empty = empties[kind]
    events: list[Json] = [
        {"type": "content_block_start", "index": index, "content_block": {**block, **empty}}
    ]
    if kind == "text":
        deltas = [{"type": "text_delta", "text": piece} for piece in re.findall(r"\s*\S+", block["text"])]
    elif kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        encoded = json.dumps(block["input"])
        deltas = [{"type": "input_json_delta", "partial_json": ""}]  # the API opens with an empty one
        deltas += [
            {"type": "input_json_delta", "partial_json": encoded[i : i + 10]}
            for i in range(0, len(encoded), 10)
        ]
    events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
    events.append({"type": "content_block_stop", "index": index})
    return events
