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
    # The names of the fields of this row a request uses; None: documented only, never refused.
    used: Callable[[ChatRequest], list[str]] | None = None

    def cell(self, tier: Tier) -> Cell:
        cell: Cell = getattr(self, tier)
        return cell


def anthropic_fields(request: ChatRequest) -> Json:
    """The Anthropic-only body fields a ``/v1/messages`` request carried (thinking, ...)."""
    extra = (request.model_extra or {}).get(ANTHROPIC_EXTRA)
    fields = extra.get("fields") if isinstance(extra, dict) else None
    return fields if isinstance(fields, dict) else {}


# Anthropic's thinking budget as OpenAI's reasoning_effort: the levels sit around the budgets
# Gemini's OpenAI-compatible API documents for them (low 1024, medium 8192, high 24576 tokens).
EFFORT_LEVELS: tuple[tuple[int, str], ...] = ((4096, "low"), (16384, "medium"))
EFFORT_NOTE = "`reasoning_effort`: budget_tokens below 4096 low, below 16384 medium, else high"


def reasoning_effort(request: ChatRequest) -> str | None:
    """The Anthropic edge's ``output_config.effort`` (OpenAI has the same levels), else
    ``thinking: {"type": "enabled", "budget_tokens": N}``, as a ``reasoning_effort``; None for
    any other thinking (disabled, adaptive: the server decides)."""
    fields = anthropic_fields(request)
    config = fields.get("output_config")
    if isinstance(config, dict) and isinstance(config.get("effort"), str):
        return str(config["effort"])
    thinking = fields.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled" or not isinstance(budget, int):
        return None
    return next((level for below, level in EFFORT_LEVELS if budget < below), "high")


# OpenAI's reasoning_effort as an Anthropic thinking budget, the other way round (the same
# documented budgets). Anthropic wants at least 1024 thinking tokens, counted in max_tokens.
EFFORT_BUDGETS: dict[str, int] = {"low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 65536}
MIN_THINKING_BUDGET = 1024
BUDGET_NOTE = (
    "`thinking`: low 1024, medium 8192, high 24576 tokens (xhigh 32768, max 65536), at most half "
    "the caller's max tokens (none below 1024), else added to the default max_tokens; none / "
    "minimal: no thinking; temperature and top_k left out"
)


def thinking_budget(request: ChatRequest, limit: int | None) -> int | None:
    """The thinking budget for a chat request's ``reasoning_effort`` sent to Anthropic: at most
    half the caller's output ``limit`` (the answer keeps the rest); None for no thinking (none,
    minimal, or a limit too small for Anthropic's minimum)."""
    effort = (request.model_extra or {}).get("reasoning_effort")
    budget = EFFORT_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        return None
    if limit is not None:
        budget = min(budget, limit // 2)
    return budget if budget >= MIN_THINKING_BUDGET else None


def anthropic_beta(request: ChatRequest) -> str | None:
    extra = (request.model_extra or {}).get(ANTHROPIC_EXTRA)
    beta = extra.get("beta") if isinstance(extra, dict) else None
    return beta if isinstance(beta, str) and beta else None


Used = Callable[[ChatRequest], list[str]]


def _extra(*names: str) -> Used:
    return lambda r: [n for n in names if (r.model_extra or {}).get(n) is not None]


def _body(*names: str) -> Used:
    return lambda r: [n for n in names if n in anthropic_fields(r)]


def _documents(request: ChatRequest) -> list[str]:
    """A document block that is not plain text (PDF, URL, content blocks) is in the messages."""
    found = any(
        isinstance(part, dict) and part.get("type") == "document"
        for message in request.messages
        if isinstance(message.content, list)
        for part in message.content
    )
    return ["document"] if found else []


def tr(note: str = "") -> Cell:
    return Cell("translated", note)


def passed(note: str = "") -> Cell:
    return Cell("passed", note)


def ignored(note: str = "") -> Cell:
    return Cell("ignored", note)


def refused(note: str = "") -> Cell:
    return Cell("refused", note)


RESOLVED = "resolved by the router"
TEXT_DOCUMENT = "a text part: title, blank line, text"
PROMPTED = "prompted, grammar-forced"
_ANTHROPIC_ROWS: tuple[Field, ...] = (
    Field("anthropic", "model", tr(RESOLVED), tr(RESOLVED), tr(RESOLVED)),
    Field("anthropic", "max_tokens, temperature, top_p, stream", tr(), tr(), passed()),
    Field("anthropic", "top_k", tr("llama.cpp top_k"), passed("`top_k` (vLLM, llama-server)"), passed()),
    Field("anthropic", "metadata.user_id", ignored(), tr("`user`"), passed()),
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
    Field("anthropic", "tools, tool_choice", tr(PROMPTED), tr("function tools"), passed()),
    Field(
        "anthropic",
        "output_config.format / output_format (json_schema)",
        tr("grammar from the schema"),
        tr("`response_format: json_schema`"),
        passed(),
    ),
    Field(
        "anthropic",
        "thinking",
        ignored("the model does not think on request"),
        tr(f"{EFFORT_NOTE}; `reasoning_content` the server returns comes back as thinking blocks"),
        passed("thinking blocks and signatures round-trip"),
    ),
    Field(
        "anthropic",
        "output_config.effort",
        ignored(),
        tr("`reasoning_effort`, the same level (it wins over a thinking budget)"),
        passed(),
    ),
    Field(
        "anthropic",
        "cache_control (top level and on blocks)",
        ignored("no upstream prompt cache"),
        passed("on text parts; elsewhere ignored"),
        passed(),
    ),
    Field(
        "anthropic",
        "context_management",
        ignored("the whole context is sent"),
        ignored("the whole context is sent"),
        passed(),
    ),
    Field("anthropic", "service_tier", ignored(), ignored(), passed()),
    Field("anthropic", "`anthropic-beta` header", ignored(), ignored(), passed()),
    Field("anthropic", "document blocks, plain text", tr(TEXT_DOCUMENT), tr(TEXT_DOCUMENT), passed()),
    Field("anthropic", "document blocks, PDF / URL / content", refused(), refused(), passed(), _documents),
    Field(
        "anthropic",
        "container, mcp_servers",
        refused(),
        refused(),
        passed(),
        _body("container", "mcp_servers"),
    ),
)
_KNOWN_ANTHROPIC = {
    "output_config", "output_format", "thinking", "cache_control", "context_management", "service_tier",
    "container", "mcp_servers",
}  # fmt: skip
_OPENAI_ROWS: tuple[Field, ...] = (
    Field(
        "openai",
        "messages, max_tokens, max_completion_tokens, stop, temperature, top_p",
        tr(),
        passed(),
        tr("temperature capped at 1"),
    ),
    Field("openai", "stream, stream_options", tr(), passed(), tr()),
    Field("openai", "tools, tool_choice, parallel_tool_calls", tr(PROMPTED), passed(), tr()),
    Field(
        "openai",
        "response_format",
        tr("grammar"),
        passed(),
        tr("asked in the system prompt, then checked"),
    ),
    Field("openai", "n > 1", tr("repeated calls"), passed(), tr("repeated calls")),
    Field(
        "openai",
        "n > 1 with stream",
        refused(),
        passed(),
        refused(),
        lambda r: ["n"] if (r.n or 1) > 1 and r.stream else [],
    ),
    Field(
        "openai",
        "logprobs, top_logprobs",
        tr(),
        passed(),
        refused(),
        lambda r: ["logprobs"] if r.logprobs or r.top_logprobs is not None else [],
    ),
    Field("openai", "seed", tr(), passed(), ignored("Anthropic has no seed")),
    Field(
        "openai",
        "frequency_penalty, presence_penalty",
        tr(),
        passed(),
        refused(),
        _extra("frequency_penalty", "presence_penalty"),
    ),
    Field("openai", "top_k", tr(), passed(), tr()),
    Field("openai", "repetition_penalty", tr(), passed(), refused(), _extra("repetition_penalty")),
    Field("openai", "user, metadata", ignored(), passed(), tr("`metadata.user_id`")),
    Field("openai", "logit_bias", refused(), passed(), refused(), _extra("logit_bias")),
    Field(
        "openai",
        "modalities, audio, prediction, web_search_options",
        refused(),
        passed(),
        refused(),
        _extra("modalities", "audio", "prediction", "web_search_options"),
    ),
    Field("openai", "reasoning_effort", ignored(), passed(), tr(BUDGET_NOTE)),
    Field("openai", "verbosity", ignored(), passed(), refused(), _extra("verbosity")),
    Field(
        "openai", "store, service_tier, prompt_cache_key, safety_identifier", ignored(), passed(), ignored()
    ),
    Field(
        "openai",
        "functions, function_call (deprecated)",
        refused(),
        passed(),
        refused(),
        _extra("functions", "function_call"),
    ),
)
_KNOWN_OPENAI = {name.strip().split(" ")[0] for row in _OPENAI_ROWS for name in row.name.split(",")} | {
    ANTHROPIC_EXTRA
}
FIELDS: tuple[Field, ...] = (
    *_ANTHROPIC_ROWS,
    Field(
        "anthropic",
        "any other field",
        refused(),
        refused(),
        passed(),
        lambda r: sorted(anthropic_fields(r).keys() - _KNOWN_ANTHROPIC),
    ),
    *_OPENAI_ROWS,
    Field(
        "openai",
        "any other field",
        refused(),
        passed(),
        refused(),
        lambda r: sorted((r.model_extra or {}).keys() - _KNOWN_OPENAI),
    ),
)


# Per backend kind, the rows it refuses that a request can use (FIELDS order): what ``refusal`` checks.
_REFUSED: dict[Tier, tuple[Field, ...]] = {
    tier: tuple(f for f in FIELDS if f.used is not None and f.cell(tier).handling == "refused")
    for tier in TIERS
}


def refusal(request: ChatRequest, tier: Tier) -> RequestError | None:
    """The 400 a backend kind gives this request, naming the first field it cannot serve."""
    for field in _REFUSED[tier]:
        assert field.used is not None
        if names := field.used(request):
            return RequestError(
                f"'{names[0]}' ({field.name}) cannot be served by a {tier} backend, and no other "
                "backend of the route can; see docs/compatibility.md",
                param=names[0],
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
