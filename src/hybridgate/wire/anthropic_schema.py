"""The shape of an Anthropic Messages API request, checked before any translation.

Translation code reads validated data only, so a caller's wrong types (a number where a list
belongs, a block without its text) become a 400 naming the field, never a crash. Unknown fields
are kept (``extra="allow"``): the API grows, and passing them on is the translator's choice.
Pure validation; no I/O.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hybridgate.errors import RequestError

# For each block type, the fields it cannot do without.
REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("source",),
    "tool_use": ("id", "name", "input"),
    "tool_result": ("tool_use_id",),
    "document": ("source",),
}


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class Block(Loose):
    type: str
    text: str | None = None
    source: dict[str, Any] | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[dict[str, Any]] | None = None
    is_error: bool | None = None

    @model_validator(mode="after")
    def _has_required(self) -> Block:
        missing = [f for f in REQUIRED_BY_TYPE.get(self.type, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.type} block needs {', '.join(missing)}")
        return self


class Turn(Loose):
    role: Literal["user", "assistant", "system"]
    content: str | list[Block]


class Tool(Loose):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class ToolChoice(Loose):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class MessagesRequest(Loose):
    model: str
    max_tokens: int = Field(ge=1)
    messages: list[Turn]
    system: str | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stream: bool | None = None
    metadata: dict[str, Any] | None = None


def check_messages_request(body: Any) -> None:
    """Raise ``RequestError`` naming the first field of ``body`` that breaks the API's shape."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    try:
        MessagesRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise RequestError(f"invalid request: {param}: {first['msg']}", param=param) from exc
