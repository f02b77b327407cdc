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

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from beacon_otel.export.span_encoding import SpanBatchEncoder

# The upstream HTTP span exporter's logger, whose warnings beacon_otel.export.reporting folds.
_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")

_TRACE_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _RawTraceServiceStub:
    """A TraceService stub that sends already-encoded request bytes."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(
            _TRACE_EXPORT_METHOD,
            request_serializer=None,  # the request is bytes already
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class FastGrpcSpanExporter(_GrpcSpanExporter):
    """OTLP/gRPC span exporter using :class:`SpanBatchEncoder`."""

    def __init__(self, **kwargs: Any) -> None:
        self._encoder = SpanBatchEncoder()
        super().__init__(**kwargs)

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()
        self._client = _RawTraceServiceStub(self._channel)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[ReadableSpan] | bytes) -> Any:
        return data if isinstance(data, bytes) else self._encoder.encode(data)

    def export_payload(self, payload: bytes) -> SpanExportResult:
        """Send an already-encoded request, with the upstream retries and timeout."""
        return self._export(payload)  # type: ignore[arg-type]


class FastHttpSpanExporter(_HttpSpanExporter):
    """OTLP/HTTP (protobuf) span exporter using :class:`SpanBatchEncoder`."""

    def __init__(self, **kwargs: Any) -> None:
        self._encoder = SpanBatchEncoder()
        super().__init__(**kwargs)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.export_payload(self._encoder.encode(spans))

    def export_payload(self, payload: bytes) -> SpanExportResult:
        """Send an already-encoded request, with the upstream retries and timeout."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        result = self._client.export(payload)
        if result.success:
            return SpanExportResult.SUCCESS
        if result.status_code is not None:
            # Name the status: the client's own last message may only say it ran out of time.
            _logger.warning(
                "Failed to export spans batch code: %s, reason: %s", result.status_code, result.reason
            )
        return SpanExportResult.FAILURE
