"""The OpenAI chat-completions wire format, rendered from a scripted reply (tests only).

Pure data for the OpenAI stand-in in ``openai_upstream.py``: what a test can script
(``Reply``, ``Fail``, ``Drop``, ...) and how a reply becomes a ``chat.completion`` body or a list of
``chat.completion.chunk`` frames, shaped as OpenAI documents them. No I/O, no server, no hybridgate.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]
FINGERPRINT = "fp_standin01"


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    name: str
    arguments: str  # a JSON text, streamed in fragments exactly as OpenAI does
    id: str = field(default_factory=_call_id)


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    delay_s: float = 0.0  # wait before the first byte of the response
    chunk_delay_s: float = 0.0  # streams only: wait before each chunk after the first


@dataclass(frozen=True, kw_only=True)
class Reply(Behaviour):
    """A successful completion. With neither content nor tool calls, the echo reply is used."""

    content: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None  # default: "tool_calls" when there are any, else "stop"
    # Extensions some OpenAI-compatible servers send (OpenAI itself sends neither): vLLM's
    # choice-level "stop_reason" (the matched stop string), and a reasoning model's
    # message-level "reasoning_content" (vLLM, DeepSeek).
    stop_reason: str | int | None = None
    reasoning_content: str | None = None
    model: str | None = None  # the model reported as answering; default: the one asked for


@dataclass(frozen=True, kw_only=True)
class Fail(Behaviour):
    """An HTTP error with an OpenAI error body, for streaming and non-streaming requests alike."""

    status: int
    type: str
    message: str = "scripted failure"
    code: str | None = None
    param: str | None = None


@dataclass(frozen=True, kw_only=True)
class FailMidStream(Behaviour):
    """A 200 stream that sends ``after_chunks`` chunks, then an in-band ``data: {"error": ...}``."""

    after_chunks: int
    type: str = "server_error"
    message: str = "scripted mid-stream failure"


@dataclass(frozen=True, kw_only=True)
class Garbage(Behaviour):
    """A body that is not the documented format (a proxy's HTML page, by default)."""

    body: bytes = b"<html><body>upstream proxy says hello</body></html>"
    status: int = 200
    content_type: str = "text/html"


@dataclass(frozen=True, kw_only=True)
class Drop(Behaviour):
    """The connection breaks after ``after_chunks`` chunks (half the body, when not streaming)."""

    after_chunks: int
    content: str = "one two three four five six seven eight"


@dataclass(frozen=True, kw_only=True)
class Truncate(Behaviour):
    """The body ends cleanly after ``after_chunks`` chunks, without ``[DONE]`` (half the JSON, when
    not streaming)."""

    after_chunks: int
    content: str = "one two three four five six seven eight"


def count_tokens(text: str) -> int:
    """The stand-in's tokenizer: whitespace-separated words."""
    return len(text.split())


def message_text(message: Json) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def echo(body: Json) -> str:
    """The default reply: deterministic, and different for every last user message."""
    users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
    return f"echo: {message_text(users[-1]) if users else ''}"


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> Json:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class Completion:
    """One completion, rendered either as a ``chat.completion`` body or as chunk frames."""

    def __init__(self, request: Json, reply: Reply) -> None:
        self.request = request
        self.reply = reply
        self.id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        self.created = int(time.time())
        self.finish_reason = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def usage(self) -> Json:
        prompt = sum(count_tokens(message_text(m)) for m in self.request["messages"] if isinstance(m, dict))
        completion = count_tokens(self.reply.content or "")
        completion += sum(count_tokens(c.arguments) for c in self.reply.tool_calls)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def _envelope(self, object: str) -> Json:
        return {
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.reply.model or self.request["model"],
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }

    def body(self) -> Json:
        message: Json = {
            "role": "assistant",
            "content": self.reply.content,
            "refusal": None,
            "annotations": [],
        }
        if self.reply.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.reply.tool_calls
            ]
        if self.reply.reasoning_content is not None:
            message["reasoning_content"] = self.reply.reasoning_content
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}
        if self.reply.stop_reason is not None:
            choice["stop_reason"] = self.reply.stop_reason
        return {**self._envelope("chat.completion"), "choices": [choice], "usage": self.usage()}

    def chunks(self) -> list[Json]:
        content = self.reply.content
        deltas: list[Json] = [{"role": "assistant", "content": "" if content else None, "refusal": None}]
        if self.reply.reasoning_content:
            deltas.append({"reasoning_content": self.reply.reasoning_content})
        deltas += [{"content": piece} for piece in re.findall(r"\s*\S+", content or "")]
        for index, call in enumerate(self.reply.tool_calls):
            head = {"index": index, "id": call.id, "type": "function"}
            deltas.append({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
            for start in range(0, len(call.arguments), 8):
                fragment = call.arguments[start : start + 8]
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        include_usage = bool((self.request.get("stream_options") or {}).get("include_usage"))
        chunks = [self._chunk(delta, None, include_usage) for delta in deltas]
        chunks.append(self._chunk({}, self.finish_reason, include_usage))
        if self.reply.stop_reason is not None:
            chunks[-1]["choices"][0]["stop_reason"] = self.reply.stop_reason
        if include_usage:
            chunks.append({**self._envelope("chat.completion.chunk"), "choices": [], "usage": self.usage()})
        return chunks

    def _chunk(self, delta: Json, finish_reason: str | None, include_usage: bool) -> Json:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self._envelope("chat.completion.chunk"), "choices": [choice]}
        if include_usage:
            # With include_usage, OpenAI sends "usage": null on every chunk but the last.
            chunk["usage"] = None
        return chunk


def as_reply(behaviour: Behaviour, body: Json) -> Reply:
    if isinstance(behaviour, Drop | Truncate):
        return Reply(content=behaviour.content)
    if isinstance(behaviour, Reply) and (behaviour.content is not None or behaviour.tool_calls):
        return behaviour
    if isinstance(behaviour, Reply):
        return Reply(
            content=echo(body),
            finish_reason=behaviour.finish_reason,
            stop_reason=behaviour.stop_reason,
            reasoning_content=behaviour.reasoning_content,
            model=behaviour.model,
        )
    return Reply(content=echo(body))
