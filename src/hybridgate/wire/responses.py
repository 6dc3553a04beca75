"""The OpenAI Responses API as seen from the chat-completions shape hybridgate speaks inside.

One import for both users: the ``/v1/responses`` ingress (Responses request in, ``response``
object or Responses events out) and backends/openai_compat.py with ``api = "responses"`` (chat
request out as a Responses request, the upstream's ``response`` or events back as a completion or
chunks). Pure translation: no I/O, no routing, no HTTP.
"""

from __future__ import annotations

from hybridgate.wire.responses_output import (
    Envelope,
    completion_from_response,
    message_from_output,
    new_id,
    response_from_completion,
)
from hybridgate.wire.responses_requests import from_responses_request, input_items, input_messages
from hybridgate.wire.responses_stream import (
    ResponsesStreamReader,
    ResponsesStreamWriter,
    error_status,
    failed_error,
)
from hybridgate.wire.responses_upstream import to_responses_request

__all__ = [
    "Envelope",
    "ResponsesStreamReader",
    "ResponsesStreamWriter",
    "completion_from_response",
    "error_status",
    "failed_error",
    "from_responses_request",
    "input_items",
    "input_messages",
    "message_from_output",
    "new_id",
    "response_from_completion",
    "to_responses_request",
]
