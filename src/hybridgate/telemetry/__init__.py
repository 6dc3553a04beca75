"""OpenTelemetry traces: one span per request, exported by OTLP/HTTP when ``[telemetry]`` is set.

``spans`` maps a finished request (its ledger row and a few facts the row does not hold) to the
GenAI semantic conventions and hybridgate's own attributes; ``export`` runs the SDK. The SDK is
an optional dependency (``pip install hybridgate[otel]``): only ``export`` imports it, and only
a gateway with ``[telemetry]`` imports ``export``.
"""

from hybridgate.config import GatewayConfig

__all__ = ["describe_telemetry"]


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
