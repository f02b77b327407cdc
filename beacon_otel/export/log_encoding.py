"""A direct OTLP protobuf encoder for log records, the twin of :mod:`span_encoding`.

The distro's log pipeline encodes each record the moment it is logged, straight from the fields
it already has, and queues the bytes (:mod:`encoded_queue`). Records emitted through the
OpenTelemetry Logs API by other code take the same path through
:class:`EncodedLogRecordProcessor`. The wire format is ``logs/v1/logs.proto``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from beacon_otel._upstream import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from beacon_otel.export.encoded_queue import EncodedBatchQueue
from beacon_otel.export.span_encoding import (
    BatchEncoder,
    _any_value,
    _key_values,
    _length_delimited,
    _pack_fixed32,
    _pack_fixed64,
    _string,
    _varint,
)
from beacon_otel.scrubbing import Scrubber

# LogRecord field tags: (field_number << 3) | wire_type.
_TAG_TIME = b"\x09"  # time_unix_nano = 1 (I64)
_TAG_SEVERITY_NUMBER = b"\x10"  # severity_number = 2 (VARINT)
_TAG_SEVERITY_TEXT = b"\x1a"  # severity_text = 3
_TAG_BODY = b"\x2a"  # body = 5 (AnyValue)
_TAG_ATTRIBUTE = b"\x32"  # attributes = 6
_TAG_DROPPED_ATTRIBUTES = b"\x38"  # dropped_attributes_count = 7
_TAG_FLAGS = b"\x45"  # flags = 8 (I32)
_TAG_TRACE_ID = b"\x4a\x10"  # trace_id = 9, 16 bytes
_TAG_SPAN_ID = b"\x52\x08"  # span_id = 10, 8 bytes
_TAG_OBSERVED_TIME = b"\x59"  # observed_time_unix_nano = 11 (I64)
_TAG_EVENT_NAME = b"\x62"  # event_name = 12


class LogBatchEncoder(BatchEncoder):
    """Encodes log records one by one; :meth:`assemble` turns them into one request."""

    def __init__(self, resource: Resource | None = None, scrubber: Scrubber | None = None) -> None:
        super().__init__(scrubber)
        self.resource = resource or Resource.get_empty()
        self._scopes: dict[str, InstrumentationScope] = {}

    def origin_for_logger(self, name: str) -> int:
        """Each logger name is an instrumentation scope, as in the SDK's logging handler."""
        scope = self._scopes.get(name)
        if scope is None:
            scope = self._scopes.setdefault(name, InstrumentationScope(name))
        return self.origin_of(self.resource, scope)

    def encode_record(
        self,
        *,
        time_ns: int,
        observed_ns: int,
        severity_number: int,
        severity_text: str | None,
        body: Any,
        attributes: Mapping[str, Any] | None,
        trace_id: int = 0,
        span_id: int = 0,
        trace_flags: int = 0,
        event_name: str | None = None,
        dropped_attributes: int = 0,
    ) -> bytes:
        """One ``LogRecord`` message body; attribute values are scrubbed."""
        out = bytearray()
        if time_ns:  # 0: unknown, receivers then go by the observed time
            out += _TAG_TIME
            out += _pack_fixed64(time_ns)
        if severity_number:
            out += _TAG_SEVERITY_NUMBER + _varint(severity_number)
        if severity_text:
            out += _length_delimited(_TAG_SEVERITY_TEXT, _string(severity_text))
        out += _length_delimited(_TAG_BODY, _any_value(body))  # None: an empty AnyValue, as upstream
        if attributes:
            out += _key_values(attributes, _TAG_ATTRIBUTE, self._codec)
        if dropped_attributes:
            out += _TAG_DROPPED_ATTRIBUTES + _varint(dropped_attributes)
        if trace_flags:
            out += _TAG_FLAGS + _pack_fixed32(trace_flags & 0xFF)
        if trace_id:
            out += _TAG_TRACE_ID + trace_id.to_bytes(16, "big")
        if span_id:
            out += _TAG_SPAN_ID + span_id.to_bytes(8, "big")
        out += _TAG_OBSERVED_TIME
        out += _pack_fixed64(observed_ns)
        if event_name:
            out += _length_delimited(_TAG_EVENT_NAME, _string(event_name))
        return bytes(out)

    def encode_sdk_record(self, record: ReadableLogRecord | ReadWriteLogRecord) -> tuple[int, bytes]:
        """``(origin, bytes)`` for a record emitted through the SDK's logger provider."""
        log = record.log_record
        body = log.body
        scrub_text = self._codec.scrub_text
        scrubbed_body = scrub_text(body) if isinstance(body, str) and scrub_text else body
        encoded = self.encode_record(
            time_ns=log.timestamp or 0,
            observed_ns=log.observed_timestamp or 0,
            severity_number=log.severity_number.value if log.severity_number is not None else 0,
            severity_text=log.severity_text,
            body=scrubbed_body,
            attributes=log.attributes,
            trace_id=log.trace_id or 0,
            span_id=log.span_id or 0,
            trace_flags=int(log.trace_flags or 0),
            event_name=log.event_name,
            dropped_attributes=record.dropped_attributes,
        )
        return self.origin_of(record.resource or self.resource, record.instrumentation_scope), encoded


class EncodedLogRecordProcessor(LogRecordProcessor):
    """Sends records emitted through the OpenTelemetry Logs API into the encoded queue."""

    def __init__(self, queue: EncodedBatchQueue, encoder: LogBatchEncoder) -> None:
        self.queue = queue
        self._encoder = encoder

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.queue.encode_and_put(self._encoder.encode_sdk_record, log_record)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.queue.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.queue.shutdown()
