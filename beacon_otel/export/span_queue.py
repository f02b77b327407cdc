"""The span processor that encodes each span as it ends and queues the bytes for export.

See :mod:`beacon_otel.export.encoded_queue` for why spans wait as bytes rather than objects.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from beacon_otel.export.encoded_queue import EncodedBatchQueue, PayloadExporter
from beacon_otel.export.reporting import ExportReporter
from beacon_otel.export.span_encoding import SpanBatchEncoder
from beacon_otel.scrubbing import Scrubber
from beacon_otel.settings import BatchSettings


class EncodedBatchSpanProcessor(SpanProcessor):
    def __init__(
        self,
        exporter: PayloadExporter,
        batch: BatchSettings,
        reporter: ExportReporter,
        scrubber: Scrubber | None = None,
    ) -> None:
        self._encoder = SpanBatchEncoder(scrubber)
        self.queue = EncodedBatchQueue("traces", exporter, self._encoder, batch, reporter)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self.put_finished(span)

    def put_finished(self, span: ReadableSpan) -> None:
        """Encode and queue a finished span, if sampled: the SDK's spans come through
        :meth:`on_end`, direct spans (:mod:`beacon_otel.instrumentation.direct_span`) straight here."""
        if span.context.trace_flags.sampled:
            self.queue.encode_and_put(self._encode, span)

    def _encode(self, span: ReadableSpan) -> tuple[int, bytes]:
        return self._encoder.origin(span), self._encoder.encode_span(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.queue.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.queue.shutdown()
