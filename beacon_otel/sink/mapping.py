"""OTLP spans -> ``trace_spans`` rows. Every rule here is documented in docs/sink.md.

- trace id (16 bytes) -> the UUID with the same 128 bits;
- span id (8 bytes) -> ``00000000-0000-0000-XXXX-XXXXXXXXXXXX`` (eight zero bytes, then the id):
  reversible, used alike for span_id and parent_span_id, and never equal to a random (v4) UUID
  of the Go runner's rows;
- service: ``service.name`` through the configured map (``hybrid-router`` -> ``router``);
- operation: the span name; timings from the span's start and end;
- status: ERROR -> ``failed``, or ``timeout`` when the error names a timeout; otherwise
  ``completed``;
- job_id, execution_id, model_id, region: from the first span (then resource) attribute present
  among the keys listed below;
- error_type / error_message: from the ``exception`` event, else ``error.type`` and the status
  message;
- metadata (JSONB): kind, scope, attributes, resource, events, links, status, the OTel ids and
  the trace_state, whose secret-looking members (``password=...``) are stored as
  ``password=[scrubbed]`` whatever sent the span (the built-in rules of
  :meth:`beacon_otel.scrubbing.Scrubber.scrub_trace_state`);
- strings are cut to their column's width; NUL characters (which Postgres text cannot hold)
  become U+FFFD.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from beacon_otel.scrubbing import Scrubber

COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "operation",
    "started_at",
    "completed_at",
    "duration_ms",
    "status",
    "job_id",
    "execution_id",
    "model_id",
    "region",
    "metadata",
    "error_message",
    "error_type",
)

JOB_ID_KEYS = ("beacon.job_id", "job.id", "job_id")
EXECUTION_ID_KEYS = ("beacon.execution_id", "execution.id", "execution_id")
MODEL_ID_KEYS = ("gen_ai.request.model", "beacon.model_id", "model_id", "model")
REGION_KEYS = ("beacon.provider.region", "cloud.region", "region")

_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS_ERROR = 2
_BIGINT_MAX = (1 << 63) - 1
_SPAN_ID_PREFIX = "0000000000000000"
# Any OTLP sender may reach the sink, not only a scrubbing beacon-otel process: the trace_state
# is scrubbed again here (a no-op on what beacon-otel exported).
_SCRUBBER = Scrubber()


def span_uuid(span_id: bytes) -> str:
    """The UUID text (32 hex digits) that stands for an 8-byte span id."""
    return _SPAN_ID_PREFIX + span_id.hex()


def clean(text: str, width: int | None = None) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text[:width] if width is not None else text


def any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return clean(value.string_value)
    if which is None:
        return None
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {clean(pair.key): any_value(pair.value) for pair in pairs}


def _first(keys: tuple[str, ...], *sources: Mapping[str, Any]) -> Any:
    for source in sources:
        for key in keys:
            value = source.get(key)
            if value is not None and value != "":
                return value
    return None


def _text(value: Any, width: int) -> str | None:
    return None if value is None else clean(str(value), width)


def _execution_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        # isascii: "²" and other Unicode digits pass isdigit() but are not numbers for int().
        number = int(value.strip())
    else:
        return None
    return number if 0 <= number <= _BIGINT_MAX else None


_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _json(data: dict[str, Any]) -> str:
    """JSON text for the JSONB column, which has no NaN or infinity: those become strings."""
    try:
        return _encode_json(data)
    except ValueError:
        return _encode_json(_finite(data))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _timestamp(nanos: int) -> datetime:
    """To the nearest microsecond (Postgres's precision), in integers: a float of seconds since
    1970 cannot hold microseconds exactly."""
    return _EPOCH + timedelta(microseconds=(nanos + 500) // 1000)


@dataclass(slots=True)
class Mapped:
    rows: list[tuple[Any, ...]]
    rejected: int
    reason: str | None


def map_request(request: ExportTraceServiceRequest, service_map: Mapping[str, str]) -> Mapped:
    """Rows for every valid span; spans with invalid ids are counted as rejected."""
    rows: list[tuple[Any, ...]] = []
    rejected = 0
    reason: str | None = None
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service_name = str(resource.get("service.name") or "unknown_service")
        service = clean(service_map.get(service_name, service_name), 50)
        for scope_spans in resource_spans.scope_spans:
            scope = clean(scope_spans.scope.name)
            for span in scope_spans.spans:
                problem = _invalid_ids(span.trace_id, span.span_id, span.parent_span_id)
                if problem is not None:
                    rejected += 1
                    reason = problem
                    continue
                rows.append(_row(span, service, scope, resource))
    return Mapped(rows, rejected, reason)


def _invalid_ids(trace_id: bytes, span_id: bytes, parent_span_id: bytes) -> str | None:
    if len(trace_id) != 16 or not any(trace_id):
        return "a span has an invalid trace_id (16 non-zero bytes expected)"
    if len(span_id) != 8 or not any(span_id):
        return "a span has an invalid span_id (8 non-zero bytes expected)"
    if parent_span_id and len(parent_span_id) != 8:
        return "a span has an invalid parent_span_id (8 bytes expected)"
    return None


def _row(span: Any, service: str, scope: str, resource: dict[str, Any]) -> tuple[Any, ...]:
    span_attributes = attributes(span.attributes)
    events = []
    exception: dict[str, Any] = {}
    for event in span.events:
        event_attributes = attributes(event.attributes)
        if event.name == "exception" and not exception:
            exception = event_attributes
        events.append(
            {
                "name": clean(event.name),
                "time_unix_nano": event.time_unix_nano,
                "attributes": event_attributes,
            }
        )
    links = [
        {
            "trace_id": link.trace_id.hex(),
            "span_id": link.span_id.hex(),
            "attributes": attributes(link.attributes),
        }
        for link in span.links
    ]
    failed = span.status.code == _STATUS_ERROR
    error_type = exception.get("exception.type") or span_attributes.get("error.type")
    error_message = exception.get("exception.message") or (clean(span.status.message) if failed else None)
    if failed and not error_type:
        error_type = "error"
    status = "completed"
    if failed:
        text = f"{error_type} {error_message or ''}".lower()
        status = "timeout" if "timeout" in text or "timed out" in text else "failed"

    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    metadata: dict[str, Any] = {
        "kind": _KINDS[span.kind] if 0 <= span.kind < len(_KINDS) else str(span.kind),
        "scope": scope,
        "attributes": span_attributes,
        "resource": resource,
        "otel": {
            "trace_id": span.trace_id.hex(),
            "span_id": span.span_id.hex(),
            "trace_state": _SCRUBBER.scrub_trace_state(clean(span.trace_state)),
        },
        "status": {"code": span.status.code, "message": clean(span.status.message)},
    }
    if events:
        metadata["events"] = events
    if links:
        metadata["links"] = links
    return (
        span.trace_id.hex(),
        span_uuid(span.span_id),
        span_uuid(span.parent_span_id) if span.parent_span_id else None,
        service,
        clean(span.name or "unnamed", 100),
        _timestamp(start),
        _timestamp(end) if end else None,
        max(0, min((end - start) // 1_000_000, (1 << 31) - 1)) if end else None,
        status,
        _text(_first(JOB_ID_KEYS, span_attributes, resource), 255),
        _execution_id(_first(EXECUTION_ID_KEYS, span_attributes, resource)),
        _text(_first(MODEL_ID_KEYS, span_attributes, resource), 100),
        _text(_first(REGION_KEYS, span_attributes, resource), 50),
        _json(metadata),
        None if error_message is None else clean(str(error_message)),
        _text(error_type, 100),
    )
