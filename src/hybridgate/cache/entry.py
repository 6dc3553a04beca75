"""A cached answer: the completion body, who made it, what it cost, and how to replay it.

Stored as compact JSON bytes so every store (memory, SQLite, Redis) keeps the same thing. A
streamed answer is folded into one completion before it is stored; a hit for a streaming caller
is replayed as a proper ``chat.completion.chunk`` sequence (role and content, tool calls, the
finish reason, then usage), so the API layer writes SSE exactly as for a live answer.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from hybridgate.errors import StoreUnavailableError
from hybridgate.types import ChatResponse, Json, Usage


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: Json  # an OpenAI chat.completion
    backend: str
    model: str
    cost_usd: float  # what the answer cost when it was made: what each hit saves
    created_at: float

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedAnswer:
        try:
            fields: dict[str, Any] = orjson.loads(data)
            answer = cls(**fields)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise StoreUnavailableError(f"cache entry does not decode: {exc}") from exc
        if not isinstance(answer.body, dict) or not isinstance(answer.body.get("choices"), list):
            raise StoreUnavailableError("cache entry holds no chat.completion")
        return answer

    def response(self, request_id: str) -> ChatResponse:
        """The cached completion, under the new request's id and time."""
        return ChatResponse({**self.body, "id": f"chatcmpl-{request_id}", "created": int(time.time())})

    @property
    def usage(self) -> Usage:
        return Usage.from_openai(self.body.get("usage"))


def replay_chunks(response: ChatResponse) -> list[Json]:
    """A completion as the chunk sequence a streaming upstream would have sent: thinking blocks
    (their text, then the signature alone, as the Anthropic translation streams them), content
    and tool calls, the finish reason with the matched stop string, then usage."""
    body = response.body
    head: Json = {k: body[k] for k in ("id", "created", "model", "system_fingerprint") if k in body}
    head["object"] = "chat.completion.chunk"
    choice = body["choices"][0] if body.get("choices") else {}
    message = choice.get("message") or {}
    chunks: list[Json] = []
    blocks = message.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        for block in blocks:
            chunks += _thinking_chunks(head, block)
    delta: Json = {"role": "assistant", "content": message.get("content") or ""}
    delta.update({k: v for k, v in message.items() if k not in ("role", "content") and isinstance(v, str)})
    if chunks:  # the reasoning went out block by block, the role with the first
        delta.pop("reasoning_content", None)
        chunks[0]["choices"][0]["delta"]["role"] = delta.pop("role")
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
    first: Json = {"index": 0, "delta": delta, "finish_reason": None}
    if choice.get("logprobs"):
        first["logprobs"] = choice["logprobs"]
    last: Json = {"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}
    if choice.get("stop_reason") is not None:
        last["stop_reason"] = choice["stop_reason"]
    chunks += [{**head, "choices": [first]}, {**head, "choices": [last]}]
    if body.get("usage"):
        chunks.append({**head, "choices": [], "usage": body["usage"]})
    return chunks


def _thinking_chunks(head: Json, block: Any) -> list[Json]:
    def chunk(delta: Json) -> Json:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}

    if not isinstance(block, dict):
        return []
    if block.get("type") != "thinking":
        return [chunk({"thinking_blocks": [block]})]  # redacted: opaque, whole
    text = block.get("thinking") if isinstance(block.get("thinking"), str) else ""
    signed = {"type": "thinking", "thinking": "", "signature": block.get("signature") or ""}
    return [*([chunk({"reasoning_content": text})] if text else []), chunk({"thinking_blocks": [signed]})]
