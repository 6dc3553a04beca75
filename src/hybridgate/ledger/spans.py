"""A finished request as span attributes: the GenAI semantic conventions plus hybridgate's own.

The ledger row mirrored into an OpenTelemetry span, as ``metrics`` mirrors it into Prometheus
series; ``tracing`` runs the SDK (an optional dependency, imported only with ``[telemetry]``).

Follows the OpenTelemetry GenAI semantic conventions as released in semantic-conventions-genai
v0.1.0 (the GenAI pages of semantic-conventions v1.41.0 and their successor): the provider is
``gen_ai.provider.name`` (which replaced ``gen_ai.system`` in v1.37.0), tokens are
``gen_ai.usage.input_tokens`` / ``output_tokens``, content is ``gen_ai.input.messages`` /
``gen_ai.output.messages`` (opt-in). Pure: no OpenTelemetry import, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from hybridgate.config import GatewayConfig
from hybridgate.ledger.records import LedgerRecord
from hybridgate.types import ChatRequest

AttributeValue = str | bool | int | float | Sequence[str]


@dataclass
class SpanFacts:
    """What the ledger row does not hold: the request's parameters and the answer's shape."""

    request: ChatRequest | None = None
    finish_reasons: list[str] = field(default_factory=list)
    response_id: str | None = None
    answer: str | None = None  # only gathered when content may be captured
    sensitive: bool = False  # PII found, or a strict privacy policy: never any content
    carrier: Mapping[str, str] = field(default_factory=dict)  # the caller's traceparent, if any


def describe_telemetry(config: GatewayConfig) -> str:
    """One line for ``serve``'s banner: where spans go, how many, and whether content does."""
    settings = config.telemetry
    if settings is None or not settings.enabled:
        return "off"
    content = "on" if settings.capture_content and config.ledger.log_prompts else "off"
    return (
        f"OpenTelemetry spans to {settings.endpoint} (sample_ratio {settings.sample_ratio:g}, "
        f"service {settings.service_name}; prompt and answer content {content})"
    )


EMBEDDER = "embedder:"  # embedders and chat backends may share names: embedders are keyed apart


def backend_key(api: str, backend: str) -> str:
    """The key of a row's backend in ``provider_names`` and ``backend_tiers``."""
    return EMBEDDER + backend if api == "embeddings" else backend


def provider_names(config: GatewayConfig) -> dict[str, str]:
    """``gen_ai.provider.name`` per backend and embedder: the well-known value where there is one."""
    names = {name: _provider(b.type, b) for name, b in config.backends.items()}
    if config.embeddings is not None:
        for name, embedder in config.embeddings.backends.items():
            names[EMBEDDER + name] = _provider(embedder.type, embedder)
    return names


def backend_tiers(config: GatewayConfig) -> dict[str, bool]:
    """Whether each backend and embedder is local (the tier an attempt event names)."""
    tiers = {name: backend.local for name, backend in config.backends.items()}
    if config.embeddings is not None:
        tiers |= {EMBEDDER + name: e.local for name, e in config.embeddings.backends.items()}
    return tiers


IN_PROCESS = {"embedded": "llama_cpp", "wordllama": "wordllama"}  # no well-known value exists


def _provider(kind: str, backend: object) -> str:
    if kind == "anthropic":
        return "anthropic"
    if kind in IN_PROCESS:
        return IN_PROCESS[kind]
    if provider := getattr(backend, "provider", None):
        return str(provider)
    return "openai" if "api.openai.com" in str(getattr(backend, "base_url", "")) else "openai_compatible"


def span_name(record: LedgerRecord, facts: SpanFacts) -> str:
    """``{gen_ai.operation.name} {gen_ai.request.model}``, as the conventions ask."""
    model = facts.request.model if facts.request else record.model
    return f"{operation(record)} {model}" if model else operation(record)


def operation(record: LedgerRecord) -> str:
    return "embeddings" if record.api == "embeddings" else "chat"


def attributes(
    record: LedgerRecord, facts: SpanFacts, providers: Mapping[str, str], *, content: bool
) -> dict[str, AttributeValue]:
    """Every attribute of the request's span; ``content`` allows prompts and answers."""
    attrs: dict[str, AttributeValue | None] = {
        "gen_ai.operation.name": operation(record),
        "gen_ai.provider.name": providers.get(backend_key(record.api, record.backend or "")),
        "gen_ai.request.model": facts.request.model if facts.request else None,
        "gen_ai.response.model": record.reported_model or record.model,
        "gen_ai.response.id": facts.response_id,
        "gen_ai.response.finish_reasons": list(facts.finish_reasons) or None,
        "gen_ai.usage.input_tokens": record.prompt_tokens,
        "gen_ai.usage.output_tokens": record.completion_tokens,
        "http.response.status_code": record.status,
        "error.type": record.error_type,
        **(_request_params(facts.request) if facts.request else {}),
        **_gateway_attributes(record),
    }
    if content and not facts.sensitive and facts.request is not None:
        attrs["gen_ai.input.messages"] = _input_messages(facts.request)
        if facts.answer is not None:
            attrs["gen_ai.output.messages"] = _output_messages(facts.answer, facts.finish_reasons)
    return {key: value for key, value in attrs.items() if value is not None and value != []}


def _request_params(request: ChatRequest) -> dict[str, AttributeValue | None]:
    extra = request.model_extra or {}
    return {
        "gen_ai.request.max_tokens": request.output_limit(),
        "gen_ai.request.temperature": request.temperature,
        "gen_ai.request.top_p": request.top_p,
        "gen_ai.request.stop_sequences": request.stop_list() or None,
        "gen_ai.request.seed": request.seed,
        "gen_ai.request.choice.count": request.n if request.n and request.n != 1 else None,
        "gen_ai.request.frequency_penalty": _number(extra.get("frequency_penalty")),
        "gen_ai.request.presence_penalty": _number(extra.get("presence_penalty")),
        "gen_ai.output.type": "json" if request.response_format else None,
        "gen_ai.request.stream": request.stream,
    }


def _gateway_attributes(record: LedgerRecord) -> dict[str, AttributeValue | None]:
    """hybridgate's own: how the request was routed, served, screened and priced."""
    return {
        "hybridgate.request_id": record.request_id,
        "hybridgate.api": record.api,
        "hybridgate.environment": record.environment,
        "hybridgate.api_key_id": record.api_key_id,
        "hybridgate.feature": record.feature,
        "hybridgate.cohort": record.cohort,
        "hybridgate.traffic": record.traffic,
        "hybridgate.route": record.route,
        "hybridgate.rule": record.rule,
        "hybridgate.decision.reasons": list(record.reasons),
        "hybridgate.backend": record.backend,
        "hybridgate.model": record.model,
        "hybridgate.attempts": list(record.attempts),
        "hybridgate.escalations": record.escalations,
        "hybridgate.wasted_tokens": record.wasted_tokens,
        "hybridgate.cache": record.cache,
        "hybridgate.privacy.policy": record.privacy,
        "hybridgate.privacy.pii": record.pii,  # entity types and counts, never values
        "hybridgate.egress": list(record.egress),
        "hybridgate.cost_usd": record.cost_usd,
        "hybridgate.saved_usd": record.saved_usd or None,
        "hybridgate.stream": record.stream,
        "hybridgate.ttft_ms": record.ttft_ms,
        "hybridgate.prompt_hash": record.prompt_hash,  # HMAC: equal prompts match, text unrecoverable
        "hybridgate.shadow_of": record.shadow_of,
    }


def attempt_events(record: LedgerRecord, tiers: Mapping[str, bool]) -> list[dict[str, AttributeValue]]:
    """One event per backend tried (``backend:outcome[:detail]``, as the ledger's ``attempts``)."""
    events: list[dict[str, AttributeValue]] = []
    for attempt in record.attempts:
        backend, _, rest = attempt.partition(":")
        outcome, _, detail = rest.partition(":")
        event: dict[str, AttributeValue] = {
            "hybridgate.backend": backend,
            "hybridgate.outcome": outcome,
            "hybridgate.tier": "local" if tiers.get(backend_key(record.api, backend)) else "cloud",
        }
        if detail:
            event["hybridgate.detail"] = detail
        events.append(event)
    return events


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _input_messages(request: ChatRequest) -> str:
    messages = [
        {"role": message.role, "parts": [{"type": "text", "content": message.text()}]}
        for message in request.messages
    ]
    return orjson.dumps(messages).decode()


def _output_messages(answer: str, finish_reasons: Sequence[str]) -> str:
    reason = finish_reasons[0] if finish_reasons else "stop"
    message = {
        "role": "assistant",
        "parts": [{"type": "text", "content": answer}],
        "finish_reason": reason,
    }
    return orjson.dumps([message]).decode()
