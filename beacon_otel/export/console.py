"""The console exporters' output: one scrubbed JSON object per line, for spans and log records.

The upstream console exporters pretty-print each span or record over many lines, straight from
its attributes. On stdout, beside the JSON log lines, that breaks line-by-line parsing and
prints secrets that the OTLP path hides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from beacon_otel.scrubbing import Scrubber


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


def console_span_exporter(scrubber: Scrubber) -> ConsoleSpanExporter:
    formatter: Callable[[ReadableSpan], str] = lambda span: scrubbed_span_line(span, scrubber)  # noqa: E731
    return ConsoleSpanExporter(formatter=formatter)


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
