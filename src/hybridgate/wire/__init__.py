"""Wire formats: pure translations between the internal OpenAI shape and other providers' APIs.

Used by backends (outbound) and by the HTTP edge (inbound). Nothing here performs I/O, and nothing
here imports from api/, pipeline, backends/ or any other layer above types, config and errors.

The Anthropic Messages API, in both directions: ``anthropic_requests`` (requests, with their
content parts and tools), ``anthropic_schema`` (a caller's request checked before translation),
``anthropic_responses`` (messages, usage, stop reasons and the one status-to-error-type table) and
``anthropic_stream`` (SSE events). Each direction raises the error of whoever sent the data it
reads: ``RequestError`` for a caller's request, ``UpstreamProtocolError`` /
``UpstreamStatusError`` for an upstream's reply; our own backends' output is read leniently.
"""
