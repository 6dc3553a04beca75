"""OpenAI chat-completions request (``ChatRequest``) -> OpenAI Responses request, outbound.

``to_responses_request`` serves an ``openai_compat`` backend with ``api = "responses"``: our own
request, already validated, becomes the body of ``POST {base_url}/responses`` (nothing stored
upstream). Pure functions: no I/O, no knowledge of routing or backends.
"""

from __future__ import annotations

from hybridgate.types import ChatRequest, Json, Message


def items_from_messages(messages: list[Message]) -> tuple[str | None, list[Json]]:
    """Chat messages as Responses input items; system messages become ``instructions``."""
    instructions: list[str] = []
    items: list[Json] = []
    for message in messages:
        if message.role in ("system", "developer") and not items:
            instructions.append(message.text())
        elif message.role == "tool":
            output = message.content if isinstance(message.content, str) else message.text()
            items.append(
                {"type": "function_call_output", "call_id": message.tool_call_id or "", "output": output}
            )
        else:
            items += _message_items(message)
    return ("\n\n".join(instructions) if instructions else None), items


def _message_items(message: Message) -> list[Json]:
    items: list[Json] = []
    role = "developer" if message.role == "developer" else message.role
    if message.content:
        items.append({"type": "message", "role": role, "content": _content_parts(message)})
    for call in message.tool_calls or []:
        function = call.get("function") or {}
        items.append(
            {
                "type": "function_call",
                "call_id": str(call.get("id", "")),
                "name": str(function.get("name", "")),
                "arguments": str(function.get("arguments") or ""),
            }
        )
    return items


def _content_parts(message: Message) -> list[Json]:
    text_type = "output_text" if message.role == "assistant" else "input_text"
    if isinstance(message.content, str):
        return [{"type": text_type, "text": message.content}]
    parts: list[Json] = []
    for part in message.content or []:
        if part.get("type") == "text":
            parts.append({"type": text_type, "text": str(part.get("text", ""))})
        elif part.get("type") == "image_url":
            image = part.get("image_url") or {}
            parts.append(
                {"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail", "auto")}
            )
    return parts


def to_responses_request(request: ChatRequest, model: str, *, stream: bool) -> Json:
    """The Responses API body for ``request`` sent to ``model`` (nothing stored upstream)."""
    instructions, items = items_from_messages(request.messages)
    body: Json = {"model": model, "input": items, "store": False, "stream": stream}
    if instructions is not None:
        body["instructions"] = instructions
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if (limit := request.output_limit()) is not None:
        body["max_output_tokens"] = limit
    if request.tools:
        body["tools"] = [_responses_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _responses_tool_choice(request.tool_choice)
    extra = request.model_extra or {}
    if extra.get("parallel_tool_calls") is not None:
        body["parallel_tool_calls"] = extra["parallel_tool_calls"]
    if extra.get("reasoning_effort"):
        body["reasoning"] = {"effort": extra["reasoning_effort"]}
    if request.response_format and (fmt := _text_format(request.response_format)):
        body["text"] = {"format": fmt}
    if request.user:
        body["user"] = request.user
    if request.metadata:
        body["metadata"] = request.metadata
    return body


def _responses_tool(tool: Json) -> Json:
    function = tool.get("function") or {}
    out: Json = {"type": "function", "name": function.get("name")}
    for key in ("description", "parameters", "strict"):
        if function.get(key) is not None:
            out[key] = function[key]
    out.setdefault("strict", False)  # chat's default; the Responses API would assume true
    return out


def _responses_tool_choice(choice: str | Json) -> str | Json:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "name": (choice.get("function") or {}).get("name")}
    return choice


def _text_format(fmt: Json) -> Json | None:
    kind = fmt.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("json_schema") or {}
        return {"type": "json_schema", **schema}
    return None
