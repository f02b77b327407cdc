"""The console exporters' output: one scrubbed line per span or log record.

The upstream console exporters pretty-print each span or record over many lines, straight from
its attributes. On stdout, beside the JSON log lines, that breaks line-by-line parsing and
prints secrets that the OTLP path hides. So each item is one scrubbed JSON object per line; and
a span read by a person (a terminal, like the log pipeline's console format) is one short
line instead of a kilobyte of JSON: see :func:`compact_span_line`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.trace import StatusCode, format_span_id, format_trace_id

from beacon_otel._upstream import ConsoleLogRecordExporter, ReadableLogRecord
from beacon_otel.scrubbing import Scrubber

# What a person looks for first in a span, in this order; the rest stays in the JSON form.
KEY_ATTRIBUTES = (
    "http.request.method",
    "http.route",
    "url.full",
    "http.response.status_code",
    "db.operation.name",
    "db.namespace",
    "beacon.provider.name",
    "beacon.provider.region",
    "beacon.provider.healthy",
    "gen_ai.request.model",
    "beacon.job_id",
    "error.type",
)


def scrubbed_span_line(span: ReadableSpan, scrubber: Scrubber) -> str:
    data: dict[str, Any] = json.loads(span.to_json(indent=None))
    data["name"] = scrubber.scrub_text(data.get("name") or "")
    status = data.get("status") or {}
    if status.get("description"):
        status["description"] = scrubber.scrub_text(status["description"])
    for item in (*data.get("events", ()), *data.get("links", ())):
        item["attributes"] = scrubber.scrub_mapping(item.get("attributes") or {})
    # tracestate is propagated as received, but printed with secret-looking members hidden.
    if span.context is not None and span.context.trace_state:
        data["context"]["trace_state"] = scrubber.scrub_trace_state(span.context.trace_state.to_header())
    for item, link in zip(data.get("links", ()), span.links, strict=False):
        if link.context.trace_state:
            item["context"]["trace_state"] = scrubber.scrub_trace_state(link.context.trace_state.to_header())
    return _line(data, scrubber)


def compact_span_line(span: ReadableSpan, scrubber: Scrubber) -> str:
    """One readable line: when it ended, name, duration, status, kind, the ids as the log lines
    print them (bare hex, so a search for a log line's trace_id finds its spans), key attributes."""
    start = span.start_time or 0
    end = span.end_time or start
    ended = datetime.fromtimestamp(end / 1e9, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    status = "ERROR" if span.status.status_code is StatusCode.ERROR else "ok"
    if span.status.status_code is StatusCode.ERROR and span.status.description:
        status += f" ({scrubber.scrub_text(span.status.description)})"
    fields: list[tuple[str, Any]] = [("kind", span.kind.name.lower())]
    if span.context is not None:
        fields.append(("trace_id", format_trace_id(span.context.trace_id)))
        fields.append(("span_id", format_span_id(span.context.span_id)))
    if span.parent is not None:
        fields.append(("parent_span_id", format_span_id(span.parent.span_id)))
    attributes = span.attributes or {}
    for key in KEY_ATTRIBUTES:
        if key in attributes:
            fields.append((key, scrubber.scrub_value(key, attributes[key])))
    rest = " ".join(f"{key}={_field(value)}" for key, value in fields)
    name = scrubber.scrub_text(span.name or "")
    return f"{ended} [span     ] {name}  {_duration((end - start) / 1e6)}  {status}  {rest}\n"


def _duration(ms: float) -> str:
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def _field(value: Any) -> str:
    """A value as ``key=value`` shows it: quoted only when it has spaces or quotes."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return json.dumps(text) if not text or any(char in text for char in ' "') else text


def wants_compact_spans(log_format: str, out: TextIO | None) -> bool:
    """``BEACON_OTEL_LOG_FORMAT`` decides for spans as for log lines: ``console`` is the short
    line, ``json`` is JSON, ``auto`` (and ``none``) the short line on a terminal only."""
    if log_format in ("console", "json"):
        return log_format == "console"
    try:
        return out is not None and out.isatty()
    except (AttributeError, ValueError):
        return False


def console_span_exporter(
    scrubber: Scrubber, log_format: str = "json", out: TextIO | None = None
) -> ConsoleSpanExporter:
    stream = out or sys.stdout
    render = compact_span_line if wants_compact_spans(log_format, stream) else scrubbed_span_line
    formatter: Callable[[ReadableSpan], str] = lambda span: render(span, scrubber)  # noqa: E731
    return ConsoleSpanExporter(out=stream, formatter=formatter)


def scrubbed_log_line(record: ReadableLogRecord, scrubber: Scrubber) -> str:
    data: dict[str, Any] = json.loads(record.to_json(indent=None))
    body = data.get("body")
    if isinstance(body, str):
        data["body"] = scrubber.scrub_text(body)
    elif isinstance(body, dict):
        data["body"] = scrubber.scrub_mapping(body)
    elif body is not None:
        data["body"] = scrubber.scrub_text(json.dumps(body))
    return _line(data, scrubber)


def _line(data: dict[str, Any], scrubber: Scrubber) -> str:
    """The item's own attributes and its resource's, scrubbed, as one compact JSON line."""
    data["attributes"] = scrubber.scrub_mapping(data.get("attributes") or {})
    resource = data.get("resource") or {}
    if resource.get("attributes"):
        resource["attributes"] = scrubber.scrub_mapping(resource["attributes"])
    return json.dumps(data, separators=(",", ":")) + "\n"


def console_log_exporter(scrubber: Scrubber) -> ConsoleLogRecordExporter:
    """For records emitted through the OpenTelemetry Logs API: stdlib and structlog records are
    printed by the log pipeline already, as scrubbed lines of their own."""
    formatter: Callable[[ReadableLogRecord], str] = lambda record: scrubbed_log_line(record, scrubber)  # noqa: E731
    return ConsoleLogRecordExporter(formatter=formatter)
