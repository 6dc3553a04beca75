"""A stand-in for an OpenTelemetry collector: an OTLP/HTTP receiver on loopback for tests.

This is NOT the OpenTelemetry Collector: it is a small starlette app that accepts
``POST /v1/traces`` with a protobuf ``ExportTraceServiceRequest`` (the OTLP/HTTP binary
encoding), decodes it with ``opentelemetry-proto`` and keeps every span as a plain ``Span``
(name, kind, times, attributes, events, status, resource attributes), answering with an empty
``ExportTraceServiceResponse`` as the specification asks. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import serve_in_thread

PROTOBUF = "application/x-protobuf"


@dataclass
class Span:
    name: str
    kind: int  # the proto's SpanKind: 2 is SERVER
    trace_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]]
    status_code: int  # 0 unset, 1 ok, 2 error
    resource: dict[str, Any] = field(default_factory=dict)


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])])

    async def _traces(self, request: Request) -> Response:
        if request.headers.get("content-type") != PROTOBUF:
            return Response(status_code=415)
        message = ExportTraceServiceRequest()
        try:
            message.ParseFromString(await request.body())
        except DecodeError:
            return Response(status_code=400)
        spans = list(_decode(message))
        with self._lock:
            self.headers.append(dict(request.headers))
            self.spans.extend(spans)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

    def wait_for(self, request_id: str, timeout_s: float = 10.0) -> Span:
        """The span whose ``hybridgate.request_id`` is ``request_id``, once it arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                found = [s for s in self.spans if s.attributes.get("hybridgate.request_id") == request_id]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no span for request {request_id} within {timeout_s} s")


def _decode(message: ExportTraceServiceRequest) -> Iterator[Span]:
    for resource_spans in message.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(
                    name=span.name,
                    kind=span.kind,
                    trace_id=span.trace_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    attributes=_attributes(span.attributes),
                    events=[(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in span.events],
                    status_code=span.status.code,
                    resource=resource,
                )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@contextmanager
def run_otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    with serve_in_thread(receiver.app(), lifespan="off", graceful_s=1) as url:
        receiver.url = f"{url}/v1/traces"
        yield receiver
