"""The upstream OTLP/gRPC exporters for spans and logs, sending requests encoded by beacon-otel.

Everything but the encoding (endpoint handling, TLS, headers, compression, retries with
backoff) stays the upstream exporters' own; the hooks that swap the encoding are private to the
upstream exporter, so they live in :class:`beacon_otel._upstream.EncodedGrpcExport`. Kept apart
from the HTTP exporters so that a process exporting over HTTP never imports grpc (about 10 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _GrpcSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan

from beacon_otel._upstream import EncodedGrpcExport, GrpcLogExporter
from beacon_otel.export.span_encoding import SpanBatchEncoder


class FastGrpcSpanExporter(EncodedGrpcExport, _GrpcSpanExporter):
    """OTLP/gRPC span exporter using :class:`SpanBatchEncoder` (for spans given to ``export``
    too)."""

    service_method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    response_type = ExportTraceServiceResponse

    def __init__(self, **kwargs: Any) -> None:
        self._encoder = SpanBatchEncoder()
        super().__init__(**kwargs)

    def encode(self, items: Sequence[ReadableSpan]) -> bytes:
        return self._encoder.encode(items)


class FastGrpcLogExporter(EncodedGrpcExport, GrpcLogExporter):  # type: ignore[misc]  # mypy: Any
    """OTLP/gRPC log exporter for requests encoded by :mod:`beacon_otel.export.log_encoding`."""

    service_method = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    response_type = ExportLogsServiceResponse
