"""The upstream OTLP span exporters with the span encoding swapped for the fast one.

Everything but the encoding (endpoint handling, TLS, headers, compression, retries with
backoff, Retry-After) stays the upstream exporters' own. These subclasses rely on two
internals of the pinned exporter versions (the gRPC exporter's ``_translate_data`` and client
stub, the HTTP exporter's ``_client``); tests/test_span_encoding.py and the OTLP end-to-end
tests fail loudly if an upgrade changes them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as _GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as _HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _HttpSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from beacon_otel.export.span_encoding import SpanBatchEncoder

# The upstream HTTP exporters' loggers, whose warnings beacon_otel.export.reporting folds.
_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
_log_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http._log_exporter")

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


def _post(exporter: Any, payload: bytes, what: str, logger: logging.Logger) -> bool:
    """One encoded request through an upstream HTTP exporter's client (its retries, timeout,
    headers, TLS); True when accepted."""
    if exporter._shutdown:
        return False
    result = exporter._client.export(payload)
    if result.success:
        return True
    if result.status_code is not None:
        # Name the status: the client's own last message may only say it ran out of time.
        logger.warning(
            "Failed to export %s batch code: %s, reason: %s", what, result.status_code, result.reason
        )
    return False


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


class FastHttpSpanExporter(_HttpSpanExporter):
    """OTLP/HTTP (protobuf) span exporter using :class:`SpanBatchEncoder`."""

    def __init__(self, **kwargs: Any) -> None:
        self._encoder = SpanBatchEncoder()
        super().__init__(**kwargs)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.export_payload(self._encoder.encode(spans))

    def export_payload(self, payload: bytes, count: int = 1) -> SpanExportResult:
        """Send an already-encoded request, with the upstream retries and timeout."""
        return (
            SpanExportResult.SUCCESS if _post(self, payload, "spans", _logger) else SpanExportResult.FAILURE
        )


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


class FastHttpLogExporter(_HttpLogExporter):
    """OTLP/HTTP (protobuf) log exporter for already-encoded requests."""

    def export_payload(self, payload: bytes, count: int = 1) -> LogRecordExportResult:
        """Send an already-encoded request, with the upstream retries and timeout."""
        accepted = _post(self, payload, "logs", _log_logger)
        return LogRecordExportResult.SUCCESS if accepted else LogRecordExportResult.FAILURE
