"""The OpenAI Responses API wire format, rendered from a scripted reply (tests only).

Pure data for the OpenAI stand-in's ``POST /v1/responses`` (``openai_upstream.py``): a scripted
``Reply`` becomes a ``response`` object or the documented event sequence (``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta`` ... ``response.completed``), shaped as OpenAI documents them and
written here by hand, independently of hybridgate's own translation. No I/O, no server.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from tests.standins.openai_wire import Json, Reply, count_tokens

# The documented body parameters of POST /v1/responses; the API answers 400 to any other.
RESPONSES_PARAMS = {
    "background", "conversation", "include", "input", "instructions", "max_output_tokens",
    "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id", "prompt",
    "prompt_cache_key", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier",
    "store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools",
    "top_logprobs", "top_p", "truncation", "user",
}  # fmt: skip


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:32]}"


def input_text(item: Any) -> str:
    """The text of one input item (a message's parts, or a function call's output)."""
    if not isinstance(item, dict):
        return ""
    if item.get("type") == "function_call_output":
        return str(item.get("output", ""))
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text", "")) for p in content or [] if isinstance(p, dict))


def echo(body: Json) -> str:
    """The default reply: the last user message's text, as the chat stand-in's echo."""
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"]
    return f"echo: {input_text(users[-1]) if users else ''}"


class ResponseBody:
    """One response, rendered either as a ``response`` object or as its event stream."""

    def __init__(self, request: Json, reply: Reply) -> None:
        self.request = request
        self.reply = reply
        self.id = _id("resp")
        self.created_at = int(time.time())
        self.message_id = _id("msg")
        self.call_ids = [_id("fc") for _ in reply.tool_calls]

    def usage(self) -> Json:
        items = self.request["input"] if isinstance(self.request["input"], list) else [self.request["input"]]
        prompt = sum(count_tokens(input_text(i) if isinstance(i, dict) else str(i)) for i in items)
        output = count_tokens(self.reply.content or "") + sum(
            count_tokens(c.arguments) for c in self.reply.tool_calls
        )
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + output,
        }

    def _incomplete(self) -> bool:
        return self.reply.finish_reason == "length"

    def output(self) -> list[Json]:
        items: list[Json] = []
        if self.reply.content is not None:
            part = {"type": "output_text", "text": self.reply.content, "annotations": [], "logprobs": []}
            items.append(
                {
                    "id": self.message_id,
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        for item_id, call in zip(self.call_ids, self.reply.tool_calls, strict=True):
            items.append(
                {
                    "id": item_id,
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
            )
        return items

    def body(
        self, status: str | None = None, output: list[Json] | None = None, usage: Json | None = None
    ) -> Json:
        final = status is None
        status = status or ("incomplete" if self._incomplete() else "completed")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if final and self._incomplete() else None,
            "instructions": self.request.get("instructions"),
            "max_output_tokens": self.request.get("max_output_tokens"),
            "model": self.request["model"],
            "output": self.output() if output is None else output,
            "parallel_tool_calls": self.request.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": self.request.get("store", True),
            "temperature": self.request.get("temperature", 1.0),
            "text": self.request.get("text") or {"format": {"type": "text"}},
            "tool_choice": self.request.get("tool_choice", "auto"),
            "tools": self.request.get("tools", []),
            "top_p": self.request.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self.usage() if final else usage,
            "user": None,
            "metadata": {},
        }

    def events(self) -> list[Json]:
        """The event sequence, without sequence numbers (``numbered`` adds them)."""
        progress = self.body("in_progress", [], None)
        events: list[Json] = [
            {"type": "response.created", "response": progress},
            {"type": "response.in_progress", "response": progress},
        ]
        index = 0
        if self.reply.content is not None:
            events += self._message_events(index, self.reply.content)
            index += 1
        for item in self.output()[index:]:
            events += self._call_events(index, item)
            index += 1
        kind = "response.incomplete" if self._incomplete() else "response.completed"
        events.append({"type": kind, "response": self.body()})
        return numbered(events)

    def _message_events(self, index: int, text: str) -> list[Json]:
        where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
        empty = {
            "id": self.message_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events: list[Json] = [
            {"type": "response.output_item.added", "output_index": index, "item": empty},
            {"type": "response.content_part.added", **where, "part": part},
        ]
        events += [
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
            for piece in re.findall(r"\s*\S+", text)
        ]
        done = {**part, "text": text}
        events += [
            {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": done},
            {"type": "response.output_item.done", "output_index": index, "item": self.output()[index]},
        ]
        return events

    def _call_events(self, index: int, item: Json) -> list[Json]:
        added = {**item, "status": "in_progress", "arguments": ""}
        where = {"item_id": item["id"], "output_index": index}
        events: list[Json] = [{"type": "response.output_item.added", "output_index": index, "item": added}]
        arguments = item["arguments"]
        events += [
            {"type": "response.function_call_arguments.delta", **where, "delta": arguments[i : i + 8]}
            for i in range(0, len(arguments), 8)
        ]
        events += [
            {
                "type": "response.function_call_arguments.done",
                **where,
                "arguments": arguments,
                "name": item["name"],
            },
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
        return events


def numbered(events: list[Json]) -> list[Json]:
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def failure_events(response: ResponseBody, message: str, after: int) -> list[Json]:
    """A stream that fails after ``after`` events: an ``error`` event, as the API sends it."""
    events = response.events()[:after]
    events.append({"type": "error", "code": "server_error", "message": message, "param": None})
    return numbered(events)
