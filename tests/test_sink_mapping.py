"""Every rule of the span -> trace_spans row mapping (docs/sink.md, "How a span becomes a row")."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from beacon_otel.settings import ConfigError, load_sink_settings
from beacon_otel.sink.mapping import COLUMNS, map_request, span_uuid
from tests.support.otlp import add_attributes

TRACE = uuid.UUID("6f1c2a9e-5b7d-4c3e-9a1b-2c3d4e5f6a7b")
SPAN = bytes.fromhex("00f067aa0ba902b7")
PARENT = bytes.fromhex("53995c3f42cd8ad8")
START = 1_700_000_000_123_456_000
SERVICE_MAP = {"hybrid-router": "router"}


def _row(
    span_attributes: dict[str, Any] | None = None,
    resource: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    add_attributes(resource_spans.resource.attributes, {"service.name": "hybrid-router", **(resource or {})})
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "scope-x"
    span: Span = scope_spans.spans.add()
    span.trace_id, span.span_id = TRACE.bytes, SPAN
    span.name = "GET /providers"
    span.kind = Span.SPAN_KIND_SERVER
    span.start_time_unix_nano, span.end_time_unix_nano = START, START + 1_234_000_000
    add_attributes(span.attributes, span_attributes or {})
    for name, value in fields.items():
        if name == "events":
            for event_name, attributes in value:
                event = span.events.add()
                event.name = event_name
                add_attributes(event.attributes, attributes)
        elif name == "status":
            span.status.code, span.status.message = value
        else:
            setattr(span, name, value)
    mapped = map_request(request, SERVICE_MAP)
    assert mapped.rejected == 0, mapped.reason
    (row,) = mapped.rows
    return dict(zip(COLUMNS, row, strict=True))


def test_ids() -> None:
    row = _row(parent_span_id=PARENT)
    assert uuid.UUID(row["trace_id"]) == TRACE, "a 128-bit trace id is exactly the UUID"
    assert str(uuid.UUID(row["span_id"])) == "00000000-0000-0000-00f0-67aa0ba902b7"
    assert str(uuid.UUID(row["parent_span_id"])) == "00000000-0000-0000-5399-5c3f42cd8ad8"
    assert bytes.fromhex(row["span_id"][-16:]) == SPAN, "reversible"
    assert span_uuid(PARENT) == row["parent_span_id"], "the same encoding for both columns"
    assert uuid.UUID(span_uuid(SPAN)).version is None, "never mistaken for a random (v4) UUID"
    assert _row()["parent_span_id"] is None


def test_service_operation_and_timings() -> None:
    row = _row()
    assert row["service"] == "router"
    assert _row(resource={"service.name": "gpu-backend"})["service"] == "gpu-backend"
    assert len(_row(resource={"service.name": "s" * 80})["service"]) == 50
    assert row["operation"] == "GET /providers"
    assert len(_row(name="x" * 300)["operation"]) == 100
    assert _row(name="")["operation"] == "unnamed"
    assert row["started_at"] == datetime.fromtimestamp(START / 1e9, UTC)
    assert row["completed_at"] == datetime.fromtimestamp((START + 1_234_000_000) / 1e9, UTC)
    assert row["duration_ms"] == 1234
    precise = _row(
        start_time_unix_nano=1_704_480_968_604_668_506, end_time_unix_nano=1_704_480_968_604_668_999
    )
    assert precise["started_at"].microsecond == 604669, "rounded to the microsecond, not through a float"


@pytest.mark.parametrize(
    ("status", "events", "attributes", "expected"),
    [
        ((Status.STATUS_CODE_UNSET, ""), [], {}, ("completed", None, None)),
        ((Status.STATUS_CODE_OK, ""), [], {}, ("completed", None, None)),
        (
            (Status.STATUS_CODE_ERROR, "HTTP 500"),
            [],
            {"error.type": "http_500"},
            ("failed", "http_500", "HTTP 500"),
        ),
        (
            (Status.STATUS_CODE_ERROR, "boom"),
            [("exception", {"exception.type": "httpx.ConnectError", "exception.message": "refused"})],
            {"error.type": "ConnectError"},
            ("failed", "httpx.ConnectError", "refused"),
        ),
        (
            (Status.STATUS_CODE_ERROR, "ReadTimeout: "),
            [],
            {"error.type": "ReadTimeout"},
            ("timeout", "ReadTimeout", "ReadTimeout: "),
        ),
        (
            (Status.STATUS_CODE_ERROR, "the call timed out"),
            [],
            {},
            ("timeout", "error", "the call timed out"),
        ),
        ((Status.STATUS_CODE_ERROR, ""), [], {}, ("failed", "error", "")),
    ],
)
def test_status_and_errors(
    status: tuple[int, str], events: list[Any], attributes: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    row = _row(attributes, status=status, events=events)
    assert (row["status"], row["error_type"], row["error_message"]) == expected


def test_job_execution_model_and_region() -> None:
    row = _row(
        {
            "beacon.job_id": "job-1",
            "execution_id": 42,
            "gen_ai.request.model": "llama-3",
            "beacon.provider.region": "eu-west",
        },
        resource={"job_id": "job-from-resource", "cloud.region": "us-east"},
    )
    assert (row["job_id"], row["execution_id"], row["model_id"], row["region"]) == (
        "job-1",
        42,
        "llama-3",
        "eu-west",
    )
    from_resource = _row({}, resource={"job.id": "job-2", "cloud.region": "us-east"})
    assert (from_resource["job_id"], from_resource["region"]) == ("job-2", "us-east")
    assert _row({"execution_id": "77"})["execution_id"] == 77
    assert _row({"execution_id": "abc"})["execution_id"] is None
    assert _row({"beacon.execution_id": -5})["execution_id"] is None
    assert _row({"beacon.execution_id": True})["execution_id"] is None
    assert len(_row({"job_id": "j" * 400})["job_id"]) == 255
    assert _row({"model_id": "m"})["model_id"] == "m"


def test_metadata_keeps_everything_else() -> None:
    row = _row(
        {"http.route": "/providers", "ratio": 0.5, "nan": float("nan"), "ok": True},
        events=[("log", {"log.message": "slow"})],
        trace_state="vendor=1",
    )
    metadata = json.loads(row["metadata"])
    assert metadata["kind"] == "SERVER" and metadata["scope"] == "scope-x"
    assert metadata["attributes"] == {"http.route": "/providers", "ratio": 0.5, "nan": "nan", "ok": True}
    assert metadata["resource"] == {"service.name": "hybrid-router"}
    assert metadata["events"][0]["name"] == "log"
    assert metadata["otel"] == {"trace_id": TRACE.hex, "span_id": SPAN.hex(), "trace_state": "vendor=1"}


def test_nul_characters_become_replacement_characters() -> None:
    row = _row({"note": "a\x00b"}, name="op\x00name", status=(Status.STATUS_CODE_ERROR, "bad\x00byte"))
    assert row["operation"] == "op\ufffdname"
    assert row["error_message"] == "bad\ufffdbyte"
    assert (
        "\\u0000" not in row["metadata"] and json.loads(row["metadata"])["attributes"]["note"] == "a\ufffdb"
    )


def test_invalid_ids_are_rejected_others_kept() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for trace_id, span_id, parent in [
        (TRACE.bytes, SPAN, b""),  # valid
        (TRACE.bytes[:15], SPAN, b""),
        (b"\x00" * 16, SPAN, b""),
        (TRACE.bytes, b"\x00" * 8, b""),
        (TRACE.bytes, SPAN[:7], b""),
        (TRACE.bytes, SPAN, b"\x01" * 4),
    ]:
        span = spans.add()
        span.trace_id, span.span_id, span.parent_span_id = trace_id, span_id, parent
    mapped = map_request(request, SERVICE_MAP)
    assert len(mapped.rows) == 1 and mapped.rejected == 5
    assert dict(zip(COLUMNS, mapped.rows[0], strict=True))["service"] == "unknown_service"


def test_sink_settings() -> None:
    settings = load_sink_settings(
        {
            "DATABASE_URL": "postgresql://u:p@db/beacon",
            "BEACON_OTEL_SINK_TOKEN": "t",
            "BEACON_OTEL_SINK_ADDRESS": "0.0.0.0:9000",
            "BEACON_OTEL_SINK_SERVICE_MAP": "gpu-backend=modal",
        }
    )
    assert (settings.host, settings.port, settings.token) == ("0.0.0.0", 9000, "t")
    assert settings.service_map == {"hybrid-router": "router", "gpu-backend": "modal"}
    open_sink = load_sink_settings(
        {
            "DATABASE_URL": "postgresql://db/x",
            "BEACON_OTEL_SINK_TOKEN": "",
            "BEACON_OTEL_SINK_ALLOW_NO_TOKEN": "true",
        }
    )
    assert open_sink.token is None
    with pytest.raises(ConfigError) as error:
        load_sink_settings(
            {"DATABASE_URL": "postgresql://u:SECRET@db/x", "BEACON_OTEL_SINK_MAX_INFLIGHT": "0"}
        )
    assert len(error.value.problems) == 2
    assert "BEACON_OTEL_SINK_TOKEN" in error.value.problems[0] and "SECRET" not in str(error.value)


def test_a_unicode_digit_execution_id_is_no_number_and_breaks_nothing() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add()
    for number, execution_id in enumerate(("\u00b2", "42")):
        span = spans.spans.add()
        span.trace_id, span.span_id, span.name = bytes(range(1, 17)), (number + 1).to_bytes(8, "big"), "op"
        span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
        add_attributes(span.attributes, {"beacon.execution_id": execution_id})
    mapped = map_request(request, SERVICE_MAP)
    execution = COLUMNS.index("execution_id")
    assert [row[execution] for row in mapped.rows] == [None, 42]
    assert mapped.rejected == 0
