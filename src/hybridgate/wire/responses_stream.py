"""Streaming translation between Responses API events and OpenAI ``chat.completion.chunk`` dicts.

``ResponsesStreamWriter`` serves the ``/v1/responses`` ingress: fed our pipeline's chunks, it
returns Responses events (dicts whose ``type`` is also the SSE event name), each with its
``sequence_number``: ``response.created``, ``response.in_progress``, per output item
``output_item.added`` .. deltas .. ``output_item.done``, then ``response.completed`` (or
``.incomplete``, or ``error`` + ``response.failed``). ``ResponsesStreamReader`` serves an
``openai_compat`` backend with ``api = "responses"``: fed the upstream's events, it returns chunks
and raises ``UpstreamStatusError`` / ``UpstreamProtocolError`` for failures. No I/O here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hybridgate.errors import UpstreamProtocolError, UpstreamStatusError
from hybridgate.types import Json
from hybridgate.wire.responses_output import (
    Envelope,
    chat_usage,
    finish_reason_of,
    function_call_item,
    message_item,
    new_id,
    reasoning_item,
    responses_usage,
    status_of,
    text_part,
)


@dataclass
class _Open:
    """The output item being streamed: its index in ``output`` and the text gathered so far."""

    index: int
    kind: str  # message | function_call | reasoning
    tool_index: int | None = None
    part: str | None = None  # the open content part: output_text | refusal | reasoning_text
    texts: dict[str, str] = field(default_factory=dict)
    where: Json = field(default_factory=dict)  # item_id, output_index, content_index of its deltas
    delta_type: str = ""
    delta_extra: Json = field(default_factory=dict)


_DELTAS = {
    "output_text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "reasoning_text": "response.reasoning_text.delta",
}


class ResponsesStreamWriter:
    """Chat chunks in, Responses events out. Call ``start``, ``feed`` per chunk, then ``finish``
    (or ``fail`` for an error after the stream started)."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.output: list[Json] = []
        self.usage: Json | None = None
        self.finish_reason: str | None = None
        self.final: Json | None = None  # the response object of the last event, once finished
        self._seq = 0
        self._open: _Open | None = None
        self._tools: dict[int, int] = {}  # chat tool index -> output index

    def _event(self, kind: str, **fields: Any) -> Json:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def start(self) -> list[Json]:
        snapshot = self.envelope.response("in_progress", [], None)
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def feed(self, chunk: Json) -> list[Json]:
        if usage := chunk.get("usage"):
            self.usage = usage
        events: list[Json] = []
        for choice in chunk.get("choices") or ():
            if delta := choice.get("delta"):
                if reasoning := delta.get("reasoning_content"):
                    events += self._text("reasoning", "reasoning_text", str(reasoning))
                if content := delta.get("content"):
                    events += self._text("message", "output_text", str(content))
                if refusal := delta.get("refusal"):
                    events += self._text("message", "refusal", str(refusal))
                for call in delta.get("tool_calls") or ():
                    events += self._tool_call(call)
            if finish := choice.get("finish_reason"):
                self.finish_reason = finish
        return events

    def finish(self) -> list[Json]:
        events = self._close()
        status, incomplete = status_of(self.finish_reason)
        if any(item["type"] == "function_call" for item in self.output):
            status, incomplete = "completed", None
        self.final = self.envelope.response(
            status, self.output, responses_usage(self.usage), incomplete_details=incomplete
        )
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=self.final)]

    def fail(self, code: str, message: str, param: str | None = None) -> list[Json]:
        error = {"code": code, "message": message}
        self.final = self.envelope.response("failed", self.output, responses_usage(self.usage), error=error)
        return [
            self._event("error", code=code, message=message, param=param),
            self._event("response.failed", response=self.final),
        ]

    # --- items -----------------------------------------------------------------------------------

    def _begin(self, kind: str, item: Json, tool_index: int | None = None) -> list[Json]:
        events = self._close()
        self._open = _Open(len(self.output), kind, tool_index)
        self.output.append(item)
        return [
            *events,
            self._event("response.output_item.added", output_index=self._open.index, item=dict(item)),
        ]

    def _text(self, kind: str, part: str, text: str) -> list[Json]:
        opened = self._open
        if opened is not None and opened.kind == kind and opened.part == part:  # the hot path
            opened.texts[part] += text
            return [self._event(opened.delta_type, **opened.where, delta=text, **opened.delta_extra)]
        events: list[Json] = []
        if opened is None or opened.kind != kind:
            item_id = new_id("msg" if kind == "message" else "rs")
            empty = (
                {
                    "id": item_id,
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                }
                if kind == "message"
                else {"id": item_id, "type": "reasoning", "summary": []}
            )
            events += self._begin(kind, empty)
            opened = self._open
        assert opened is not None
        item = self.output[opened.index]
        where: Json = {"item_id": item["id"], "output_index": opened.index, "content_index": 0}
        if kind == "message":
            events += self._close_part()
            where["content_index"] = len(item["content"])
            item["content"].append(self._part(part, ""))
            events.append(self._event("response.content_part.added", **where, part=self._part(part, "")))
        opened.part, opened.where = part, where
        opened.delta_type = _DELTAS[part]
        opened.delta_extra = {"logprobs": []} if part == "output_text" else {}
        opened.texts[part] = opened.texts.get(part, "") + text
        events.append(self._event(opened.delta_type, **where, delta=text, **opened.delta_extra))
        return events

    @staticmethod
    def _part(part: str, text: str) -> Json:
        return text_part(text) if part == "output_text" else {"type": "refusal", "refusal": text}

    def _close_part(self) -> list[Json]:
        opened = self._open
        if opened is None or opened.kind != "message" or opened.part is None:
            return []
        item = self.output[opened.index]
        index = len(item["content"]) - 1
        text = opened.texts.get(opened.part, "")
        part = self._part(opened.part, text)
        item["content"][index] = part
        where = {"item_id": item["id"], "output_index": opened.index, "content_index": index}
        done = (
            self._event("response.output_text.done", **where, text=text, logprobs=[])
            if opened.part == "output_text"
            else self._event("response.refusal.done", **where, refusal=text)
        )
        opened.part = None
        return [done, self._event("response.content_part.done", **where, part=part)]

    def _tool_call(self, call: Json) -> list[Json]:
        tool_index = int(call.get("index") or 0)
        function = call.get("function") or {}
        events: list[Json] = []
        if tool_index not in self._tools:
            item = function_call_item(
                new_id("fc"), {**call, "function": {**function, "arguments": ""}}, "in_progress"
            )
            events += self._begin("function_call", item, tool_index)
            self._tools[tool_index] = len(self.output) - 1
        output_index = self._tools[tool_index]
        item = self.output[output_index]
        if arguments := function.get("arguments"):
            item["arguments"] += str(arguments)
            if self._open is not None and self._open.index == output_index:
                events.append(
                    self._event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=output_index,
                        delta=str(arguments),
                    )
                )
        return events

    def _close(self) -> list[Json]:
        opened = self._open
        if opened is None:
            return []
        events = self._close_part()
        item = self.output[opened.index]
        if opened.kind == "message":
            item = message_item(item["id"], opened.texts.get("output_text", ""), opened.texts.get("refusal"))
        elif opened.kind == "reasoning":
            item = reasoning_item(item["id"], opened.texts.get("reasoning_text", ""))
            events.append(
                self._event(
                    "response.reasoning_text.done",
                    item_id=item["id"],
                    output_index=opened.index,
                    content_index=0,
                    text=opened.texts.get("reasoning_text", ""),
                )
            )
        else:
            item["status"] = "completed"
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=opened.index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
        self.output[opened.index] = item
        self._open = None
        return [*events, self._event("response.output_item.done", output_index=opened.index, item=dict(item))]


class ResponsesStreamReader:
    """A Responses upstream's events in, chat chunks out. ``finished`` turns True at the end."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.finished = False
        self._started = False
        self._tools: dict[str, int] = {}  # item id -> chat tool index
        self._streamed: set[str] = set()  # function call items whose arguments came as deltas

    def feed(self, event: Json) -> list[Json]:
        kind = event.get("type")
        if (error := failed_error(event)) is not None:
            raise _upstream_error(error, self.who)
        if kind == "response.created":
            return self._created(event)
        if not self._started:
            if kind == "response.in_progress":
                return []
            raise UpstreamProtocolError(f"{self.who}: stream event {kind!r} before response.created")
        if kind in ("response.completed", "response.incomplete"):
            return self._finished(event)
        if kind == "response.output_text.delta":
            return [self._chunk({"content": str(event.get("delta", ""))})]
        if kind == "response.refusal.delta":
            return [self._chunk({"refusal": str(event.get("delta", ""))})]
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            return [self._chunk({"reasoning_content": str(event.get("delta", ""))})]
        if kind == "response.output_item.added":
            return self._item_added(event.get("item") or {})
        if kind == "response.function_call_arguments.delta":
            return self._arguments(str(event.get("item_id", "")), str(event.get("delta", "")))
        if kind == "response.function_call_arguments.done":
            item_id = str(event.get("item_id", ""))
            if item_id not in self._streamed:
                return self._arguments(item_id, str(event.get("arguments", "")))
        return []  # content_part, output_item.done, annotations and event types added later

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def _created(self, event: Json) -> list[Json]:
        response = event.get("response")
        if not isinstance(response, dict) or not isinstance(response.get("id"), str):
            raise UpstreamProtocolError(f"{self.who}: response.created without a response id")
        self.id, self.model = response["id"], str(response.get("model", ""))
        self.created = int(response.get("created_at") or self.created)
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _item_added(self, item: Json) -> list[Json]:
        if item.get("type") != "function_call":
            return []
        index = len(self._tools)
        self._tools[str(item.get("id", ""))] = index
        arguments = str(item.get("arguments") or "")
        if arguments:
            self._streamed.add(str(item.get("id", "")))
        function = {"name": str(item.get("name", "")), "arguments": arguments}
        call = {"index": index, "id": str(item.get("call_id", "")), "type": "function", "function": function}
        return [self._chunk({"tool_calls": [call]})]

    def _arguments(self, item_id: str, delta: str) -> list[Json]:
        if item_id not in self._tools:
            raise UpstreamProtocolError(f"{self.who}: arguments for function call {item_id!r}, never added")
        self._streamed.add(item_id)
        call = {"index": self._tools[item_id], "function": {"arguments": delta}}
        return [self._chunk({"tool_calls": [call]})] if delta else []

    def _finished(self, event: Json) -> list[Json]:
        response = event.get("response") or {}
        self.finished = True
        finish = "tool_calls" if self._tools else finish_reason_of(response)
        usage = {**self._chunk({}), "choices": [], "usage": chat_usage(response.get("usage"))}
        return [self._chunk({}, finish), usage]


def error_status(error: Any) -> int:
    """The HTTP status an in-band Responses error stands for (the stream itself said 200)."""
    code = error.get("code") if isinstance(error, dict) else None
    return 429 if code == "rate_limit_exceeded" else 400 if code == "invalid_prompt" else 502


def failed_error(event: Json) -> Any:
    """The error object of an ``error`` or ``response.failed`` event (None for other events)."""
    if event.get("type") == "error":
        return event
    if event.get("type") == "response.failed":
        return (event.get("response") or {}).get("error") or {}
    return None


def _upstream_error(error: Any, who: str) -> UpstreamStatusError:
    """Backends turn in-band errors into the caller's error themselves (backends/base.py); this
    one, for other readers, carries no word of the upstream's."""
    kind = error.get("type") or error.get("code") if isinstance(error, dict) else None
    status = error_status(error)
    return UpstreamStatusError(
        f"{who} failed the response", status_code=status, type=str(kind or "upstream_error")
    )
