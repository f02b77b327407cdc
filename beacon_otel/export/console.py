"""The console span exporter's output: one scrubbed JSON object per line.

The upstream console exporter pretty-prints each span over many lines, straight from the span's
attributes. On stdout, beside the JSON log lines, that breaks line-by-line parsing and prints
secrets that the OTLP path hides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from beacon_otel.scrubbing import Scrubber


def scrubbed_span_line(span: ReadableSpan, scrubber: Scrubber) -> str:
    data: dict[str, Any] = json.loads(span.to_json(indent=None))
    data["name"] = scrubber.scrub_text(data.get("name") or "")
    data["attributes"] = scrubber.scrub_mapping(data.get("attributes") or {})
    status = data.get("status") or {}
    if status.get("description"):
        status["description"] = scrubber.scrub_text(status["description"])
    for item in (*data.get("events", ()), *data.get("links", ())):
        item["attributes"] = scrubber.scrub_mapping(item.get("attributes") or {})
    resource = data.get("resource") or {}
    if resource.get("attributes"):
        resource["attributes"] = scrubber.scrub_mapping(resource["attributes"])
    return json.dumps(data, separators=(",", ":")) + "\n"


def console_span_exporter(scrubber: Scrubber) -> ConsoleSpanExporter:
    formatter: Callable[[ReadableSpan], str] = lambda span: scrubbed_span_line(span, scrubber)  # noqa: E731
    return ConsoleSpanExporter(formatter=formatter)
