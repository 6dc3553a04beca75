"""What the Anthropic Messages API refuses, for the stand-in in ``anthropic_upstream.py``.

A stand-in that accepted anything would let a broken translator pass, so the checks the real API
documents and enforces on a request body (required fields, ranges, non-empty text blocks,
tool_use/tool_result pairing) are reproduced here. Pure functions; the stand-in is NOT Anthropic.
"""

from __future__ import annotations

import json
from typing import Any

_BLOCK_TYPES = {"text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking", "document"}
_MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
_TOOL_CHOICES = {"auto", "any", "tool", "none"}


def text_of(content: Any) -> str:
    """All text in a content value (string or blocks), for the stand-in's token counts and echo."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            texts.append(text_of(block.get("content")))
        elif isinstance(block, dict) and block.get("type") == "tool_use":
            texts.append(json.dumps(block.get("input")))
    return "\n".join(texts)


def first_violation(body: Any) -> str | None:
    """The message of the first rule ``body`` breaks, or None when the API would accept it."""
    if not isinstance(body, dict):
        return "There was an issue with the request body: not a JSON object"
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    for key in ("temperature", "top_p"):
        if body.get(key) is not None and not 0 <= body[key] <= 1:
            return f"{key}: Input should be less than or equal to 1"
    return _system(body.get("system")) or _tools(body) or _messages(body["messages"])


def _system(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return None
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        return None
    return "system: Input should be a valid string or a list of text blocks"


def _tools(body: dict[str, Any]) -> str | None:
    for i, tool in enumerate(body.get("tools") or []):
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        if not isinstance(schema, dict) or schema.get("type") != "object" or not tool.get("name"):
            return f"tools.{i}: a tool needs a name and an input_schema of type object"
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES):
        return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
    if isinstance(choice, dict) and choice["type"] == "tool" and not choice.get("name"):
        return "tool_choice.tool.name: Field required"
    return None


def _messages(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        problem = _content(i, message.get("content"))
        problem = problem or _pairing(i, message, messages[i - 1] if i else None, messages[i + 1 :][:1])
        if problem:
            return problem
    return None


def _content(i: int, content: Any) -> str | None:
    if isinstance(content, str):
        return None
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        return f"messages.{i}.content: Input should be a valid string or list of blocks"
    for j, block in enumerate(content):
        if block.get("type") not in _BLOCK_TYPES:
            return f"messages.{i}.content.{j}.type: unknown block type {block.get('type')!r}"
        if block["type"] == "text" and not block.get("text"):
            return "messages: text content blocks must be non-empty"
        if block["type"] == "image" and not _valid_image(block.get("source")):
            return f"messages.{i}.content.{j}.image.source: invalid image source"
    return None


def _valid_image(source: Any) -> bool:
    if not isinstance(source, dict):
        return False
    if source.get("type") == "base64":
        return source.get("media_type") in _MEDIA_TYPES and bool(source.get("data"))
    return source.get("type") == "url" and str(source.get("url", "")).startswith(("http://", "https://"))


def _ids(message: Any, kind: str, key: str) -> list[str]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [str(b.get(key)) for b in content if isinstance(b, dict) and b.get("type") == kind]


def _pairing(i: int, message: dict[str, Any], previous: Any, following: list[Any]) -> str | None:
    results = _ids(message, "tool_result", "tool_use_id")
    if message["role"] == "user" and results:
        kinds = [b.get("type") for b in message["content"]]
        if kinds[: len(results)] != ["tool_result"] * len(results):
            return f"messages.{i}: tool_result blocks must come first in the user message"
        unexpected = [r for r in results if r not in _ids(previous, "tool_use", "id")]
        if unexpected:
            return (
                f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{unexpected[0]}. Each `tool_result` block must have a corresponding `tool_use` block "
                "in the previous message."
            )
    uses = _ids(message, "tool_use", "id")
    if message["role"] == "assistant" and uses and following:
        missing = [u for u in uses if u not in _ids(following[0], "tool_result", "tool_use_id")]
        if missing:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {missing[0]}. Each `tool_use` block must have a corresponding `tool_result` "
                "block in the next message."
            )
    return None
