"""Log events as OTLP LogRecords, with their fields as typed attributes."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from opentelemetry.trace import SpanContext

from beacon_otel._upstream import ApiLoggerProvider as LoggerProvider
from beacon_otel._upstream import Logger, SeverityNumber
from beacon_otel.export.encoded_queue import EncodedBatchQueue
from beacon_otel.export.log_encoding import LogBatchEncoder

# Fields that have a place of their own in a LogRecord (or in its resource and scope).
_NOT_ATTRIBUTES = frozenset({"timestamp", "level", "logger", "event", "service.name", "trace_id", "span_id"})


def severity_number(level_number: int) -> SeverityNumber:
    """The OpenTelemetry severity of a stdlib level (custom levels fall into the nearest band)."""
    if level_number >= logging.CRITICAL:
        return SeverityNumber.FATAL
    if level_number >= logging.ERROR:
        return SeverityNumber.ERROR
    if level_number >= logging.WARNING:
        return SeverityNumber.WARN
    if level_number >= logging.INFO:
        return SeverityNumber.INFO
    if level_number >= logging.DEBUG:
        return SeverityNumber.DEBUG
    return SeverityNumber.TRACE


def attribute_value(value: Any) -> Any:
    """A value OTLP can carry as it is (str, bool, int, float, lists and maps of them), else its
    text; ``None`` is left out by the caller."""
    if isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if -(1 << 63) <= value < (1 << 63) else str(value)
    if isinstance(value, (list, tuple)):
        return [attribute_value(item) for item in value if item is not None]
    if isinstance(value, Mapping):
        return {str(key): attribute_value(item) for key, item in value.items() if item is not None}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, enum.Enum):  # by value, as the JSON line writes it
        return attribute_value(value.value)
    return str(value)


class LogEmitter(Protocol):
    """Where the pipeline hands each event for export as an OTLP LogRecord."""

    def emit(
        self,
        event: Mapping[str, Any],
        *,
        created: float,
        level_number: int,
        span_context: SpanContext,
        code: tuple[str, int, str] | None = None,
    ) -> None: ...


def _attributes(event: Mapping[str, Any], code: tuple[str, int, str] | None) -> dict[str, Any]:
    attributes = {
        key: attribute_value(value)
        for key, value in event.items()
        if key not in _NOT_ATTRIBUTES and value is not None
    }
    if code is not None:
        path, line, function = code
        attributes["code.file.path"] = path
        attributes["code.line.number"] = line
        attributes["code.function.name"] = function
    return attributes


class EncodedLogEmitter:
    """Encodes each event as OTLP bytes at once and queues them: nothing for the garbage
    collector to track while records wait for export (see :mod:`beacon_otel.export.encoded_queue`)."""

    def __init__(self, queue: EncodedBatchQueue, encoder: LogBatchEncoder) -> None:
        self._queue = queue
        self._encoder = encoder

    def emit(
        self,
        event: Mapping[str, Any],
        *,
        created: float,
        level_number: int,
        span_context: SpanContext,
        code: tuple[str, int, str] | None = None,
    ) -> None:
        encoded = self._encoder.encode_record(
            time_ns=int(created * 1e9),
            observed_ns=time.time_ns(),
            severity_number=severity_number(level_number).value,
            severity_text=logging.getLevelName(level_number),
            body=event["event"],
            attributes=_attributes(event, code),
            trace_id=span_context.trace_id,
            span_id=span_context.span_id,
            trace_flags=int(span_context.trace_flags),
        )
        self._queue.put(self._encoder.origin_for_logger(event["logger"]), encoded)


class SdkLogEmitter:
    """Hands events to any SDK logger provider, with its own processors and exporters (an app
    or a test that brings its own); one OpenTelemetry logger (scope) per logger name."""

    def __init__(self, provider: LoggerProvider) -> None:
        self._provider = provider
        self._loggers: dict[str, Logger] = {}

    def emit(
        self,
        event: Mapping[str, Any],
        *,
        created: float,
        level_number: int,
        span_context: SpanContext,
        code: tuple[str, int, str] | None = None,
    ) -> None:
        name = event["logger"]
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = self._provider.get_logger(name)
        attributes = _attributes(event, code)
        logger.emit(
            timestamp=int(created * 1e9),
            observed_timestamp=time.time_ns(),
            severity_number=severity_number(level_number),
            severity_text=logging.getLevelName(level_number),
            body=event["event"],
            attributes=attributes,
        )
