"""The one path every log call takes, from structlog or stdlib alike.

enrich (timestamp, level, logger, service, trace ids) -> scrub -> span event (WARNING and up)
-> OTLP LogRecord -> one rendered line on stdout.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import trace

from beacon_otel.logs.fields import (
    STRUCTLOG_LEVELS,
    UVICORN_ACCESS_LOGGER,
    ExcInfo,
    access_fields,
    exception_fields,
    exception_summary,
    formatted_message,
    iso_utc,
    level_name,
    record_extras,
    record_message,
    resolve_exc_info,
    uvicorn_access_fields,
)
from beacon_otel.logs.otlp import LogEmitter
from beacon_otel.logs.output import LineWriter, Renderer
from beacon_otel.providers.outcome import note_handled_error
from beacon_otel.scrubbing import Scrubber

# The distro's and the SDK's own records are printed but never fed back into the telemetry
# they describe: an export failure must not produce a log record that fails to export...
_INTERNAL_LOGGERS = ("opentelemetry", "beacon_otel", "grpc", "urllib3")
_CACHED_VALUE_LENGTH = 64
_SCRUB_CACHE_LIMIT = 4096
# ASGI servers' access loggers: one line per request, the same facts as the server span that
# beacon-otel's middleware gives the request (gunicorn's own access log serves WSGI apps, which
# get no server span, so its lines stay exported).
_ACCESS_LOGGERS = frozenset({UVICORN_ACCESS_LOGGER, "hypercorn.access"})
_RESERVED = frozenset({"timestamp", "level", "logger", "event", "service.name", "trace_id", "span_id"})


def _is_internal(logger_name: str) -> bool:
    root = logger_name.partition(".")[0]
    return root in _INTERNAL_LOGGERS


class LogPipeline:
    def __init__(
        self,
        *,
        service_name: str,
        scrubber: Scrubber,
        renderer: Renderer,
        writer: LineWriter,
        otlp: LogEmitter | None = None,
        span_event_level: int = logging.WARNING,
        export_access_logs: bool = False,
    ) -> None:
        self.service_name = service_name
        self.scrubber = scrubber
        self.renderer = renderer
        self.writer = writer
        self.otlp = otlp
        self.span_event_level = span_event_level
        # Access lines are printed; exported only on request, since the server span of each
        # request already carries them (and exporting them doubles the per-request cost).
        self.export_access_logs = export_access_logs
        # ...and records logged while the pipeline itself runs (an exporter's warning, say)
        # are printed only.
        self._busy = threading.local()
        self._scrubbed: dict[tuple[str, str], Any] = {}

    def _scrub_field(self, key: str, value: Any) -> Any:
        """Scrub one field; short strings repeat (provider names, regions, models), so their
        verdicts are remembered, in a bounded cache."""
        kind = type(value)
        if kind is int or kind is float or kind is bool:
            # A number hides nothing unless its key is a secret's (``pin``); the scrubber
            # remembers its verdict per key.
            return self.scrubber.scrub_value(key, value) if self.scrubber.is_secret_key(key) else value
        if kind is not str or len(value) > _CACHED_VALUE_LENGTH:
            return self.scrubber.scrub_value(key, value)
        cache_key = (key, value)
        scrubbed = self._scrubbed.get(cache_key)
        if scrubbed is None:
            scrubbed = self.scrubber.scrub_value(key, value)
            if len(self._scrubbed) >= _SCRUB_CACHE_LIMIT:
                self._scrubbed.clear()
            self._scrubbed[cache_key] = scrubbed
        return scrubbed

    def handle_record(self, record: logging.LogRecord) -> None:
        """A stdlib record."""
        fields = record_extras(record)
        export = True
        if record.name in _ACCESS_LOGGERS:
            fields.update(uvicorn_access_fields(record))
            export = self.export_access_logs
        if record.stack_info:
            fields["stack_info"] = record.stack_info
        self.emit(
            level_number=record.levelno,
            level=level_name(record.levelno),
            logger_name=record.name,
            message=record_message(record),
            fields=fields,
            exc_info=resolve_exc_info(record.exc_info),
            created=record.created,
            code=(record.pathname, record.lineno, record.funcName),
            export=export,
        )

    def access_line(self, logger_name: str, message_format: str, args: tuple[Any, ...]) -> None:
        """An access line handed over without a LogRecord (:mod:`beacon_otel.logs.access`): the
        line :meth:`handle_record` gives for the same call, printed, not exported."""
        self.emit(
            level_number=logging.INFO,
            level="info",
            logger_name=logger_name,
            message=formatted_message(message_format, args),
            fields=access_fields(args),
            exc_info=None,
            created=time.time(),
            export=False,
        )

    def structlog_processor(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
        """The last structlog processor: returns the rendered line for the logger to write."""
        level, level_number = STRUCTLOG_LEVELS.get(method_name, ("info", logging.INFO))
        exc_info = event_dict.pop("exc_info", None)
        if method_name == "exception" and exc_info is None:
            exc_info = True
        message = event_dict.pop("event", "")
        return self.emit(
            level_number=level_number,
            level=level,
            logger_name=getattr(logger, "name", None) or "structlog",
            message=message if isinstance(message, str) else str(message),
            fields=event_dict,
            exc_info=resolve_exc_info(exc_info),
            created=time.time(),
            write=False,
        )

    def emit(
        self,
        *,
        level_number: int,
        level: str,
        logger_name: str,
        message: str,
        fields: Mapping[str, Any],
        exc_info: ExcInfo | None,
        created: float,
        code: tuple[str, int, str] | None = None,
        write: bool = True,
        export: bool = True,
    ) -> str:
        scrub_field = self._scrub_field
        event: dict[str, Any] = {
            "timestamp": iso_utc(created),
            "level": level,
            "logger": logger_name,
            "event": self.scrubber.scrub_text(message),
            "service.name": self.service_name,
        }
        span = trace.get_current_span()
        span_context = span.get_span_context()
        if span_context.is_valid:  # sampled or not: the ids still join the line to its trace
            event["trace_id"] = format(span_context.trace_id, "032x")
            event["span_id"] = format(span_context.span_id, "016x")
        for key, value in fields.items():
            if key in _RESERVED:
                key = "field." + key  # keep the caller's value without losing ours
            event[key] = scrub_field(key, value)
        if exc_info is not None:
            event.update(exception_fields(exc_info, self.scrubber))
            note_handled_error(exc_info[1])
        elif level_number >= self.span_event_level:
            # A warning logged while an exception is handled is about that exception, even when
            # the caller did not pass exc_info (``except Exception as e: log.warning(f"...{e}")``):
            # name it, so the line and the span say *what* failed.
            handled = sys.exc_info()
            if handled[0] is not None:
                event.update(exception_summary(handled, self.scrubber))
                note_handled_error(handled[1])

        span_event = level_number >= self.span_event_level and span.is_recording()
        otlp = self.otlp if export else None
        if (
            (span_event or otlp is not None)
            and not _is_internal(logger_name)
            and not getattr(self._busy, "active", False)
        ):
            self._busy.active = True
            try:
                if span_event:
                    span.add_event("log", _span_event_attributes(event))
                if otlp is not None:
                    otlp.emit(
                        event,
                        created=created,
                        level_number=level_number,
                        span_context=span_context,
                        code=code,
                    )
            finally:
                self._busy.active = False

        line = self.renderer(event)
        if write:
            self.writer.write(line)
        return line


def _span_event_attributes(event: Mapping[str, Any]) -> dict[str, str]:
    attributes = {
        "log.severity": event["level"].upper(),
        "log.logger": event["logger"],
        "log.message": event["event"],
    }
    for key in ("exception.type", "exception.message"):
        if key in event:
            attributes[key] = event[key]
    return attributes
