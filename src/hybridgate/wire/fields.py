"""Every request field, per backend kind: translated, passed through, ignored, or refused.

The one table (``FIELDS``) that the cascade enforces (``refusal``: a backend kind that refuses a
field the request uses is skipped; when every backend refuses, the caller gets a 400 naming the
field) and that docs/compatibility.md shows (``markdown_table``; a test keeps them equal). Fields
that arrive on the Anthropic edge without an OpenAI slot ride in ``ChatRequest`` under the
``anthropic`` extra (``anthropic_fields``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hybridgate.errors import RequestError
from hybridgate.types import ChatRequest, Json

Tier = Literal["embedded", "openai_compat", "anthropic"]
Handling = Literal["translated", "passed", "ignored", "refused"]
TIERS: tuple[Tier, ...] = ("embedded", "openai_compat", "anthropic")
ANTHROPIC_EXTRA = "anthropic"  # ChatRequest extra: {"fields": {...}, "beta": "..."} from /v1/messages


@dataclass(frozen=True)
class Cell:
    handling: Handling
    note: str = ""

    def render(self) -> str:
        return f"{self.handling}: {self.note}" if self.note else self.handling


@dataclass(frozen=True)
class Field:
    api: Literal["openai", "anthropic"]
    name: str
    embedded: Cell
    openai_compat: Cell
    anthropic: Cell
    used: Callable[[ChatRequest], bool] | None = None  # None: documented only, never refused

    def cell(self, tier: Tier) -> Cell:
        cell: Cell = getattr(self, tier)
        return cell


def anthropic_fields(request: ChatRequest) -> Json:
    """The Anthropic-only body fields a ``/v1/messages`` request carried (thinking, ...)."""
    extra = (request.model_extra or {}).get(ANTHROPIC_EXTRA)
    fields = extra.get("fields") if isinstance(extra, dict) else None
    return fields if isinstance(fields, dict) else {}


def anthropic_beta(request: ChatRequest) -> str | None:
    extra = (request.model_extra or {}).get(ANTHROPIC_EXTRA)
    beta = extra.get("beta") if isinstance(extra, dict) else None
    return beta if isinstance(beta, str) and beta else None


def _extra(name: str) -> Callable[[ChatRequest], bool]:
    return lambda r: (r.model_extra or {}).get(name) is not None


def _set(name: str) -> Callable[[ChatRequest], bool]:
    return lambda r: getattr(r, name) is not None


def _body(name: str) -> Callable[[ChatRequest], bool]:
    return lambda r: name in anthropic_fields(r)


def _documents(request: ChatRequest) -> bool:
    """A document block that is not plain text (PDF, URL, content blocks) is in the messages."""
    return any(
        isinstance(part, dict) and part.get("type") == "document"
        for message in request.messages
        if isinstance(message.content, list)
        for part in message.content
    )


def tr(note: str = "") -> Cell:
    return Cell("translated", note)


def passed(note: str = "") -> Cell:
    return Cell("passed", note)


def ignored(note: str = "") -> Cell:
    return Cell("ignored", note)


def refused(note: str = "") -> Cell:
    return Cell("refused", note)


FIELDS: tuple[Field, ...] = (
    # --- POST /v1/messages (Anthropic) ---
    Field(
        "anthropic",
        "model",
        tr("resolved by the router"),
        tr("resolved by the router"),
        tr("resolved by the router"),
    ),
    Field("anthropic", "max_tokens, temperature, top_p", tr(), tr(), passed()),
    Field(
        "anthropic",
        "top_k",
        tr("llama.cpp top_k"),
        passed("`top_k` (vLLM, llama-server; OpenAI refuses it)"),
        passed(),
    ),
    Field(
        "anthropic",
        "system (string or blocks), `system`-role messages",
        tr("system message"),
        tr("system message"),
        passed("system-role messages merged into `system`"),
    ),
    Field(
        "anthropic",
        "stop_sequences",
        tr("`stop`; `stop_sequence` names the match"),
        tr("`stop`; `stop_sequence` named when the server says which (vLLM `stop_reason`), else `end_turn`"),
        passed(),
    ),
    Field(
        "anthropic",
        "tools, tool_choice",
        tr("prompted, grammar-forced"),
        tr("function tools"),
        passed(),
    ),
    Field(
        "anthropic",
        "output_config.format / output_format (json_schema)",
        tr("grammar from the schema"),
        tr("`response_format: json_schema`"),
        passed(),
        _body("output_config"),
    ),
    Field(
        "anthropic",
        "thinking",
        ignored("the model does not think on request"),
        ignored("`reasoning_content` the server returns comes back as thinking blocks"),
        passed("thinking blocks and signatures round-trip"),
        _body("thinking"),
    ),
    Field(
        "anthropic",
        "cache_control (top level and on blocks)",
        ignored("no upstream prompt cache"),
        passed("on text parts; top level ignored"),
        passed(),
    ),
    Field(
        "anthropic",
        "context_management",
        ignored("the whole context is sent"),
        ignored("the whole context is sent"),
        passed(),
        _body("context_management"),
    ),
    Field("anthropic", "service_tier", ignored(), ignored(), passed(), _body("service_tier")),
    Field("anthropic", "`anthropic-beta` header", ignored(), ignored(), passed()),
    Field(
        "anthropic",
        "document blocks, plain text",
        tr("a text part: title, blank line, text"),
        tr("a text part: title, blank line, text"),
        passed(),
    ),
    Field(
        "anthropic",
        "document blocks, PDF / URL / content",
        refused(),
        refused(),
        passed(),
        _documents,
    ),
    Field(
        "anthropic",
        "container, mcp_servers",
        refused(),
        refused(),
        passed(),
        lambda r: bool({"container", "mcp_servers"} & anthropic_fields(r).keys()),
    ),
    # --- POST /v1/chat/completions (OpenAI) ---
    Field(
        "openai",
        "messages, max_tokens, max_completion_tokens, stop, temperature, top_p",
        tr(),
        passed(),
        tr("temperature capped at 1"),
    ),
    Field("openai", "stream, stream_options", tr(), passed(), tr()),
    Field(
        "openai",
        "tools, tool_choice, parallel_tool_calls",
        tr("prompted, grammar-forced"),
        passed(),
        tr(),
    ),
    Field(
        "openai",
        "response_format",
        tr("grammar"),
        passed(),
        tr("asked in the system prompt, then checked"),
    ),
    Field("openai", "n > 1", tr("repeated calls"), passed(), tr("repeated calls")),
    Field(
        "openai", "n > 1 with stream", refused(), passed(), refused(), lambda r: (r.n or 1) > 1 and r.stream
    ),
    Field(
        "openai",
        "logprobs, top_logprobs",
        tr(),
        passed(),
        refused(),
        lambda r: bool(r.logprobs) or r.top_logprobs is not None,
    ),
    Field("openai", "seed", tr(), passed(), ignored("Anthropic has no seed")),
    Field(
        "openai",
        "frequency_penalty, presence_penalty",
        tr(),
        passed(),
        refused(),
        lambda r: any((r.model_extra or {}).get(k) for k in ("frequency_penalty", "presence_penalty")),
    ),
    Field("openai", "top_k, repetition_penalty", tr(), passed(), refused(), _extra("repetition_penalty")),
    Field("openai", "user, metadata", ignored(), passed(), tr("`metadata.user_id`")),
    Field("openai", "logit_bias", refused(), passed(), refused(), _extra("logit_bias")),
    Field(
        "openai",
        "modalities, audio, prediction, web_search_options",
        refused(),
        passed(),
        refused(),
        lambda r: any(_extra(k)(r) for k in ("modalities", "audio", "prediction", "web_search_options")),
    ),
    Field(
        "openai",
        "reasoning_effort, verbosity",
        ignored(),
        passed(),
        refused(),
        lambda r: any(_extra(k)(r) for k in ("reasoning_effort", "verbosity")),
    ),
    Field(
        "openai", "store, service_tier, prompt_cache_key, safety_identifier", ignored(), passed(), ignored()
    ),
    Field(
        "openai",
        "functions, function_call (deprecated)",
        refused(),
        passed(),
        refused(),
        lambda r: _extra("functions")(r) or _extra("function_call")(r),
    ),
)


def refusal(request: ChatRequest, tier: Tier) -> RequestError | None:
    """The 400 a backend kind gives this request, naming the first field it cannot serve."""
    for field in FIELDS:
        if field.used is not None and field.cell(tier).handling == "refused" and field.used(request):
            return RequestError(
                f"'{field.name}' cannot be served by a {tier} backend, and no other backend of the "
                "route can; see docs/compatibility.md",
                param=field.name,
            )
    return None


def markdown_table() -> str:
    """The table in docs/compatibility.md, generated from ``FIELDS``."""
    lines = []
    for api, title in (("anthropic", "`POST /v1/messages`"), ("openai", "`POST /v1/chat/completions`")):
        lines += [f"| {title} field | `embedded` | `openai_compat` | `anthropic` |", "|---|---|---|---|"]
        lines += [
            f"| {f.name} | " + " | ".join(f.cell(t).render() for t in TIERS) + " |"
            for f in FIELDS
            if f.api == api
        ]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
