"""Swap PII for numbered placeholders before a cloud call, and swap it back in the answer.

Sits between the router's decision and the cascade: under a ``redact`` policy the pipeline sends
the request from ``redact_request`` upstream and passes the answer through ``RedactionMap.restore``
(or a ``StreamRestorer`` per streamed text). Pure string work, no I/O. A ``RedactionMap`` holds
the original values: it lives for one request and must never be logged, cached or persisted
(its ``repr`` shows counts only).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hybridgate.types import ChatRequest, Json, Message

if TYPE_CHECKING:  # detect imports Presidio, which is slow to import; only its types are needed here
    from hybridgate.privacy.detect import Findings, PiiDetector, Span

# Entity types are upper-case words joined by "_"; the number is per type and per request.
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_[0-9]+>")

TextFn = Callable[[str], str]


class RedactionMap:
    """Placeholders of one request: the same (type, value) always gets the same placeholder."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._issued: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RedactionMap({dict(self._issued)})"

    @property
    def counts(self) -> dict[str, int]:
        """Distinct values replaced, per entity type."""
        return dict(sorted(self._issued.items()))

    def placeholder_for(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        if (known := self._by_value.get(key)) is not None:
            return known
        self._issued[entity_type] += 1
        placeholder = f"<{entity_type}_{self._issued[entity_type]}>"
        self._by_value[key] = placeholder
        self._values[placeholder] = value
        return placeholder

    def apply(self, text: str, spans: Sequence[Span]) -> str:
        """``text`` with each span (sorted, non-overlapping, as ``PiiDetector`` gives them)
        replaced by its placeholder."""
        if not spans:
            return text
        parts: list[str] = []
        cursor = 0
        for span in spans:
            parts += (
                text[cursor : span.start],
                self.placeholder_for(span.entity_type, text[span.start : span.end]),
            )
            cursor = span.end
        parts.append(text[cursor:])
        return "".join(parts)

    def restore(self, text: str, *, json_escaped: bool = False) -> str:
        """Put the original values back. Unknown placeholder-like text is left alone.

        ``json_escaped``: ``text`` is JSON source (tool-call arguments), so values go back as
        JSON string content, with quotes and newlines escaped.
        """
        if not self._values or "<" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._value(m.group(0), json_escaped), text)

    def partial_start(self, text: str) -> int:
        """Where a possibly unfinished placeholder begins at the end of ``text``, else its length.

        A placeholder has "<" only as its first character, so only the last "<" can start one.
        """
        start = text.rfind("<")
        if start == -1 or ">" in text[start:]:
            return len(text)
        tail = text[start:]
        return start if any(p.startswith(tail) for p in self._values) else len(text)

    def _value(self, placeholder: str, json_escaped: bool) -> str:
        value = self._values.get(placeholder)
        if value is None:
            return placeholder
        return json.dumps(value, ensure_ascii=False)[1:-1] if json_escaped else value


class StreamRestorer:
    """Restores one streamed text (a choice's content, or one tool call's arguments).

    A placeholder can be split across deltas ("<EMAIL_AD" + "DRESS_1>"), so the end of a delta
    that could still become one is held back until the next delta or ``flush``.
    """

    def __init__(self, redactions: RedactionMap, *, json_escaped: bool = False) -> None:
        self._map = redactions
        self._json = json_escaped
        self._held = ""

    def feed(self, delta: str) -> str:
        if not len(self._map):
            return delta
        text = self._held + delta
        cut = self._map.partial_start(text)
        self._held = text[cut:]
        return self._map.restore(text[:cut], json_escaped=self._json)

    def flush(self) -> str:
        """What is still held back, restored if it turned out complete. Call at stream end."""
        held, self._held = self._held, ""
        return self._map.restore(held, json_escaped=self._json)


class Redactor:
    """Redacts the texts of one request with one map, so placeholders agree across messages."""

    def __init__(self, detector: PiiDetector, redactions: RedactionMap | None = None) -> None:
        self._detector = detector
        self.map = redactions if redactions is not None else RedactionMap()

    def redact(self, text: str) -> str:
        return self.map.apply(text, self._detector.scan_text(text))

    def restore(self, text: str) -> str:
        return self.map.restore(text)

    def stream_restorer(self, *, json_escaped: bool = False) -> StreamRestorer:
        return StreamRestorer(self.map, json_escaped=json_escaped)


def redact_request(
    request: ChatRequest, detector: PiiDetector, findings: Findings | None = None
) -> tuple[ChatRequest, RedactionMap]:
    """A copy of ``request`` with PII in every text slot replaced, and the map to restore it.

    ``findings``, when given, must be ``detector.scan(request_texts(request))``: the pipeline
    scans once for the decision and reuses the spans here instead of scanning again.
    """
    redactions = RedactionMap()
    if findings is None:
        return map_request_texts(request, Redactor(detector, redactions).redact), redactions
    if len(findings.spans) != len(request_texts(request)):
        raise ValueError("findings do not belong to this request; pass detector.scan(request_texts(request))")
    spans = iter(findings.spans)
    return map_request_texts(request, lambda text: redactions.apply(text, next(spans))), redactions


def request_texts(request: ChatRequest) -> list[str]:
    """Every text slot of a request, in the order ``map_request_texts`` visits them."""
    texts: list[str] = []

    def collect(text: str) -> str:
        texts.append(text)
        return text

    map_request_texts(request, collect)
    return texts


# Keys of content parts whose values are binary data, references or enums, never prose.
_NOT_TEXT_KEYS = frozenset(
    {
        "type",
        "data",
        "url",
        "image_url",
        "file_data",
        "file_id",
        "cache_control",
        "media_type",
        "detail",
        "format",
    }
)


def map_request_texts(request: ChatRequest, fn: TextFn) -> ChatRequest:
    """A copy of ``request`` with ``fn`` applied to each text slot that can reach an upstream:
    message text and text parts (tool results included, as tool messages; Anthropic system blocks
    and documents arrive as parts), a message's ``name``, ``refusal``, ``reasoning_content`` and
    other extra fields, each key, string and number inside tool-call arguments (current and legacy
    ``function_call``), and on the request ``user``, ``metadata`` values, ``stop``, tool
    definitions, ``response_format`` and every extra field. The original is not modified."""
    update: dict[str, Any] = {"messages": [_map_message(m, fn) for m in request.messages]}
    if request.user is not None:
        update["user"] = fn(request.user)
    if request.metadata:
        update["metadata"] = {key: fn(value) for key, value in request.metadata.items()}
    if request.stop is not None:
        update["stop"] = _map_strings(request.stop, fn)
    for name in ("tools", "response_format"):
        if (value := getattr(request, name)) is not None:
            update[name] = _map_strings(value, fn)
    copy = request.model_copy(update=update)
    if copy.__pydantic_extra__:
        copy.__pydantic_extra__ = {k: _map_strings(v, fn) for k, v in copy.__pydantic_extra__.items()}
    return copy


def _map_message(message: Message, fn: TextFn) -> Message:
    update: dict[str, Any] = {}
    if isinstance(message.content, str):
        update["content"] = fn(message.content)
    elif message.content:
        update["content"] = [_map_part(part, fn) for part in message.content]
    if message.name is not None:
        update["name"] = fn(message.name)
    if message.tool_calls:
        update["tool_calls"] = [_map_tool_call(call, fn) for call in message.tool_calls]
    copy = message.model_copy(update=update)
    if extra := copy.__pydantic_extra__:
        copy.__pydantic_extra__ = {key: _map_extra(key, value, fn) for key, value in extra.items()}
    return copy


def _map_extra(key: str, value: Any, fn: TextFn) -> Any:
    """``refusal``, ``reasoning_content`` and unknown fields: strings; legacy ``function_call``:
    its arguments as tool-call arguments are."""
    if key == "function_call" and isinstance(value, dict):
        return _map_tool_call({"function": value}, fn)["function"]
    return _map_strings(value, fn)


def _map_part(part: Json, fn: TextFn) -> Json:
    if part.get("type") == "text" and isinstance(part.get("text"), str):
        return {**part, "text": fn(part["text"])}
    if part.get("type") in ("image_url", "input_image", "image", "input_audio"):
        return part
    # documents and other parts: every string that is not binary data or a reference
    return {k: v if k in _NOT_TEXT_KEYS else _map_strings(v, fn) for k, v in part.items()}


def _map_strings(value: Any, fn: TextFn) -> Any:
    """Every string inside ``value`` (not keys, not numbers) mapped by ``fn``."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {key: _map_strings(item, fn) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, fn) for item in value]
    return value


def _map_tool_call(call: Json, fn: TextFn) -> Json:
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": _map_arguments(function["arguments"], fn)}}


def _map_arguments(arguments: str, fn: TextFn) -> str:
    """Arguments are JSON source: redact its values rather than its text, so a span can never
    swallow a quote and the upstream (the Anthropic translation parses them) still gets JSON."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return fn(arguments)
    mapped = _map_json(parsed, fn)
    return arguments if mapped == parsed else json.dumps(mapped, ensure_ascii=False)


def _map_json(value: Any, fn: TextFn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(key): _map_json(item, fn) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_json(item, fn) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        # A card number sent as a JSON number is still a card number; once redacted it
        # becomes a string, the only JSON type a placeholder fits in.
        text = json.dumps(value)
        mapped = fn(text)
        return value if mapped == text else mapped
    return value
