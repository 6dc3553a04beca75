"""Provider-neutral request, response and decision types.

The internal lingua franca is the OpenAI chat-completions shape: every ingress (OpenAI, Anthropic)
translates into ``ChatRequest``, every backend returns ``ChatResponse`` / stream chunks in the
OpenAI ``chat.completion`` / ``chat.completion.chunk`` shape, and the egress translates back.
Nothing here performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from hybridgate.auth.records import KeyRecord

Json = dict[str, Any]
MAX_CHOICES = 8  # n > 1: served by repeated calls where the backend cannot (wire/fields.py)


class Message(BaseModel):
    """One chat message. Content is a string or a list of typed parts (text, image_url, ...)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Json] | None = None
    name: str | None = None
    tool_calls: list[Json] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text parts joined; images and other parts are skipped."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")

    def has_image(self) -> bool:
        return isinstance(self.content, list) and any(
            p.get("type") in ("image_url", "input_image", "image") for p in self.content
        )


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request. Unknown fields are kept and passed upstream."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: Json | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1, le=MAX_CHOICES)
    tools: list[Json] | None = None
    tool_choice: str | Json | None = None
    response_format: Json | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    seed: int | None = None

    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""

    def prompt_text(self) -> str:
        """All message text, in order: what the prompt hash and PII checks look at."""
        return "\n".join(m.text() for m in self.messages)

    def has_images(self) -> bool:
        return any(m.has_image() for m in self.messages)

    def wants_usage_in_stream(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))

    def upstream_body(self, model: str) -> Json:
        """The request as JSON for an OpenAI-compatible upstream, with the concrete model."""
        body = self.model_dump(exclude_none=True)
        body["model"] = model
        # What the Anthropic edge carries for Anthropic upstreams only (wire/fields.py) stays here.
        body.pop("anthropic", None)
        for tool in body.get("tools") or ():
            tool.pop("cache_control", None)
        for message in body["messages"]:
            message.pop("thinking_blocks", None)
            if message["role"] == "tool":
                message.pop("cache_control", None)
                message.pop("is_error", None)
            for part in message["content"] if isinstance(message.get("content"), list) else ():
                if isinstance(part, dict):
                    part.pop("document", None)
        return body


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: Json | None) -> Usage:
        if not usage:
            return cls()
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))

    def as_openai(self) -> Json:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class ChatResponse:
    """A complete ``chat.completion`` body as an OpenAI upstream would send it."""

    body: Json

    @property
    def usage(self) -> Usage:
        return Usage.from_openai(self.body.get("usage"))

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def system_fingerprint(self) -> str | None:
        value = self.body.get("system_fingerprint")
        return str(value) if value else None


@dataclass(frozen=True)
class Decision:
    """Where the router sends a request, and why. Recorded in headers and in the ledger."""

    route: str
    backends: tuple[str, ...]
    rule: str
    reasons: tuple[str, ...] = ()
    model_override: str | None = None


# The caller's wish about the response cache: Cache-Control no-store / no-cache, or
# x-hybridgate-cache: off | refresh | force ("force" caches a non-deterministic request too).
CacheDirective = Literal["default", "no-cache", "no-store", "force"]


@dataclass
class RequestContext:
    """Who asked and how: everything about a request that is not its body."""

    request_id: str
    api: Literal["openai", "anthropic", "embeddings", "responses"] = "openai"
    api_key_id: str | None = None
    environment: str = "default"
    feature: str | None = None
    cohort: str | None = None
    route_override: str | None = None
    privacy_policy: str | None = None  # set by the caller's API key, if it carries one
    shadow_of: str | None = None  # set on the background copy of a shadowed request
    origin: str = "live"  # live | shadow | replay | eval | judge: the egress path it takes
    allowed_routes: tuple[str, ...] = ()  # the caller's key may use only these (empty: all)
    key: KeyRecord | None = None  # the verified key whose limits and budgets apply
    cache: CacheDirective = "default"
    started_at: float = 0.0  # wall clock, for the ledger
    started_perf: float = 0.0  # perf_counter, for latencies
    extra: dict[str, str] = field(default_factory=dict)
