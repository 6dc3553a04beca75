"""The one door out: every call to a backend that is not ``local = true`` passes ``EgressGate.clear``.

The cascade wraps each non-local backend in a ``GatedBackend`` when it is built; a gated backend
accepts only a ``ClearedRequest``, which only ``EgressGate.clear`` makes, for that backend by name.
So live requests, fallbacks, cascade escalations, shadow copies, replays, eval runs and LLM-judge
calls (all of which run through the cascade) reach a cloud upstream only after the gate has applied
the effective policy of the request they serve:

- no PII found, or policy ``allow``: **allowed** (unknown extra fields removed unless
  ``[privacy] forward_unknown_fields = true``);
- PII and ``redact``: **redacted**, the placeholder copy goes out;
- PII and ``local_only`` or ``block``: **blocked**: the cascade skips the backend, and a request
  left with nothing to try fails closed with ``PrivacyPolicyError``.

A request that was not scanned (no ``[privacy]`` section) but carries a strict policy (an API
key's, or a replayed row's) is treated as holding PII.

Every decision is appended to the request's egress list (``backend:path:decision``) that the ledger
row and the metrics keep. Pure bookkeeping: no I/O, no Presidio import.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import PrivateAttr

from hybridgate.backends.base import Backend
from hybridgate.errors import PrivacyPolicyError
from hybridgate.types import ChatRequest, ChatResponse, Json, Message

EgressDecision = Literal["allowed", "redacted", "blocked"]
# Request fields other than the ones ``ChatRequest`` declares that carry no free text and that
# OpenAI-compatible upstreams understand: forwarded as they are. Any other extra field is removed
# before a non-local call unless ``forward_unknown_fields`` is set (text fields are scanned either
# way, see ``redact.map_request_texts``).
KNOWN_REQUEST_FIELDS = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "parallel_tool_calls",
        "reasoning_effort",
        "service_tier",
        "store",
        "modalities",
        "verbosity",
        "top_k",
        "prediction",
        "functions",
        "function_call",
        "prompt_cache_key",
        "safety_identifier",
        "audio",
        "web_search_options",
        "thinking",
    }
)
KNOWN_MESSAGE_FIELDS = frozenset({"refusal", "reasoning_content", "function_call"})


@dataclass(frozen=True)
class Clearance:
    """What the gate needs to know about the request a call serves.

    ``policy`` is the request's effective policy (the strictest that applies, see
    ``PrivacyGuard.policy_for``); ``redacted`` is its placeholder copy, set under ``redact``;
    ``withheld`` are the route's non-local backends the screen removed before the cascade ran.
    """

    policy: str
    pii: bool
    origin: str = "live"  # live | shadow | replay | eval | judge
    redacted: ChatRequest | None = None
    withheld: tuple[str, ...] = ()


class ClearedRequest(ChatRequest):
    """A request the gate let out to one backend; only ``EgressGate.clear`` makes them."""

    _cleared_for: str = PrivateAttr(default="")

    @property
    def cleared_for(self) -> str:
        return self._cleared_for


def path_of(origin: str, step: str) -> str:
    """``live``/``fallback``/``escalation`` for live traffic, else ``shadow``, ``shadow-fallback`` ..."""
    if step == "primary":
        return origin
    return step if origin == "live" else f"{origin}-{step}"


class EgressGate:
    """Applies one request's effective policy to one non-local call."""

    def __init__(self, *, forward_unknown_fields: bool = False) -> None:
        self._forward_unknown = forward_unknown_fields

    def clear(
        self,
        backend: Backend,
        request: ChatRequest,
        clearance: Clearance | None,
        step: str,
        egress: list[str],
    ) -> ChatRequest | None:
        """``request`` as ``backend`` may receive it, or None when the policy blocks the call."""
        if backend.local:
            return request
        decision, outbound = self._decide(request, clearance)
        path = path_of(clearance.origin if clearance else "live", step)
        egress.append(f"{backend.name}:{path}:{decision}")
        return None if outbound is None else _cleared(self._strip_unknown(outbound), backend.name)

    def admits(
        self, name: str, local: bool, clearance: Clearance | None, step: str, egress: list[str]
    ) -> bool:
        """The same decision for a call that carries no ``ChatRequest`` (a remote embedder): the
        caller sends the redacted inputs it holds; False when the policy blocks the call."""
        if local:
            return True
        decision, _ = self._decide_policy(clearance)
        egress.append(f"{name}:{path_of(clearance.origin if clearance else 'live', step)}:{decision}")
        return decision != "blocked"

    @staticmethod
    def refusal(route: str, egress: list[str]) -> PrivacyPolicyError | None:
        """The error for a request whose every backend was blocked (or None if none was)."""
        blocked = [entry.split(":", 1)[0] for entry in egress if entry.endswith(":blocked")]
        if not blocked:
            return None
        return PrivacyPolicyError(
            f"the request contains PII and must stay local, but route '{route}' has no local "
            f"backend to try (withheld: {', '.join(dict.fromkeys(blocked))})"
        )

    def withhold(self, clearance: Clearance | None, egress: list[str]) -> None:
        """Record the backends the screen removed from the route as blocked."""
        if clearance is not None:
            path = clearance.origin
            egress.extend(f"{name}:{path}:blocked" for name in clearance.withheld)

    def _decide(
        self, request: ChatRequest, clearance: Clearance | None
    ) -> tuple[EgressDecision, ChatRequest | None]:
        decision, redacted = self._decide_policy(clearance)
        return decision, request if decision == "allowed" else redacted

    @staticmethod
    def _decide_policy(clearance: Clearance | None) -> tuple[EgressDecision, ChatRequest | None]:
        if clearance is None or not clearance.pii or clearance.policy == "allow":
            return "allowed", None
        if clearance.policy == "redact" and clearance.redacted is not None:
            return "redacted", clearance.redacted
        return "blocked", None

    def _strip_unknown(self, request: ChatRequest) -> ChatRequest:
        if self._forward_unknown:
            return request
        extra = request.model_extra or {}
        unknown = [name for name in extra if name not in KNOWN_REQUEST_FIELDS]
        messages = [_known_message_fields(m) for m in request.messages]
        if not unknown and all(a is b for a, b in zip(messages, request.messages, strict=True)):
            return request
        copy = request.model_copy(update={"messages": messages})
        copy.__pydantic_extra__ = {k: v for k, v in extra.items() if k in KNOWN_REQUEST_FIELDS}
        return copy


def _known_message_fields(message: Message) -> Message:
    extra = message.model_extra or {}
    unknown = [name for name in extra if name not in KNOWN_MESSAGE_FIELDS]
    if not unknown:
        return message
    copy = message.model_copy()
    copy.__pydantic_extra__ = {k: v for k, v in extra.items() if k in KNOWN_MESSAGE_FIELDS}
    return copy


def _cleared(request: ChatRequest, backend: str) -> ClearedRequest:
    """A shallow copy of ``request`` as a ``ClearedRequest``: what ``model_construct`` with the
    request's fields would build, set the way pydantic's own ``model_copy`` sets a copy's state
    (model_construct re-checked every field and extra: ~15 us per request)."""
    cleared = ClearedRequest.__new__(ClearedRequest)
    extra = request.__pydantic_extra__
    object.__setattr__(cleared, "__dict__", dict(request.__dict__))
    object.__setattr__(cleared, "__pydantic_extra__", None if extra is None else dict(extra))
    object.__setattr__(cleared, "__pydantic_fields_set__", set(request.model_fields_set))
    private = {name: attr.get_default() for name, attr in ClearedRequest.__private_attributes__.items()}
    object.__setattr__(cleared, "__pydantic_private__", private | {"_cleared_for": backend})
    return cleared


class GatedBackend:
    """A non-local backend that refuses any request the gate has not cleared for it."""

    def __init__(self, backend: Backend) -> None:
        if backend.local:
            raise ValueError(f"backend '{backend.name}' is local; only non-local backends are gated")
        self.inner = backend
        self.name = backend.name
        self.local = False

    @property
    def model(self) -> str:
        """The inner backend's, which a version pin may set at start-up."""
        return self.inner.model

    @model.setter
    def model(self, value: str) -> None:
        self.inner.model = value

    def _check(self, request: ChatRequest) -> None:
        if not isinstance(request, ClearedRequest) or request.cleared_for != self.name:
            raise PrivacyPolicyError(
                f"refusing to call backend '{self.name}': the request did not pass the egress gate"
            )

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        self._check(request)
        return await self.inner.complete(request, model)

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        self._check(request)
        async for chunk in self.inner.stream(request, model):
            yield chunk

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()


def gated(backends: dict[str, Backend] | Any) -> dict[str, Backend]:
    """``backends`` with every non-local one behind a ``GatedBackend``."""
    return {name: b if b.local else GatedBackend(b) for name, b in backends.items()}


def egress_summary(entries: Sequence[str]) -> dict[str, int]:
    """Counts per decision (allowed / redacted / blocked) of a request's egress list."""
    counts = {"allowed": 0, "redacted": 0, "blocked": 0}
    for entry in entries:
        counts[entry.rsplit(":", 1)[-1]] += 1
    return counts
