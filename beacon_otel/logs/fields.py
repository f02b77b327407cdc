"""What a log line is made of: timestamps, levels, a stdlib record's extra fields, exceptions."""

from __future__ import annotations

import logging
import math
import time
import traceback
from types import TracebackType
from typing import Any

from beacon_otel.scrubbing import Scrubber

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

# The attributes every LogRecord has; anything else on a record came from ``extra={...}``.
UVICORN_ACCESS_LOGGER = "uvicorn.access"
STANDARD_RECORD_KEYS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}

LEVEL_NUMBERS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# structlog method name -> (level name as written, level number)
STRUCTLOG_LEVELS = {
    "debug": ("debug", logging.DEBUG),
    "info": ("info", logging.INFO),
    "msg": ("info", logging.INFO),
    "warning": ("warning", logging.WARNING),
    "warn": ("warning", logging.WARNING),
    "error": ("error", logging.ERROR),
    "exception": ("error", logging.ERROR),
    "critical": ("critical", logging.CRITICAL),
    "fatal": ("critical", logging.CRITICAL),
}

_second_prefix: tuple[int, str] = (-1, "")


def iso_utc(epoch_seconds: float) -> str:
    """ISO-8601 UTC with microseconds, e.g. ``2026-11-27T04:30:00.123456Z``.

    The date-and-time part changes once a second, so it is formatted once a second.
    """
    global _second_prefix
    second = math.floor(epoch_seconds)
    micros = round((epoch_seconds - second) * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    cached_second, prefix = _second_prefix
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_prefix = (second, prefix)
    return f"{prefix}.{micros:06d}Z"


_level_names: dict[int, str] = {}


def level_name(level_number: int) -> str:
    """Lower-case level name; custom levels keep their registered name."""
    name = _level_names.get(level_number)
    if name is None:
        name = logging.getLevelName(level_number).lower()
        if not name.startswith("level "):  # unnamed yet: addLevelName may still come
            _level_names[level_number] = name
    return name


def record_message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, or, when the arguments do not fit the format, both verbatim:
    a malformed call still leaves a line behind."""
    try:
        return record.getMessage()
    except Exception:
        return _verbatim(record.msg, record.args)


def formatted_message(message: object, args: tuple[Any, ...]) -> str:
    """What ``getMessage`` makes of a call's message and arguments (both verbatim when they do
    not fit), for a call that has no record."""
    try:
        return str(message) % args if args else str(message)
    except Exception:
        return _verbatim(message, args)


def _verbatim(message: object, args: object) -> str:
    return f"{message} {args!r}"


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra={...}`` fields of a stdlib call."""
    attributes = record.__dict__
    extra = attributes.keys() - STANDARD_RECORD_KEYS  # one C-level pass; usually empty or tiny
    if not extra:
        return {}
    # makeRecord adds the extras last: walk back from the end until all are found, then restore
    # the caller's order.
    found: list[tuple[str, Any]] = []
    remaining = len(extra)
    for key, value in reversed(attributes.items()):
        if key in extra:
            if not key.startswith("_"):
                found.append((key, value))
            remaining -= 1
            if not remaining:
                break
    return dict(reversed(found))


def uvicorn_access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Searchable fields for uvicorn's access lines (``client - "METHOD path HTTP/v" status``)."""
    args = record.args
    if record.name != UVICORN_ACCESS_LOGGER or not isinstance(args, tuple):
        return {}
    return access_fields(args)


def access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    """The fields of uvicorn's access line from its five arguments (none for any other shape)."""
    if len(args) != 5:
        return {}
    client, method, path, http_version, status = args
    fields: dict[str, Any] = {}
    host, _, port = str(client).rpartition(":")
    if host and port.isdigit():
        fields["client.address"] = host.strip("[]")
        fields["client.port"] = int(port)
    else:
        fields["client.address"] = client
    path, _, query = str(path).partition("?")
    if query:
        fields["url.query"] = query
    return {
        **fields,
        "http.request.method": method,
        "url.path": path,
        "network.protocol.version": http_version,
        "http.response.status_code": status,
    }


def resolve_exc_info(exc_info: Any) -> ExcInfo | None:
    """Normalise what callers pass as ``exc_info`` (True, an exception, or a tuple)."""
    if not exc_info:
        return None
    if exc_info is True:
        import sys

        current = sys.exc_info()
        return current if current[0] is not None else None
    if isinstance(exc_info, BaseException):
        return (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[0] is not None:
        return exc_info
    return None


def exception_summary(exc_info: ExcInfo, scrubber: Scrubber) -> dict[str, str]:
    """``exception.type`` (qualified unless built in) and ``exception.message``, scrubbed:
    exception messages often quote URLs with their query strings."""
    kind, error, _ = exc_info
    module = kind.__module__
    return {
        "exception.type": kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}",
        "exception.message": scrubber.scrub_text(str(error)),
    }


def exception_fields(exc_info: ExcInfo, scrubber: Scrubber) -> dict[str, str]:
    """The summary plus ``exception.stacktrace`` (OpenTelemetry's names for all three)."""
    kind, error, tb = exc_info
    fields = exception_summary(exc_info, scrubber)
    fields["exception.stacktrace"] = scrubber.scrub_text("".join(traceback.format_exception(kind, error, tb)))
    return fields
