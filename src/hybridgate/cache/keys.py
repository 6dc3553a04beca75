"""What makes two requests the same question: the cache's keys, and whether to cache at all.

The exact key is a SHA-256 over the canonical JSON of everything that changes the answer: the
tenant, the route the router chose (and a pinned model, if the caller named one), the messages,
tools, tool choice, response format, sampling parameters, and any field the gateway passes
upstream without modelling it. ``stream`` and ``stream_options`` are left out on purpose: a
streamed answer is stored whole and can be replayed either way.

The semantic *scope* is the same hash with the last user turn left out: a semantic hit may only
come from a request that shares the tenant, route, conversation so far, system prompt, tools and
parameters, and differs only in how the last question is worded.

Pure functions over ``ChatRequest``; no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from hybridgate.types import CacheDirective, ChatRequest, Decision, Json, RequestContext

Directive = CacheDirective

# Everything in ChatRequest that can change the answer, besides messages.
_PARAMETERS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "tools",
    "tool_choice",
    "response_format",
    "logprobs",
    "top_logprobs",
    "seed",
)

_STRICTEST_FIRST: tuple[Directive, ...] = ("no-store", "no-cache", "force")


@dataclass(frozen=True, slots=True)
class CacheKeys:
    exact: str
    scope: str  # the semantic neighbourhood: same everything but the last user turn
    query: str  # the last user turn's text, compared by the semantic cache
    tenant: str


def tenant_of(ctx: RequestContext) -> str:
    """Whose cache this is: the caller's key within the environment (no key: the environment)."""
    return f"{ctx.environment}/{ctx.api_key_id or 'anonymous'}"


def cache_keys(request: ChatRequest, decision: Decision, ctx: RequestContext) -> CacheKeys:
    tenant = tenant_of(ctx)
    head: Json = {
        "tenant": tenant,
        "route": decision.route,
        "model": decision.model_override,
        **{name: getattr(request, name) for name in _PARAMETERS},
        # fields hybridgate does not model (presence_penalty, logit_bias, reasoning_effort, ...)
        # are passed upstream as they are, so they change the answer too
        "extra": request.model_extra or {},
    }
    messages = [message.model_dump(exclude_none=True) for message in request.messages]
    last = _last_user_index(request)
    prefix = (
        [*messages[:last], _without_text(messages[last]), *messages[last + 1 :]] if last >= 0 else messages
    )
    return CacheKeys(
        exact=_digest({**head, "messages": messages}),
        scope=_digest({**head, "messages": prefix}),
        query=request.messages[last].text() if last >= 0 else "",
        tenant=tenant,
    )


def is_deterministic(request: ChatRequest) -> bool:
    """Greedy decoding or a fixed seed: the same request should give the same answer."""
    return request.temperature == 0 or request.seed is not None


def parse_directive(cache_control: str | None, hybridgate_cache: str | None) -> Directive:
    """The caller's wish, from ``Cache-Control`` (no-store / no-cache) or ``x-hybridgate-cache``
    (off / refresh / force). The stricter one wins."""
    wishes: set[str] = set()
    if cache_control:
        wishes |= {part.strip().lower() for part in cache_control.split(",")}
    mapped = {"off": "no-store", "no-store": "no-store", "refresh": "no-cache", "no-cache": "no-cache"}
    if hybridgate_cache:
        value = hybridgate_cache.strip().lower()
        wishes.add("force" if value in ("force", "on") else mapped.get(value, value))
    for directive in _STRICTEST_FIRST:
        if directive in wishes:
            return directive
    return "default"


def _without_text(message: Json) -> Json:
    """The last user turn as the scope sees it: its text replaced, its images and name kept, so
    a reworded question about another picture is another scope."""
    content = message.get("content")
    if isinstance(content, list):
        parts = [part for part in content if not (isinstance(part, dict) and part.get("type") == "text")]
        return {**message, "content": ["<query>", *parts]}
    return {**message, "content": "<query>"}


def _last_user_index(request: ChatRequest) -> int:
    for index in range(len(request.messages) - 1, -1, -1):
        if request.messages[index].role == "user":
            return index
    return -1


def _digest(value: Json) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()
