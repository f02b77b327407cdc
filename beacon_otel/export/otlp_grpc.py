"""The upstream OTLP/gRPC exporters for spans and logs, sending requests encoded by beacon-otel.

Everything but the encoding (endpoint handling, TLS, headers, compression, retries with
backoff) stays the upstream exporters' own. These subclasses rely on two internals of the
pinned exporter versions (``_translate_data`` and the client stub); tests/test_span_encoding.py
and the OTLP end-to-end tests fail loudly if an upgrade changes them. Kept apart from the
HTTP exporters so that a process exporting over HTTP never imports grpc (about 10 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as _GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _GrpcSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from beacon_otel.export.span_encoding import SpanBatchEncoder

_TRACE_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_LOGS_EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class _RawServiceStub:
    """A TraceService or LogsService stub that sends already-encoded request bytes."""

    def __init__(self, channel: Any, method: str, response_type: Any) -> None:
        self.Export = channel.unary_unary(
            method,
            request_serializer=None,  # the request is bytes already
            response_deserializer=response_type.FromString,
        )


class FastGrpcSpanExporter(_GrpcSpanExporter):
    """OTLP/gRPC span exporter using :class:`SpanBatchEncoder`."""

    def __init__(self, **kwargs: Any) -> None:
        self._encoder = SpanBatchEncoder()
        super().__init__(**kwargs)

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()
        self._client = _RawServiceStub(  # type: ignore[assignment]
            self._channel, _TRACE_EXPORT_METHOD, ExportTraceServiceResponse
        )

    def _translate_data(self, data: Sequence[ReadableSpan] | bytes) -> Any:
        return data if isinstance(data, bytes) else self._encoder.encode(data)

    def _count_data(self, data: Sequence[ReadableSpan] | bytes) -> int:
        return self._payload_count if isinstance(data, bytes) else len(data)

    def export_payload(self, payload: bytes, count: int = 1) -> SpanExportResult:
        """Send an already-encoded request of ``count`` spans, with the upstream retries and timeout."""
        self._payload_count = count
        return self._export(payload)  # type: ignore[arg-type]


class FastGrpcLogExporter(_GrpcLogExporter):
    """OTLP/gRPC log exporter for requests encoded by :mod:`beacon_otel.export.log_encoding`."""

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()
        self._client = _RawServiceStub(  # type: ignore[assignment]
            self._channel, _LOGS_EXPORT_METHOD, ExportLogsServiceResponse
        )

    def _translate_data(self, data: Any) -> Any:
        return data  # bytes already

    def _count_data(self, data: Any) -> int:
        return self._payload_count

    def export_payload(self, payload: bytes, count: int = 1) -> LogRecordExportResult:
        """Send an already-encoded request of ``count`` records, with the upstream retries and timeout."""
        self._payload_count = count
        return self._export(payload)  # type: ignore[arg-type]
