"""The Anthropic Messages API as seen from the OpenAI shape hybridgate speaks inside.

One import for both users: backends/anthropic.py (OpenAI request out, Anthropic message and SSE
events back) and the ``/v1/messages`` ingress (Anthropic request in, OpenAI completion or chunks
back out). Each direction raises the error of whoever sent the data it reads: ``RequestError`` for
a caller's request, ``UpstreamProtocolError`` / ``UpstreamStatusError`` for an upstream's reply;
our own backends' output is read leniently. Pure translation: no I/O, no routing, no HTTP.
"""

from __future__ import annotations

from hybridgate.wire.anthropic_requests import from_anthropic_request, to_anthropic_request
from hybridgate.wire.anthropic_responses import (
    ERROR_STATUSES,
    ERROR_TYPES,
    anthropic_usage,
    completion_from_message,
    error_body,
    error_type,
    finish_reason,
    message_from_completion,
    openai_usage,
    stop_reason,
)
from hybridgate.wire.anthropic_stream import AnthropicStreamReader, AnthropicStreamWriter, anthropic_events

__all__ = [
    "ERROR_STATUSES",
    "ERROR_TYPES",
    "AnthropicStreamReader",
    "AnthropicStreamWriter",
    "anthropic_events",
    "anthropic_usage",
    "completion_from_message",
    "error_body",
    "error_type",
    "finish_reason",
    "from_anthropic_request",
    "message_from_completion",
    "openai_usage",
    "stop_reason",
    "to_anthropic_request",
]
