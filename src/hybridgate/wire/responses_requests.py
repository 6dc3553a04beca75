"""OpenAI Responses request -> OpenAI chat-completions request (``ChatRequest``), inbound.

``from_responses_request`` serves the ``/v1/responses`` ingress: a caller's request, so anything
malformed is a ``RequestError`` naming the parameter. ``input_messages`` turns input items into
chat messages (also for the stored history of ``previous_response_id``); ``input_items`` lists
them as ``GET /v1/responses/{id}/input_items`` returns them. The other direction (an
``openai_compat`` backend with ``api = "responses"``) is responses_upstream.py. Pure functions.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json, Message
from hybridgate.wire.responses_output import new_id

# Tools the Responses API runs on OpenAI's side; a gateway in front of other models cannot.
BUILT_IN_TOOLS = (
    "web_search",
    "web_search_preview",
    "file_search",
    "computer_use_preview",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
)
# Request fields the translation reads; the gateway itself reads store and previous_response_id.
# The rest of the documented ones are accepted and have no effect here (include, truncation, ...).
KNOWN_FIELDS = {
    "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
    "max_output_tokens", "temperature", "top_p", "metadata", "user", "stream", "store",
    "previous_response_id", "reasoning", "include", "truncation", "stream_options", "background",
    "prompt_cache_key", "safety_identifier", "service_tier", "top_logprobs", "conversation",
    "max_tool_calls", "prompt",
}  # fmt: skip
_ROLES = ("user", "assistant", "system", "developer")


def _fail(message: str, param: str) -> RequestError:
    return RequestError(f"invalid request: {param}: {message}", param=param)


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _fail("must be a string", param)
    return value


# --- Responses -> chat -------------------------------------------------------------------------


def from_responses_request(body: Json, history: list[Message] | None = None) -> ChatRequest:
    """The ``ChatRequest`` for a Responses request; ``history`` is the stored conversation of
    ``previous_response_id`` (its input and output), put before this request's input."""
    _check_fields(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("is required and must be a string", "model")
    messages: list[Message] = []
    if (instructions := body.get("instructions")) is not None:
        messages.append(Message(role="system", content=_text(instructions, "instructions")))
    messages += history or []
    new = input_messages(body.get("input"))
    if not new and not history:
        raise _fail("is required: a string or a list of input items", "input")
    _check_calls(messages, new)
    messages += new
    data: Json = {"model": model, "messages": [m.model_dump(exclude_none=True) for m in messages]}
    data |= _tool_fields(body)
    data |= _sampling_fields(body)
    if (text := body.get("text")) is not None and (fmt := response_format(text)) is not None:
        data["response_format"] = fmt
    if body.get("stream") is not None:
        data["stream"] = _bool(body["stream"], "stream")
    for key in ("user", "metadata"):
        if body.get(key) is not None:
            data[key] = body[key]
    if effort := _reasoning_effort(body.get("reasoning")):
        data["reasoning_effort"] = effort
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _responses_param(".".join(str(p) for p in first["loc"]))
        raise _fail(first["msg"], param) from exc


def _reasoning_effort(reasoning: Any) -> str | None:
    """``reasoning.effort``, once ``reasoning`` is checked to be an object (the answer echoes it)."""
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise _fail("must be an object", "reasoning")
    effort = reasoning.get("effort")
    return None if effort is None else _text(effort, "reasoning.effort")


def _check_fields(body: Json) -> None:
    for key in body:
        if key not in KNOWN_FIELDS:
            raise _fail("unknown parameter", key)
    for key in ("background", "conversation", "prompt"):
        if body.get(key):
            raise _fail("is not supported by this gateway (it needs state kept by OpenAI)", key)


def _check_calls(history: list[Message], new: list[Message]) -> None:
    """Each function_call_output answers a function_call made before it, and a stored
    conversation is continued, not repeated."""
    called = {str(c.get("id")) for m in history for c in m.tool_calls or []}
    repeated = set()
    for message in new:
        for call in message.tool_calls or []:
            if str(call.get("id")) in called:
                repeated.add(str(call.get("id")))
            called.add(str(call.get("id")))
        if message.role == "tool" and message.tool_call_id not in called:
            raise _fail(
                f"function_call_output for call_id {message.tool_call_id!r} answers no function_call "
                "of the conversation",
                "input",
            )
    if repeated:
        raise _fail(
            f"repeats function_call {sorted(repeated)[0]!r} of previous_response_id's conversation; "
            "send only the new items with previous_response_id, or the whole history without it",
            "input",
        )


def _responses_param(chat_param: str) -> str:
    names = {"max_completion_tokens": "max_output_tokens", "response_format": "text.format"}
    head = chat_param.split(".")[0]
    return names.get(head, "input" if head == "messages" else chat_param)


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise _fail("must be a boolean", param)
    return value


def _sampling_fields(body: Json) -> Json:
    data: Json = {}
    for key in ("temperature", "top_p"):
        if (value := body.get(key)) is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail("must be a number", key)
            data[key] = value
    if (limit := body.get("max_output_tokens")) is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _fail("must be an integer of at least 1", "max_output_tokens")
        data["max_completion_tokens"] = limit
    if (top := body.get("top_logprobs")) is not None:
        data["logprobs"] = True
        data["top_logprobs"] = top
    return data


def _tool_fields(body: Json) -> Json:
    data: Json = {}
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _fail("must be a list of tools", "tools")
        if tools:
            data["tools"] = [chat_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    if (choice := body.get("tool_choice")) is not None:
        data["tool_choice"] = chat_tool_choice(choice)
    if (parallel := body.get("parallel_tool_calls")) is not None and "tools" in data:
        data["parallel_tool_calls"] = _bool(parallel, "parallel_tool_calls")
    return data


def chat_tool(tool: Any, param: str) -> Json:
    """A Responses function tool as a chat-completions tool; built-in tools are refused."""
    if not isinstance(tool, dict):
        raise _fail("must be an object", param)
    kind = tool.get("type")
    if kind in BUILT_IN_TOOLS:
        raise _fail(
            f"built-in tool '{kind}' is not supported by this gateway; only function tools are "
            "(run the tool in your application and send its result as function_call_output)",
            f"{param}.type",
        )
    if kind != "function":
        raise _fail(f"unknown tool type {kind!r}; supported: function", f"{param}.type")
    function: Json = {"name": _text(tool.get("name"), f"{param}.name")}
    if tool.get("description") is not None:
        function["description"] = _text(tool["description"], f"{param}.description")
    if tool.get("parameters") is not None:
        if not isinstance(tool["parameters"], dict):
            raise _fail("must be a JSON schema object", f"{param}.parameters")
        function["parameters"] = tool["parameters"]
    if tool.get("strict") is not None:
        function["strict"] = bool(tool["strict"])
    return {"type": "function", "function": function}


def chat_tool_choice(choice: Any) -> str | Json:
    if choice in ("auto", "none", "required"):
        return str(choice)
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": _text(choice.get("name"), "tool_choice.name")}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        mode = choice.get("mode", "auto")
        tools = [
            {"type": "function", "function": {"name": t.get("name")}}
            for t in choice.get("tools") or []
            if isinstance(t, dict)
        ]
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}
    raise _fail('must be auto, none, required or {"type": "function", "name": ...}', "tool_choice")


def response_format(text: Any) -> Json | None:
    """``text.format`` as a chat ``response_format`` (None for plain text)."""
    if not isinstance(text, dict):
        raise _fail("must be an object", "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _fail("must be an object", "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _fail("json_schema needs a 'schema' object", "text.format.schema")
        schema: Json = {"name": _text(fmt.get("name"), "text.format.name"), "schema": fmt["schema"]}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise _fail(
        f"unknown format type {kind!r}; supported: text, json_object, json_schema", "text.format.type"
    )


def input_messages(items: Any) -> list[Message]:
    """The chat messages for a Responses ``input``: a string, or a list of input items."""
    if items is None:
        return []
    if isinstance(items, str):
        return [Message(role="user", content=items)]
    if not isinstance(items, list):
        raise _fail("must be a string or a list of input items", "input")
    messages: list[Message] = []
    for index, item in enumerate(items):
        _add_item(messages, item, f"input[{index}]")
    return messages


def _add_item(messages: list[Message], item: Any, param: str) -> None:
    if not isinstance(item, dict):
        raise _fail("must be an object", param)
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        messages.append(_message(item, param))
    elif kind == "function_call":
        call = {
            "id": _text(item.get("call_id"), f"{param}.call_id"),
            "type": "function",
            "function": {
                "name": _text(item.get("name"), f"{param}.name"),
                "arguments": _text(item.get("arguments"), f"{param}.arguments"),
            },
        }
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant" and last.tool_calls is not None:
            last.tool_calls.append(call)  # parallel calls: one assistant turn
        else:
            messages.append(Message(role="assistant", content=None, tool_calls=[call]))
    elif kind == "function_call_output":
        call_id = _text(item.get("call_id"), f"{param}.call_id")
        messages.append(Message(role="tool", tool_call_id=call_id, content=_tool_output(item, param)))
    elif kind == "reasoning":
        return  # the model's own reasoning: upstream chat APIs take no such input, so it is dropped
    elif kind == "item_reference":
        raise _fail(
            "item_reference is not supported; send the item itself or use previous_response_id", param
        )
    else:
        raise _fail(f"unknown input item type {kind!r}", f"{param}.type")


def _tool_output(item: Json, param: str) -> str | list[Json]:
    output = item.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return [_part(p, f"{param}.output[{i}]", "user") for i, p in enumerate(output)]
    raise _fail("must be a string or a list of content parts", f"{param}.output")


def _message(item: Json, param: str) -> Message:
    role = item.get("role")
    if role not in _ROLES:
        raise _fail(f"must be one of {', '.join(_ROLES)}", f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        return Message(role=role, content=content)
    if not isinstance(content, list):
        raise _fail("must be a string or a list of content parts", f"{param}.content")
    parts = [_part(p, f"{param}.content[{i}]", role) for i, p in enumerate(content)]
    if role != "user" and all(p["type"] == "text" for p in parts):
        # system, developer and assistant turns are text only in chat completions
        return Message(role=role, content="".join(p["text"] for p in parts) if role == "assistant" else parts)
    return Message(role=role, content=parts)


def _part(part: Any, param: str, role: str) -> Json:
    if not isinstance(part, dict):
        raise _fail("must be an object", param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _text(part.get("text"), f"{param}.text")}
    if kind == "refusal":
        return {"type": "text", "text": _text(part.get("refusal"), f"{param}.refusal")}
    if kind == "input_image" and role == "user":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise _fail(
                "needs image_url (a URL or a data: URL); file_id is not supported", f"{param}.image_url"
            )
        image: Json = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _fail(f"unsupported content part type {kind!r} for role {role}", f"{param}.type")


_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def input_items(items: Any) -> list[Json]:
    """A request's ``input`` as the list of items ``GET /v1/responses/{id}/input_items`` returns:
    a string becomes one user message; every item gets an id (and a type) if it had none."""
    if isinstance(items, str):
        items = [{"role": "user", "content": [{"type": "input_text", "text": items}]}]
    listed: list[Json] = []
    for item in items if isinstance(items, list) else []:
        kind = item.get("type", "message")
        entry = {"type": kind, **item}
        if kind == "message" and isinstance(entry.get("content"), str):
            text_type = "output_text" if entry.get("role") == "assistant" else "input_text"
            entry["content"] = [{"type": text_type, "text": entry["content"]}]
        entry.setdefault("id", new_id(_ID_PREFIXES.get(kind, "item")))
        listed.append(entry)
    return listed
