"""Fold a stream of ``chat.completion.chunk`` dicts back into one ``chat.completion`` body.

The cascade uses it to check a buffered cheap-tier stream exactly as it checks a complete answer
(JSON, tool calls, confidence) before deciding to replay it or escalate. Pure data; no I/O.
"""

from __future__ import annotations

from typing import Any

from hybridgate.types import ChatResponse, Json


class StreamAssembler:
    def __init__(self) -> None:
        self.chunks: list[Json] = []
        self._content: list[str] = []
        self._texts: dict[str, list[str]] = {}  # other text fields: refusal, reasoning_content
        self._calls: dict[int, Json] = {}
        self._logprobs: list[Any] = []
        self._finish: str | None = None
        self._stop_reason: Any = None  # vLLM's choice-level field: the matched stop string
        self._thinking: list[Json] = []  # signed thinking blocks, their text filled in
        self._reasoning: list[str] = []  # reasoning text since the last thinking block
        self._usage: Json | None = None
        self._head: Json = {}

    def add(self, chunk: Json) -> None:
        self.chunks.append(chunk)
        if not self._head:
            self._head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._add_choice(choice)

    def _add_choice(self, choice: Json) -> None:
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            self._content.append(delta["content"])
        for name, value in delta.items():
            if name not in ("role", "content") and isinstance(value, str):
                self._texts.setdefault(name, []).append(value)
        if isinstance(delta.get("reasoning_content"), str):
            self._reasoning.append(delta["reasoning_content"])
        for block in delta.get("thinking_blocks") or ():
            self._add_thinking(block)
        for fragment in delta.get("tool_calls") or ():
            call = self._calls.setdefault(
                int(fragment.get("index", 0)),
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            call["id"] = call["id"] or fragment.get("id") or ""
            function = fragment.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
            self._logprobs += logprobs["content"]
        self._finish = choice.get("finish_reason") or self._finish
        if choice.get("stop_reason") is not None:
            self._stop_reason = choice["stop_reason"]

    def _add_thinking(self, block: Any) -> None:
        """A streamed thinking block arrives as its text (``reasoning_content``) then its
        signature alone; a redacted one whole."""
        if not isinstance(block, dict):
            return
        if block.get("type") == "thinking" and not block.get("thinking"):
            block = {**block, "thinking": "".join(self._reasoning)}
        self._reasoning.clear()
        self._thinking.append(block)

    def response(self) -> ChatResponse:
        message: Json = {"role": "assistant", "content": "".join(self._content) or None}
        message.update({name: "".join(parts) for name, parts in self._texts.items()})
        if self._thinking:
            message["thinking_blocks"] = self._thinking
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
        choice: Json = {"index": 0, "message": message, "finish_reason": self._finish}
        if self._stop_reason is not None:
            choice["stop_reason"] = self._stop_reason
        if self._logprobs:
            choice["logprobs"] = {"content": self._logprobs}
        body: Json = {"object": "chat.completion", **self._head, "choices": [choice]}
        if self._usage is not None:
            body["usage"] = self._usage
        return ChatResponse(body)
