"""Anthropic <-> OpenAI translation of the small pieces: content parts, tools and tool choice.

Pure functions used by ``wire/anthropic_requests.py`` in both directions. What the other side has
no slot for (audio parts, server tools) is refused with a ``RequestError`` naming the
part: these pieces always come from a caller's request, never from an upstream. No I/O.
"""

from __future__ import annotations

import json
import re

from hybridgate.errors import RequestError
from hybridgate.types import Json

_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[^;,]*)*;base64,(?P<data>.*)", re.S)
_DEFAULT_SCHEMA: Json = {"type": "object", "properties": {}}


def _keep_cache_control(target: Json, source: Json) -> Json:
    # Prompt-caching marks are Anthropic's; OpenAI-shaped clients that know them (and our own
    # Anthropic ingress) put them on text parts, so they survive the trip in both directions.
    if "cache_control" in source:
        target["cache_control"] = source["cache_control"]
    return target


def image_source(url: str) -> Json:
    """An OpenAI ``image_url`` URL as an Anthropic image ``source`` (base64 or url)."""
    if match := _DATA_URL.fullmatch(url):
        return {"type": "base64", "media_type": match["media"], "data": match["data"]}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise RequestError("image_url must be a base64 data: URL or an http(s) URL", param="messages")


def image_url(source: Json) -> str:
    """An Anthropic image ``source`` as an OpenAI ``image_url`` URL."""
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise RequestError(f"image source type '{source.get('type')}' is not supported", param="messages")


def block_from_part(part: Json) -> Json:
    """One OpenAI content part (text, image_url) as an Anthropic content block."""
    kind = part.get("type")
    if isinstance(part.get("document"), dict):
        return dict(part["document"])  # a document block from the Anthropic edge, as it came
    if kind == "text":
        return _keep_cache_control({"type": "text", "text": str(part.get("text", ""))}, part)
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise RequestError("an image_url part needs image_url.url", param="messages")
        return _keep_cache_control({"type": "image", "source": image_source(url)}, part)
    raise RequestError(
        f"content part type '{kind}' cannot be sent to the Anthropic Messages API; use text or image_url",
        param="messages",
    )


def part_from_block(block: Json) -> Json:
    """One Anthropic content block (text, image) as an OpenAI content part."""
    kind = block.get("type")
    if kind == "text":
        return _keep_cache_control({"type": "text", "text": str(block.get("text", ""))}, block)
    if kind == "image":
        source = block.get("source")
        if not isinstance(source, dict):
            raise RequestError("an image block needs a source object", param="messages")
        return _keep_cache_control({"type": "image_url", "image_url": {"url": image_url(source)}}, block)
    if kind == "document":
        return document_part(block)
    raise RequestError(
        f"content block type '{kind}' is not supported; use text, image or document", param="messages"
    )


def document_part(block: Json) -> Json:
    """A document block: plain-text documents read as text by every tier; other sources (PDF,
    URL, content) keep their own part type, which only Anthropic upstreams accept (wire/fields.py).
    The block itself rides along so an Anthropic upstream gets it unchanged."""
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
        title = block.get("title")
        text = f"{title}\n\n{source['data']}" if isinstance(title, str) and title else source["data"]
        return {"type": "text", "text": text, "document": block}
    return {"type": "document", "document": block}


def tool_input(arguments: object, name: str) -> Json:
    """The JSON object an OpenAI tool call's ``arguments`` string encodes (Anthropic's ``input``)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError as exc:
        raise RequestError(f"tool call '{name}' has arguments that are not JSON", param="messages") from exc
    if not isinstance(value, dict):
        raise RequestError(f"tool call '{name}' arguments must be a JSON object", param="messages")
    return value


def anthropic_tool(tool: Json) -> Json:
    """An OpenAI ``{"type": "function", "function": {...}}`` tool as an Anthropic tool."""
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict) or "name" not in function:
        raise RequestError("only function tools can be sent to the Anthropic Messages API", param="tools")
    converted: Json = {
        "name": function["name"],
        "input_schema": function.get("parameters") or _DEFAULT_SCHEMA,
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return _keep_cache_control(converted, tool)


def openai_tool(tool: Json) -> Json:
    """An Anthropic client tool (name, description, input_schema) as an OpenAI function tool."""
    if tool.get("type", "custom") != "custom" or "name" not in tool:
        raise RequestError(
            f"tool type '{tool.get('type')}' is not supported; only client tools", param="tools"
        )
    function: Json = {"name": tool["name"], "parameters": tool.get("input_schema") or _DEFAULT_SCHEMA}
    if tool.get("description"):
        function["description"] = tool["description"]
    # cache_control rides on the tool for Anthropic upstreams; types.upstream_body drops it for others
    return _keep_cache_control({"type": "function", "function": function}, tool)


def anthropic_tool_choice(choice: str | Json | None, parallel_tool_calls: object) -> Json | None:
    """OpenAI ``tool_choice`` + ``parallel_tool_calls`` as Anthropic's ``tool_choice`` object."""
    if choice is None:
        converted: Json = {"type": "auto"}
    elif choice in ("auto", "none"):
        converted = {"type": choice}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        converted = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise RequestError(f"tool_choice {choice!r} is not supported", param="tool_choice")
    if parallel_tool_calls is False and converted["type"] != "none":
        converted["disable_parallel_tool_use"] = True
    if choice is None and len(converted) == 1:
        return None  # nothing said, nothing to send: Anthropic defaults to auto
    return converted


def openai_tool_choice(choice: Json) -> tuple[str | Json, bool | None]:
    """Anthropic ``tool_choice`` as OpenAI ``(tool_choice, parallel_tool_calls)``."""
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind in ("auto", "none"):
        return str(kind), parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise RequestError(f"tool_choice type '{kind}' is not supported", param="tool_choice")
