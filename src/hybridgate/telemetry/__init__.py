"""OpenTelemetry traces: one span per request, exported by OTLP/HTTP when ``[telemetry]`` is set.

``spans`` maps a finished request (its ledger row and a few facts the row does not hold) to the
GenAI semantic conventions and hybridgate's own attributes; ``export`` runs the SDK. The SDK is
an optional dependency (``pip install hybridgate[otel]``): only ``export`` imports it, and only
a gateway with ``[telemetry]`` imports ``export``.
"""

from hybridgate.telemetry.spans import SpanFacts

__all__ = ["SpanFacts"]
