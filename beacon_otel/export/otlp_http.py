"""The upstream OTLP/HTTP (protobuf) exporters for spans and logs, sending requests encoded by
beacon-otel.

Everything but the encoding (endpoint handling, TLS, headers, compression, retries with
backoff, Retry-After) stays the upstream exporters' own. The request goes through the exporter's
client, an internal reached through :mod:`beacon_otel._upstream`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _HttpSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from beacon_otel import _upstream
from beacon_otel._upstream import HttpLogExporter, LogRecordExportResult
from beacon_otel.export.span_encoding import SpanBatchEncoder

# The upstream HTTP exporters' loggers, whose warnings beacon_otel.export.reporting folds.
_logger = logging.getLogger(_upstream.HTTP_TRACE_EXPORTER_LOGGER)
_log_logger = logging.getLogger(_upstream.HTTP_LOG_EXPORTER_LOGGER)


def _post(exporter: Any, payload: bytes, what: str, logger: logging.Logger) -> bool:
    """One encoded request through an upstream HTTP exporter's client (its retries, timeout,
    headers, TLS); True when accepted."""
    result = _upstream.http_exporter_post(exporter, payload)
    if result is None:  # shut down
        return False
    if result.success:
        return True
    if result.status_code is not None:
        # Name the status: the client's own last message may only say it ran out of time.
        logger.warning(
            "Failed to export %s batch code: %s, reason: %s", what, result.status_code, result.reason
        )
    return False


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


class FastHttpLogExporter(HttpLogExporter):  # type: ignore[misc]  # mypy: Any
    """OTLP/HTTP (protobuf) log exporter for already-encoded requests."""

    def export_payload(self, payload: bytes, count: int = 1) -> LogRecordExportResult:
        """Send an already-encoded request, with the upstream retries and timeout."""
        accepted = _post(self, payload, "logs", _log_logger)
        return LogRecordExportResult.SUCCESS if accepted else LogRecordExportResult.FAILURE
