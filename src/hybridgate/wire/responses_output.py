"""OpenAI ``response`` object <-> OpenAI ``chat.completion``, plus usage and status.

``response_from_completion`` renders our pipeline's answer for the ``/v1/responses`` ingress and
reads our own backends' output leniently. ``completion_from_response`` reads what a Responses
upstream sent (``openai_compat`` with ``api = "responses"``), so a body that is not the documented
shape raises ``UpstreamProtocolError``. Pure functions, no I/O.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from hybridgate.errors import UpstreamProtocolError
from hybridgate.types import Json


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass
class Envelope:
    """What a ``response`` object says about its request, apart from the output."""

    id: str
    model: str
    request: Json  # the caller's Responses request
    store: bool
    created_at: int = field(default_factory=lambda: int(time.time()))

    def response(self, status: str, output: list[Json], usage: Json | None, **extra: Any) -> Json:
        request = self.request
        text: Json = {"format": (request.get("text") or {}).get("format") or {"type": "text"}}
        body: Json = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "max_tool_calls": request.get("max_tool_calls"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"), "summary": None},
            "service_tier": "default",
            "store": self.store,
            "temperature": request.get("temperature", 1.0),
            "text": text,
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_logprobs": request.get("top_logprobs", 0),
            "top_p": request.get("top_p", 1.0),
            "truncation": request.get("truncation", "disabled"),
            "usage": usage,
            "user": request.get("user"),
            "metadata": request.get("metadata") or {},
        }
        body.update(extra)
        if status == "completed" or status == "incomplete":
            body["completed_at"] = int(time.time()) if status == "completed" else None
            body["output_text"] = output_text(output)
        return body


def output_text(output: list[Json]) -> str:
    """All ``output_text`` parts joined, as the SDKs' ``response.output_text`` does."""
    return "".join(
        str(part.get("text", ""))
        for item in output
        if item.get("type") == "message"
        for part in item.get("content") or []
        if part.get("type") == "output_text"
    )


def responses_usage(usage: Json | None) -> Json | None:
    """Chat ``usage`` as Responses ``usage``, with cached and reasoning counts when known."""
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def chat_usage(usage: Any) -> Json | None:
    """Responses ``usage`` as chat ``usage``."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def status_of(finish_reason: str | None) -> tuple[str, Json | None]:
    """A chat ``finish_reason`` as the response's ``status`` and ``incomplete_details``."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def message_item(item_id: str, text: str, refusal: str | None = None, status: str = "completed") -> Json:
    content: list[Json] = []
    if text or refusal is None:
        content.append(text_part(text))
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item_id: str, call: Json, status: str = "completed") -> Json:
    function = call.get("function") or {}
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": str(call.get("id") or new_id("call")),
        "name": str(function.get("name") or ""),
        "arguments": str(function.get("arguments") or ""),
    }


def reasoning_item(item_id: str, text: str) -> Json:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def response_from_completion(completion: Json, envelope: Envelope) -> Json:
    """Our pipeline's ``chat.completion`` as a ``response`` object."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[Json] = []
    if reasoning := message.get("reasoning_content"):
        output.append(reasoning_item(new_id("rs"), str(reasoning)))
    content, refusal = message.get("content"), message.get("refusal")
    if content or refusal:
        output.append(message_item(new_id("msg"), str(content or ""), refusal))
    for call in message.get("tool_calls") or []:
        output.append(function_call_item(new_id("fc"), call))
    if not output:
        output.append(message_item(new_id("msg"), ""))
    status, incomplete = status_of(choice.get("finish_reason"))
    usage = responses_usage(completion.get("usage"))
    return envelope.response(status, output, usage, incomplete_details=incomplete)


# --- a Responses upstream's answer -> chat.completion ------------------------------------------


def completion_from_response(body: Any, who: str) -> Json:
    """A Responses upstream's ``response`` object as a ``chat.completion``."""
    if (
        not isinstance(body, dict)
        or body.get("object") != "response"
        or not isinstance(body.get("output"), list)
    ):
        raise UpstreamProtocolError(f"{who} answered without a response object: {str(body)[:200]!r}")
    if body.get("status") == "failed":
        error = body.get("error") or {}
        raise UpstreamProtocolError(f"{who} failed the response: {error.get('message') or error}")
    message = message_from_output(body["output"], who)
    finish = "tool_calls" if message.get("tool_calls") else finish_reason_of(body)
    return {
        "id": str(body.get("id") or new_id("chatcmpl")),
        "object": "chat.completion",
        "created": int(body.get("created_at") or time.time()),
        "model": str(body.get("model") or ""),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": chat_usage(body.get("usage")),
    }


def finish_reason_of(body: Json) -> str:
    if body.get("status") == "incomplete":
        reason = (body.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "stop"


def message_from_output(output: list[Any], who: str) -> Json:
    texts: list[str] = []
    refusals: list[str] = []
    reasoning: list[str] = []
    calls: list[Json] = []
    for item in output:
        if not isinstance(item, dict):
            raise UpstreamProtocolError(f"{who} sent an output item that is not an object")
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(str(part.get("text", "")))
                elif part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal", "")))
        elif kind == "function_call":
            function = {"name": str(item.get("name", "")), "arguments": str(item.get("arguments", ""))}
            calls.append({"id": str(item.get("call_id", "")), "type": "function", "function": function})
        elif kind == "reasoning":
            parts = item.get("content") or item.get("summary") or []
            reasoning += [str(p.get("text", "")) for p in parts if isinstance(p, dict)]
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return message
