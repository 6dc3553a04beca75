"""``POST /v1/embeddings`` requests: OpenAI's shape, checked once, as a list of inputs.

``input`` is a string, a list of strings, a list of token ids, or a list of token-id lists; each
becomes one ``EmbeddingInput`` (text or tokens). Everything a backend cannot honour is a 400 that
names the parameter; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hybridgate.errors import RequestError

EncodingFormat = Literal["float", "base64"]


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request; unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: Any
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: EncodingFormat = "float"
    user: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingInput:
    """One thing to embed: a text, or token ids for servers that take them."""

    text: str | None = None
    tokens: tuple[int, ...] | None = None

    def cache_text(self) -> str:
        """What identifies the input in the per-text cache key (texts and token ids never collide)."""
        return "t:" + self.text if self.text is not None else "i:" + ",".join(map(str, self.tokens or ()))


def inputs_of(request: EmbeddingRequest, max_inputs: int) -> list[EmbeddingInput]:
    """The request's inputs in order; malformed, empty or too many inputs are a 400 on ``input``."""
    raw = request.input
    if isinstance(raw, str):
        items: list[EmbeddingInput] = [_text(raw, "input")]
    elif isinstance(raw, list) and raw and all(_is_token(x) for x in raw):
        items = [_tokens(raw, "input")]
    elif isinstance(raw, list) and raw:
        items = [_one(x, f"input[{i}]") for i, x in enumerate(raw)]
    elif isinstance(raw, list):
        raise RequestError("input is an empty list: send at least one text", param="input")
    else:
        raise RequestError(
            "input must be a string, a list of strings, a list of token ids or a list of token-id lists",
            param="input",
        )
    if len(items) > max_inputs:
        raise RequestError(f"input has {len(items)} items; at most {max_inputs} per request", param="input")
    if len({item.text is None for item in items}) > 1:
        raise RequestError("input mixes texts and token arrays; send one kind per request", param="input")
    return items


def _one(value: object, where: str) -> EmbeddingInput:
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, list) and value and all(_is_token(x) for x in value):
        return _tokens(value, where)
    raise RequestError(
        f"{where} must be a non-empty string or a non-empty list of token ids; "
        "all items of one request must be of one kind",
        param="input",
    )


def _text(value: str, where: str) -> EmbeddingInput:
    if not value:
        raise RequestError(f"{where} is an empty string", param="input")
    return EmbeddingInput(text=value)


def _tokens(value: list[Any], where: str) -> EmbeddingInput:
    if any(x < 0 or x >= 2**31 for x in value):
        raise RequestError(f"{where} holds a token id out of range", param="input")
    return EmbeddingInput(tokens=tuple(value))


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
