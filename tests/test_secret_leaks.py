"""Issue 16, item 4 ("Secrets that still leak"), where the planted-secrets test of tests/test_logs.py
does not look: the span encoder's ``trace_state`` (span and link) against what is propagated, the
sink's mapping, and the rows a real sink writes for the demo router behind a real
``beacon-otel-run uvicorn``."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    TraceState,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from beacon_otel.export.span_encoding import SpanBatchEncoder
from beacon_otel.scrubbing import REDACTED, Scrubber
from beacon_otel.sink.mapping import map_request
from tests.conftest import FakeProviders
from tests.support.processes import clean_env, free_port, launch, stop, uvicorn_command
from tests.support.sink import (
    TOKEN,
    Database,
    Sink,
    export_request,
)

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
INCOMING = TraceState([("vendor", "abc"), ("password", "hunter2")])


def _remote_parent(trace_state: TraceState) -> SpanContext:
    return SpanContext(
        trace_id=TRACE_ID,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(0x01),
        trace_state=trace_state,
    )


# --- the encoder: exported scrubbed, propagated unchanged ----------------------------------------


def test_exported_trace_state_hides_secret_members_while_propagation_keeps_them() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "test"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    parent = set_span_in_context(NonRecordingSpan(_remote_parent(INCOMING)))
    outgoing: dict[str, str] = {}
    with tracer.start_as_current_span("child", context=parent, links=[Link(_remote_parent(INCOMING))]):
        TraceContextTextMapPropagator().inject(outgoing)
    (span,) = exporter.get_finished_spans()

    # What goes to the next service is what came in (W3C Trace Context).
    assert outgoing["tracestate"] == "vendor=abc,password=hunter2"

    for _ in range(2):  # the second time from the encoder's cache
        request = ExportTraceServiceRequest.FromString(SpanBatchEncoder(Scrubber()).encode([span]))
        (encoded,) = request.resource_spans[0].scope_spans[0].spans
        assert encoded.trace_state == f"vendor=abc,password={REDACTED}"
        assert encoded.links[0].trace_state == f"vendor=abc,password={REDACTED}"
    assert span.context.trace_state == INCOMING, "the span's own state is not touched"

    # Without a scrubber (the encoder's own tests, tools), the state is written as it is.
    plain = ExportTraceServiceRequest.FromString(SpanBatchEncoder().encode([span]))
    assert plain.resource_spans[0].scope_spans[0].spans[0].trace_state == "vendor=abc,password=hunter2"


def test_sink_mapping_stores_the_trace_state_scrubbed_whatever_sent_it() -> None:
    request = export_request(1)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.trace_state = "vendor=abc,password=hunter2,pw=x,congo=t61rcWkgMzE"
    (row,) = map_request(request, {}).rows
    metadata = json.loads(row[13])
    assert (
        metadata["otel"]["trace_state"] == f"vendor=abc,password={REDACTED},pw={REDACTED},congo=t61rcWkgMzE"
    )
    assert "hunter2" not in repr(row)


# --- a real sink, fed by the demo router and by another sender --------------------------------------


def _rows_as_text(database: Database) -> str:
    return database.sql("SELECT row_to_json(t) FROM trace_spans t")


def test_sink_rows_hold_no_planted_trace_state_or_path_parameter(
    database: Database, sink: Sink, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    secrets = {"tracestate": "SECRET5tracestate", "path_parameter": "SECRET8jsessionid"}
    trace_id = f"{TRACE_ID:032x}"
    port = free_port()
    env = clean_env(
        DEMO_PROVIDERS=fake_providers.spec("golem-us", "golem", "us-east"),
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=sink.url,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"authorization=Bearer%20{TOKEN}",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    incoming = {
        "traceparent": f"00-{trace_id}-b7ad6b7169203331-01",
        "tracestate": f"vendor=abc, password={secrets['tracestate']}",
    }
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        assert app.get("/providers", headers=incoming).status_code == 200
        app.get(f"/health;jsessionid={secrets['path_parameter']}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            stored = _rows_as_text(database)
            if f'trace_id":"{uuid.UUID(trace_id)}' in stored and "jsessionid" in stored:
                break
            time.sleep(0.2)
        stop(app.process)
    # A sender that does not scrub, straight to the sink.
    foreign = export_request(1)
    foreign.resource_spans[0].scope_spans[0].spans[0].trace_state = "rojo=1,api_key=SECRET17foreign"
    assert sink.post(foreign.SerializeToString()).status_code == 200

    stored = _rows_as_text(database)
    for name, secret in {**secrets, "foreign": "SECRET17foreign"}.items():
        assert secret not in stored, f"{name} stored by the sink"
    rows = [json.loads(line) for line in stored.splitlines()]
    states = {row["metadata"]["otel"]["trace_state"] for row in rows}
    assert f"vendor=abc,password={REDACTED}" in states
    assert f"rojo=1,api_key={REDACTED}" in states
    paths = {row["metadata"]["attributes"].get("url.path") for row in rows}
    assert f"/health;jsessionid={REDACTED}" in paths


def test_the_console_exporter_prints_the_trace_state_scrubbed() -> None:
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    from beacon_otel.export.console import scrubbed_span_line
    from beacon_otel.scrubbing import Scrubber

    state = TraceState([("vendor", "abc"), ("password", "hunter2-console")])
    parent = SpanContext(0x1F, 0x2F, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("test")
    context = trace_api.set_span_in_context(NonRecordingSpan(parent))
    with tracer.start_as_current_span("GET /x", context=context, links=[trace_api.Link(parent)]) as span:
        pass
    line = scrubbed_span_line(span, Scrubber())  # type: ignore[arg-type]
    assert "hunter2-console" not in line
    assert "vendor=abc,password=[scrubbed]" in line
