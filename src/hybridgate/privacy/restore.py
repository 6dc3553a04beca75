"""Put redacted values back into a cloud answer, whole or streamed chunk by chunk.

Sits after the cascade on the way out, for requests sent through ``redact_request``: the
upstream saw placeholders, the caller must see its own data. Works on OpenAI
``chat.completion`` bodies and ``chat.completion.chunk`` dicts, the shapes every backend returns.
Pure dict and string work; never logs what it restores.
"""

from __future__ import annotations

from hybridgate.privacy.redact import RedactionMap, StreamRestorer
from hybridgate.types import Json


def restore_completion(body: Json, redactions: RedactionMap) -> Json:
    """A copy of a ``chat.completion`` body with message content and tool-call arguments restored."""
    if not len(redactions):
        return body
    choices = [_restore_choice(choice, redactions) for choice in body.get("choices") or []]
    return {**body, "choices": choices}


def _restore_choice(choice: Json, redactions: RedactionMap) -> Json:
    message = choice.get("message")
    if not isinstance(message, dict):
        return choice
    restored: Json = dict(message)
    if isinstance(message.get("content"), str):
        restored["content"] = redactions.restore(message["content"])
    if message.get("tool_calls"):
        restored["tool_calls"] = [_restore_call(call, redactions) for call in message["tool_calls"]]
    return {**choice, "message": restored}


def _restore_call(call: Json, redactions: RedactionMap) -> Json:
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    arguments = redactions.restore(function["arguments"], json_escaped=True)
    return {**call, "function": {**function, "arguments": arguments}}


class ChunkRestorer:
    """Restores a stream of ``chat.completion.chunk`` dicts, one instance per response.

    Each choice's content and each tool call's arguments get their own ``StreamRestorer``.
    Text held back because it might be the start of a placeholder is released into the chunk
    that carries the choice's ``finish_reason``, so no extra chunk is needed; a stream that
    ends without one should be closed with ``flush_chunk``.
    """

    def __init__(self, redactions: RedactionMap) -> None:
        self._map = redactions
        self._streams: dict[tuple[int, str, int], StreamRestorer] = {}

    def feed(self, chunk: Json) -> Json:
        if not len(self._map) or not chunk.get("choices"):
            return chunk
        return {**chunk, "choices": [self._choice(choice) for choice in chunk["choices"]]}

    def flush_chunk(self, template: Json) -> Json | None:
        """A last chunk (ids copied from ``template``) with whatever is still held, or None."""
        choices = []
        for index in sorted({key[0] for key in self._streams}):
            delta: Json = {}
            self._release(index, delta)
            if delta:
                choices.append({"index": index, "delta": delta, "finish_reason": None})
        if not choices:
            return None
        kept = {k: v for k, v in template.items() if k not in ("usage", "choices")}
        return {**kept, "choices": choices}

    def _choice(self, choice: Json) -> Json:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return choice
        index = int(choice.get("index") or 0)
        restored: Json = dict(delta)
        if isinstance(delta.get("content"), str):
            restored["content"] = self._restorer(index, "content", 0).feed(delta["content"])
        if delta.get("tool_calls"):
            restored["tool_calls"] = [self._tool_call(index, call) for call in delta["tool_calls"]]
        if choice.get("finish_reason"):
            self._release(index, restored)
        return {**choice, "delta": restored}

    def _tool_call(self, index: int, call: Json) -> Json:
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
            return call
        restorer = self._restorer(index, "arguments", int(call.get("index") or 0))
        return {**call, "function": {**function, "arguments": restorer.feed(function["arguments"])}}

    def _restorer(self, index: int, slot: str, call: int) -> StreamRestorer:
        key = (index, slot, call)
        if key not in self._streams:
            self._streams[key] = StreamRestorer(self._map, json_escaped=slot == "arguments")
        return self._streams[key]

    def _release(self, index: int, delta: Json) -> None:
        """Append the choice's held-back text to ``delta`` (a fresh dict, safe to change)."""
        for (choice, slot, call), restorer in self._streams.items():
            held = restorer.flush() if choice == index else ""
            if not held:
                continue
            if slot == "content":
                delta["content"] = (delta.get("content") or "") + held
            else:
                calls = delta["tool_calls"] = list(delta.get("tool_calls") or [])
                calls.append({"index": call, "function": {"arguments": held}})
