"""OTLP export of one span per request, off the event loop, never failing a request.

Imported only when ``[telemetry]`` is configured: the OpenTelemetry SDK is an optional
dependency (``pip install "hybridgate[otel]"``).

A span is built from the request's ledger row (written after the answer, or when a stream ends)
with the request's real start and end times, on the event loop right after the answer went out,
and handed to the SDK's ``BatchSpanProcessor``: ``end()`` only appends to a bounded queue, and a
background thread sends batches by OTLP/HTTP (protobuf). A receiver that is down or hangs costs
that thread its ``timeout_s``; spans beyond ``max_queue_spans`` are dropped. Export failures are
logged once per outage (and once when export works again).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hybridgate.config import GatewayConfig, TelemetryConfig
from hybridgate.errors import ConfigError
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.spans import (
    SpanFacts,
    attempt_events,
    attributes,
    backend_key,
    backend_tiers,
    operation,
    provider_names,
    span_name,
)

__all__ = ["QuietExporter", "RequestTracer", "build_tracer"]

logger = logging.getLogger("hybridgate.telemetry")
# The OTLP exporter logs every failed batch itself; ours says it once per outage instead.
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


class RequestTracer:
    """Turns finished requests into spans and exports them."""

    def __init__(self, config: GatewayConfig, exporter: SpanExporter) -> None:
        settings = config.telemetry
        assert settings is not None
        self._providers = provider_names(config)
        self._tiers = backend_tiers(config)
        self.captures_content = settings.capture_content and config.ledger.log_prompts
        resource = Resource.create({"service.name": settings.service_name})
        sampler = ParentBased(TraceIdRatioBased(settings.sample_ratio))
        self._provider = TracerProvider(resource=resource, sampler=sampler)
        self._processor = BatchSpanProcessor(
            exporter,
            max_queue_size=settings.max_queue_spans,
            schedule_delay_millis=settings.export_interval_s * 1000,
            export_timeout_millis=settings.timeout_s * 1000,
        )
        self._provider.add_span_processor(self._processor)
        self.exporter = exporter
        self._tracer = self._provider.get_tracer("hybridgate")
        self._propagator = TraceContextTextMapPropagator()

    def finish(self, record: LedgerRecord, facts: SpanFacts) -> None:
        """The request's span, from its start to now, built once the event loop is free (after
        the answer is written); never raises: a request never fails on its span."""
        ended = time.time_ns()
        try:
            asyncio.get_running_loop().call_soon(self._finish_safely, record, facts, ended)
        except RuntimeError:  # no event loop (an offline tool's thread): build it now
            self._finish_safely(record, facts, ended)

    def _finish_safely(self, record: LedgerRecord, facts: SpanFacts, ended: int) -> None:
        try:
            self._finish(record, facts, ended)
        except Exception:
            logger.exception("could not build the span of request %s", record.request_id)

    def _finish(self, record: LedgerRecord, facts: SpanFacts, ended: int) -> None:
        parent = self._propagator.extract(facts.carrier) if facts.carrier else None
        sampling = {"gen_ai.operation.name": operation(record)}  # at creation, as the conventions ask
        if provider := self._providers.get(backend_key(record.api, record.backend or "")):
            sampling["gen_ai.provider.name"] = provider
        span = self._tracer.start_span(
            span_name(record, facts),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=sampling,
            start_time=int(record.ts * 1e9),
        )
        if not span.is_recording():  # not sampled: nothing more to build
            span.end(ended)
            return
        span.set_attributes(attributes(record, facts, self._providers, content=self.captures_content))
        if record.ttft_ms is not None:
            span.add_event("hybridgate.first_token", timestamp=int(record.ts * 1e9 + record.ttft_ms * 1e6))
        for event in attempt_events(record, self._tiers):
            span.add_event("hybridgate.attempt", attributes=event)
        if record.status >= 400:
            span.set_status(Status(StatusCode.ERROR, record.error_type or str(record.status)))
        span.end(ended)

    def degraded_reason(self) -> str | None:
        reason = getattr(self.exporter, "degraded_reason", None)
        return reason() if reason is not None else None

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Export what is queued, within ``timeout_s`` (blocking: call it in a thread)."""
        self._processor.force_flush(int(timeout_s * 1000))
        self._provider.shutdown()


class QuietExporter(SpanExporter):
    """Wraps the OTLP exporter: never raises, logs a failing receiver once per outage."""

    def __init__(self, inner: SpanExporter, endpoint: str) -> None:
        self._inner = inner
        self._endpoint = endpoint
        self._failing = False
        self._failing_since: float | None = None
        self._lock = threading.Lock()
        self.failures = 0
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter bug must not reach the SDK's thread
            logger.debug("OTLP export raised %s", exc)
            result = SpanExportResult.FAILURE
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
                if self._failing:
                    logger.warning("OTLP export to %s works again", self._endpoint)
                self._failing, self._failing_since = False, None
            else:
                self.failures += 1
                if not self._failing:
                    logger.warning(
                        "OTLP export to %s failed; %d spans dropped, and later failures are not "
                        "logged until it works again (requests are not affected)",
                        self._endpoint,
                        len(spans),
                    )
                self._failing = True
                self._failing_since = self._failing_since or time.time()
        return result

    def degraded_reason(self) -> str | None:
        """Why export is failing right now, for /healthz; None while it works."""
        with self._lock:
            if self._failing_since is None:
                return None
            since = time.strftime("%H:%M:%S", time.gmtime(self._failing_since))
            return f"OTLP export to {self._endpoint} failing since {since} UTC; spans are dropped"

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _OncePerOutage(logging.Filter):
    """Drops the OTLP exporter's own per-batch failure logs (``QuietExporter`` reports them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def _quiet_sdk_logs() -> None:
    """Install the filter once per process (loggers are process-wide). The batch processor's
    "Queue full" warning needs none: the SDK repeats it at most once per 20 s."""
    exporter = logging.getLogger(EXPORTER_LOGGER)
    if not any(isinstance(f, _OncePerOutage) for f in exporter.filters):
        exporter.addFilter(_OncePerOutage())


def build_tracer(config: GatewayConfig, env: Mapping[str, str]) -> RequestTracer | None:
    """The tracer ``[telemetry]`` describes, or None when it is absent or disabled."""
    settings = config.telemetry
    if settings is None or not settings.enabled:
        return None
    exporter = OTLPSpanExporter(
        endpoint=settings.endpoint, headers=_headers(settings, env), timeout=settings.timeout_s
    )
    _quiet_sdk_logs()
    return RequestTracer(config, QuietExporter(exporter, settings.endpoint))


def _headers(settings: TelemetryConfig, env: Mapping[str, str]) -> dict[str, str]:
    missing = [var for var in settings.headers_env.values() if var not in env]
    if missing:
        raise ConfigError(f"telemetry.headers_env: environment variable(s) not set: {', '.join(missing)}")
    return {header: env[var] for header, var in settings.headers_env.items()}
