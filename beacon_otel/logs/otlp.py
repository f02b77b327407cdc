"""Log events as OTLP LogRecords, with their fields as typed attributes."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry._logs import Logger, LoggerProvider, SeverityNumber

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
    return str(value)


class OtlpLogEmitter:
    """Hands events to the logger provider; one OpenTelemetry logger (scope) per logger name."""

    def __init__(self, provider: LoggerProvider) -> None:
        self._provider = provider
        self._loggers: dict[str, Logger] = {}

    def emit(
        self,
        event: Mapping[str, Any],
        *,
        created: float,
        level_number: int,
        code: tuple[str, int, str] | None = None,
    ) -> None:
        name = event["logger"]
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = self._provider.get_logger(name)
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
        logger.emit(
            timestamp=int(created * 1e9),
            observed_timestamp=time.time_ns(),
            severity_number=severity_number(level_number),
            severity_text=logging.getLevelName(level_number),
            body=event["event"],
            attributes=attributes,
        )
