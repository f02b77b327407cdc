"""The httpx client instrumentation: the spans, trace headers and durations real requests produce.

``instrument_transports`` patches httpx's transport classes and reads the global tracer provider,
meter provider and propagator, so every test runs in a fresh Python process. That process builds
the pipeline as beacon-otel does (a ``TracerProvider`` whose only processor is the encoded one,
with an exporter that decodes each payload; a ``MeterProvider`` whose reader wraps a capturing
exporter in ``WithHttpMetrics``), starts a small HTTP server on loopback, instruments httpx, runs
the test's requests with ``httpx.Client`` or ``httpx.AsyncClient``, flushes, and prints as JSON
what the exporters and the server received. The test asserts on that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from beacon_otel.instrumentation.http_series import (
    CLIENT_DURATION_NAME,
    CLIENT_SCOPE_NAME,
    ClientSeriesKey,
    client_series_attributes,
)
from beacon_otel.legacy_trace import uuid_from_trace_id

ROOT = Path(__file__).resolve().parent.parent
MARKER = "HTTPX-CLIENT-RESULT "
KINDS = ["sync", "async"]

# Runs before the test's body. ``request(method, path_or_url, ...)`` sends one request with a new
# client of the kind under test; RESULT collects whatever the body wants to report.
PRELUDE = textwrap.dedent(
    """
    import asyncio
    import json
    import math
    import socket
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry import metrics, propagate, trace
    from opentelemetry.metrics import Observation
    from opentelemetry.instrumentation.utils import suppress_http_instrumentation, suppress_instrumentation
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
    from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from beacon_otel.export.added_metrics import WithHttpMetrics
    from beacon_otel.export.reporting import ExportReporter
    from beacon_otel.export.span_queue import EncodedBatchSpanProcessor
    from beacon_otel.instrumentation import direct_span, http_metrics
    from beacon_otel.instrumentation.http_aggregation import FastHttpMetrics
    from beacon_otel.instrumentation.http_conventions import client_conventions
    from beacon_otel.instrumentation.http_series import SCOPE_NAME
    from beacon_otel.instrumentation.httpx_client import instrument_transports
    from beacon_otel.legacy_trace import LegacyTraceIdPropagator
    from beacon_otel.settings import BatchSettings, load_settings

    MODE, KIND = sys.argv[1], sys.argv[2]
    RESULT = {}

    # -- the server ------------------------------------------------------------------------------

    RECEIVED = []


    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            RECEIVED.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": [[key.lower(), value] for key, value in self.headers.items()],
                }
            )
            path = self.path.split("?", 1)[0]
            status = {"/ok": 200, "/missing": 404, "/boom": 500, "/redirect": 302}.get(path, 404)
            body = b"hello"
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "/ok")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PURGE = answer

        def log_message(self, *args):
            pass


    SERVER = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    SERVER.daemon_threads = True
    PORT = SERVER.server_address[1]
    BASE = f"http://127.0.0.1:{PORT}"
    threading.Thread(target=SERVER.serve_forever, daemon=True).start()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        CLOSED_PORT = probe.getsockname()[1]

    # -- traces ----------------------------------------------------------------------------------


    class DecodingExporter:
        def __init__(self):
            self.requests = []

        def export_payload(self, payload, count):
            self.requests.append(ExportTraceServiceRequest.FromString(payload))
            return True

        def shutdown(self):
            pass


    DECODING = DecodingExporter()
    PROCESSOR = EncodedBatchSpanProcessor(
        DECODING,
        BatchSettings(max_queue_size=100, schedule_delay_ms=60_000, max_export_batch_size=50),
        ExportReporter(interval=60),
    )
    ON_END_CALLS = [0]
    _processor_on_end = PROCESSOR.on_end


    def _counting_on_end(span):
        ON_END_CALLS[0] += 1
        _processor_on_end(span)


    PROCESSOR.on_end = _counting_on_end
    TRACER_PROVIDER = TracerProvider(resource=Resource.create({"service.name": "httpx-client-test"}))
    TRACER_PROVIDER.add_span_processor(PROCESSOR)
    MEMORY = InMemorySpanExporter()
    if MODE == "fallback":
        TRACER_PROVIDER.add_span_processor(SimpleSpanProcessor(MEMORY))
    trace.set_tracer_provider(TRACER_PROVIDER)

    STARTED = []  # the type of every span the instrumentation's starter handed out
    _start = direct_span.DirectSpanStarter.start


    def _recording_start(self, name, parent, attributes):
        span = _start(self, name, parent, attributes)
        STARTED.append(type(span).__name__)
        return span


    direct_span.DirectSpanStarter.start = _recording_start

    # -- metrics ---------------------------------------------------------------------------------


    class CapturingExporter(MetricExporter):
        def __init__(self):
            super().__init__()
            self.exports = []

        def export(self, metrics_data, timeout_millis=10_000, **kwargs):
            self.exports.append(metrics_data)
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis=10_000):
            return True

        def shutdown(self, timeout_millis=30_000, **kwargs):
            return None


    RESOURCE = Resource.create({"service.name": "httpx-client-test"})
    FAST = FastHttpMetrics(RESOURCE, InstrumentationScope(SCOPE_NAME, "test"))
    CAPTURING = CapturingExporter()
    READER = PeriodicExportingMetricReader(
        WithHttpMetrics(CAPTURING, FAST), export_interval_millis=math.inf
    )
    METER_PROVIDER = MeterProvider(metric_readers=[READER], resource=RESOURCE)
    metrics.set_meter_provider(METER_PROVIDER)
    http_metrics.install(FAST, METER_PROVIDER)
    # A point at every collection, as beacon.telemetry.dropped gives in build_telemetry: without
    # one the SDK hands the reader nothing, and WithHttpMetrics is never called.
    METER_PROVIDER.get_meter("httpx-client-test").create_observable_counter(
        "test.keepalive", callbacks=[lambda options: [Observation(0)]]
    )

    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), LegacyTraceIdPropagator("x-trace-id")])
    )

    import httpx

    # The standard variables the test passes (OTEL_PYTHON_HTTPX_EXCLUDED_URLS, ...), as settings read them.
    instrument_transports(httpx, "test", client_conventions(load_settings().http_instrumentation))
    TRACER = trace.get_tracer("httpx-client-test.app")


    def request(method, target, *, follow_redirects=False):
        url = target if target.startswith("http") else BASE + target
        if KIND == "sync":
            with httpx.Client(follow_redirects=follow_redirects, timeout=5) as client:
                return client.request(method, url)

        async def send():
            async with httpx.AsyncClient(follow_redirects=follow_redirects, timeout=5) as client:
                return await client.request(method, url)

        return asyncio.run(send())


    def hex_ids(span):
        context = span.get_span_context()
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"

    # -- the test's body -------------------------------------------------------------------------
    """
)

EPILOGUE = textwrap.dedent(
    """

    # -- what arrived ----------------------------------------------------------------------------

    assert PROCESSOR.force_flush(5000)
    READER.collect()
    SERVER.shutdown()

    _TYPES = {"string_value": "str", "int_value": "int", "bool_value": "bool", "double_value": "float"}


    def _pb_attributes(pairs):
        out = {}
        for pair in pairs:
            which = pair.value.WhichOneof("value")
            if which == "array_value":  # captured headers: lists of strings
                out[pair.key] = ["list", [item.string_value for item in pair.value.array_value.values]]
                continue
            out[pair.key] = [_TYPES.get(which, which), getattr(pair.value, which) if which else None]
        return out


    def _pb_span(scope, span):
        return {
            "scope": scope,
            "name": span.name,
            "kind": PbSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
            "trace_id": span.trace_id.hex(),
            "span_id": span.span_id.hex(),
            "parent_span_id": span.parent_span_id.hex(),
            "flags": f"{span.flags & 0xFF:02x}",
            "attributes": _pb_attributes(span.attributes),
            "status": [
                PbStatus.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
                span.status.message,
            ],
            "events": [{"name": e.name, "attributes": _pb_attributes(e.attributes)} for e in span.events],
        }


    def _sdk_attributes(attributes):
        return {key: [type(value).__name__, value] for key, value in (attributes or {}).items()}


    def _sdk_span(span):
        return {
            "scope": span.instrumentation_scope.name,
            "name": span.name,
            "kind": span.kind.name,
            "trace_id": f"{span.context.trace_id:032x}",
            "span_id": f"{span.context.span_id:016x}",
            "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else "",
            "flags": f"{int(span.context.trace_flags):02x}",
            "attributes": _sdk_attributes(span.attributes),
            "status": [span.status.status_code.name, span.status.description or ""],
            "events": [{"name": e.name, "attributes": _sdk_attributes(e.attributes)} for e in span.events],
        }


    _points = []
    for _data in CAPTURING.exports:
        for _rm in _data.resource_metrics:
            for _sm in _rm.scope_metrics:
                for _metric in _sm.metrics:
                    for _point in _metric.data.data_points:
                        _points.append(
                            {
                                "scope": _sm.scope.name,
                                "name": _metric.name,
                                "attributes": dict(_point.attributes),
                                "count": getattr(_point, "count", None),
                            }
                        )

    _out = {
        "spans": [
            _pb_span(scope_spans.scope.name, span)
            for request in DECODING.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ],
        "memory": [_sdk_span(span) for span in MEMORY.get_finished_spans()],
        "started": STARTED,
        "on_end_calls": ON_END_CALLS[0],
        "received": RECEIVED,
        "exports": len(CAPTURING.exports),
        "points": _points,
        "port": PORT,
        "closed_port": CLOSED_PORT,
        "result": RESULT,
    }
    print("HTTPX-CLIENT-RESULT " + json.dumps(_out))
    """
)


def run(
    body: str, kind: str, mode: str = "direct", variables: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``body`` after the prelude in a fresh interpreter, with the standard ``variables``
    given to the instrumentation; what arrived, decoded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "BEACON_OTEL_"))}
    env.update(variables or {})
    code = PRELUDE + textwrap.dedent(body) + EPILOGUE
    result = subprocess.run(
        [sys.executable, "-c", code, mode, kind],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    assert len(lines) == 1, result.stdout
    out: dict[str, Any] = json.loads(lines[0][len(MARKER) :])
    return out


def client_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [span for span in spans if span["kind"] == "CLIENT"]
    for span in found:
        assert span["scope"] == CLIENT_SCOPE_NAME
    return found


def headers(received: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in received["headers"] if key == name]


def traceparent(span: dict[str, Any]) -> str:
    return f"00-{span['trace_id']}-{span['span_id']}-{span['flags']}"


def durations(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        point
        for point in out["points"]
        if point["scope"] == CLIENT_SCOPE_NAME and point["name"] == CLIENT_DURATION_NAME
    ]


def sorted_points(points: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted((json.dumps(point["attributes"], sort_keys=True), point["count"]) for point in points)


# -- 1. a successful request --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_get_gives_one_direct_client_span_with_the_stable_attributes(kind: str) -> None:
    out = run(
        """
        response = request("GET", "/ok?q=1&page=two")
        RESULT["status"] = response.status_code
        RESULT["current_after"] = trace.get_current_span().get_span_context().is_valid
        """,
        kind,
    )
    assert out["result"] == {"status": 200, "current_after": False}
    assert out["started"] == ["DirectSpan"]
    assert out["on_end_calls"] == 0, "the span went through the SDK processor, not the direct path"
    [span] = out["spans"]
    assert client_spans(out["spans"]) == [span]
    port = out["port"]
    assert span["name"] == "GET"
    assert span["parent_span_id"] == ""
    assert int(span["flags"], 16) & 1, "sampled"
    assert span["attributes"] == {
        "http.request.method": ["str", "GET"],
        "url.full": ["str", f"http://127.0.0.1:{port}/ok?q=1&page=two"],
        "server.address": ["str", "127.0.0.1"],
        "server.port": ["int", port],
        "http.response.status_code": ["int", 200],
        "network.protocol.version": ["str", "1.1"],
    }
    assert span["status"] == ["UNSET", ""]
    assert span["events"] == []
    [received] = out["received"]
    assert received["path"] == "/ok?q=1&page=two"
    assert headers(received, "traceparent") == [traceparent(span)]


@pytest.mark.parametrize("kind", KINDS)
def test_credentials_and_signatures_never_reach_the_span(kind: str) -> None:
    out = run(
        """
        response = request("GET", f"http://user:secret-pw@127.0.0.1:{PORT}/ok?sig=abc123&page=2")
        RESULT["status"] = response.status_code
        """,
        kind,
    )
    assert out["result"] == {"status": 200}
    [span] = out["spans"]
    port = out["port"]
    assert span["attributes"]["url.full"] == [
        "str",
        f"http://REDACTED:REDACTED@127.0.0.1:{port}/ok?sig=REDACTED&page=2",
    ]
    assert "secret-pw" not in json.dumps(out["spans"]) and "abc123" not in json.dumps(out["spans"])


# -- 2. parent and propagation ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_the_client_span_is_a_child_of_the_current_span_and_its_context_is_sent(kind: str) -> None:
    out = run(
        """
        with TRACER.start_as_current_span("parent") as parent:
            request("GET", "/ok")
            RESULT["parent"] = hex_ids(parent)
            RESULT["current_after"] = hex_ids(trace.get_current_span())
        """,
        kind,
    )
    trace_id, parent_span_id = out["result"]["parent"]
    assert out["result"]["current_after"] == [trace_id, parent_span_id]
    [span] = client_spans(out["spans"])
    assert span["trace_id"] == trace_id
    assert span["parent_span_id"] == parent_span_id
    assert span["span_id"] != parent_span_id
    [received] = out["received"]
    assert headers(received, "traceparent") == [f"00-{trace_id}-{span['span_id']}-{span['flags']}"]
    assert headers(received, "x-trace-id") == [uuid_from_trace_id(int(trace_id, 16))]
    assert uuid.UUID(headers(received, "x-trace-id")[0]).hex == trace_id


# -- 3. error statuses --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_4xx_and_5xx_responses_are_errors_with_the_status_as_error_type(kind: str) -> None:
    out = run(
        """
        RESULT["statuses"] = [request("GET", "/missing").status_code, request("POST", "/boom").status_code]
        """,
        kind,
    )
    assert out["result"]["statuses"] == [404, 500]
    missing, boom = client_spans(out["spans"])
    assert (missing["name"], boom["name"]) == ("GET", "POST")
    for span, status in ((missing, 404), (boom, 500)):
        assert span["status"][0] == "ERROR"
        assert span["attributes"]["http.response.status_code"] == ["int", status]
        assert span["attributes"]["error.type"] == ["str", str(status)]
        assert span["events"] == []


# -- 4. connection errors -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_connection_error_is_recorded_and_reaches_the_caller_unchanged(kind: str) -> None:
    out = run(
        """
        try:
            request("GET", f"http://127.0.0.1:{CLOSED_PORT}/ok")
        except BaseException as error:
            RESULT["type"] = f"{type(error).__module__}.{type(error).__qualname__}"
            RESULT["is_connect_error"] = type(error) is httpx.ConnectError
            RESULT["message"] = str(error)
            RESULT["has_request"] = error.request.url.port == CLOSED_PORT
        RESULT["current_after"] = trace.get_current_span().get_span_context().is_valid
        """,
        kind,
    )
    result = out["result"]
    assert result["type"] == "httpx.ConnectError"
    assert result["is_connect_error"] is True
    assert result["has_request"] is True
    assert result["current_after"] is False
    assert out["received"] == []
    [span] = client_spans(out["spans"])
    closed_port = out["closed_port"]
    assert span["name"] == "GET"
    assert span["attributes"] == {
        "http.request.method": ["str", "GET"],
        "url.full": ["str", f"http://127.0.0.1:{closed_port}/ok"],
        "server.address": ["str", "127.0.0.1"],
        "server.port": ["int", closed_port],
        "error.type": ["str", "ConnectError"],
    }
    assert span["status"] == ["ERROR", f"ConnectError: {result['message']}"]
    [event] = span["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == ["str", "httpx.ConnectError"]
    assert event["attributes"]["exception.message"] == ["str", result["message"]]
    assert "ConnectError" in event["attributes"]["exception.stacktrace"][1]


# -- 5. redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_followed_redirect_gives_a_span_per_request(kind: str) -> None:
    out = run(
        """
        response = request("GET", "/redirect", follow_redirects=True)
        RESULT["status"] = response.status_code
        RESULT["history"] = [r.status_code for r in response.history]
        """,
        kind,
    )
    assert out["result"] == {"status": 200, "history": [302]}
    first, second = client_spans(out["spans"])
    port = out["port"]
    assert first["attributes"]["url.full"] == ["str", f"http://127.0.0.1:{port}/redirect"]
    assert first["attributes"]["http.response.status_code"] == ["int", 302]
    assert first["status"] == ["UNSET", ""]
    assert "error.type" not in first["attributes"]
    assert second["attributes"]["url.full"] == ["str", f"http://127.0.0.1:{port}/ok"]
    assert second["attributes"]["http.response.status_code"] == ["int", 200]
    assert first["span_id"] != second["span_id"]
    assert [r["path"] for r in out["received"]] == ["/redirect", "/ok"]
    sent = [headers(r, "traceparent") for r in out["received"]]
    assert sent == [[traceparent(first)], [traceparent(second)]]


# -- 6. suppression -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_suppressed_instrumentation_starts_no_span_and_sends_no_context(kind: str) -> None:
    out = run(
        """
        with suppress_http_instrumentation():
            RESULT["http"] = request("GET", "/ok").status_code
        with suppress_instrumentation():
            RESULT["all"] = request("GET", "/ok").status_code
        RESULT["after"] = request("GET", "/ok").status_code
        """,
        kind,
    )
    assert out["result"] == {"http": 200, "all": 200, "after": 200}
    assert len(out["started"]) == 1
    [span] = client_spans(out["spans"])
    suppressed_http, suppressed_all, after = out["received"]
    for received in (suppressed_http, suppressed_all):
        assert headers(received, "traceparent") == []
        assert headers(received, "x-trace-id") == []
    assert headers(after, "traceparent") == [traceparent(span)]
    assert [point["count"] for point in durations(out)] == [1]


# -- 7. request durations -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_durations_are_counted_per_client_series(kind: str) -> None:
    out = run(
        """
        request("GET", "/ok")
        request("GET", "/ok?again=1")
        request("GET", "/missing")
        request("POST", "/boom")
        try:
            request("GET", f"http://127.0.0.1:{CLOSED_PORT}/ok")
        except httpx.ConnectError:
            pass
        """,
        kind,
    )
    assert out["exports"] == 1
    port, closed_port = out["port"], out["closed_port"]
    expected: list[tuple[ClientSeriesKey, int]] = [
        (("GET", "127.0.0.1", port, 200, None), 2),
        (("GET", "127.0.0.1", port, 404, "404"), 1),
        (("POST", "127.0.0.1", port, 500, "500"), 1),
        (("GET", "127.0.0.1", closed_port, 0, "ConnectError"), 1),
    ]
    points = durations(out)
    assert sorted_points(points) == sorted_points(
        [{"attributes": client_series_attributes(key), "count": count} for key, count in expected]
    )
    connect = next(p for p in points if p["attributes"].get("error.type") == "ConnectError")
    assert connect["attributes"] == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": closed_port,
        "error.type": "ConnectError",
    }
    ok = next(p for p in points if p["attributes"].get("http.response.status_code") == 200)
    assert ok["attributes"] == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
    }


# -- 8. methods outside the known set -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_non_standard_method_is_reported_as_other(kind: str) -> None:
    out = run(
        """
        RESULT["status"] = request("PURGE", "/ok").status_code
        """,
        kind,
    )
    assert out["result"] == {"status": 200}
    [span] = client_spans(out["spans"])
    assert span["name"] == "HTTP"
    assert span["attributes"]["http.request.method"] == ["str", "_OTHER"]
    assert span["attributes"]["http.request.method_original"] == ["str", "PURGE"]
    assert [r["method"] for r in out["received"]] == ["PURGE"]
    [point] = durations(out)
    assert point["attributes"]["http.request.method"] == "_OTHER"


# -- 8b. the upstream instrumentation's variables -----------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_an_excluded_url_goes_out_without_span_duration_or_trace_headers(kind: str) -> None:
    out = run(
        """
        RESULT["statuses"] = [request("GET", "/missing?x=1").status_code, request("GET", "/ok").status_code]
        """,
        kind,
        variables={
            "OTEL_PYTHON_EXCLUDED_URLS": "/nothing-here",
            "OTEL_PYTHON_HTTPX_EXCLUDED_URLS": r"/missing\?x=",
        },
    )
    assert out["result"] == {"statuses": [404, 200]}
    [span] = client_spans(out["spans"])
    assert span["attributes"]["url.full"][1].endswith("/ok"), "searched in the whole URL, query included"
    missing, ok = out["received"]
    assert headers(missing, "traceparent") == [] and headers(ok, "traceparent") == [traceparent(span)]
    assert [point["attributes"]["http.response.status_code"] for point in durations(out)] == [200]


@pytest.mark.parametrize("kind", KINDS)
def test_captured_client_headers_and_http_dup(kind: str) -> None:
    out = run(
        """
        url = f"{BASE}/ok"
        sent = {"X-Tags": "a, b", "X-Api-Key": "KEY-SECRET", "X-Note": "n"}
        if KIND == "sync":
            with httpx.Client() as client:
                client.get(url, headers=sent)
        else:
            async def send():
                async with httpx.AsyncClient() as client:
                    await client.get(url, headers=sent)
            asyncio.run(send())
        """,
        kind,
        variables={
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "x-.*,traceparent",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE": "Content-Length",
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS": "note",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup",
        },
    )
    [span] = client_spans(out["spans"])
    attributes = span["attributes"]
    assert attributes["http.request.header.x_tags"] == ["list", ["a", "b"]], "split at commas, as upstream"
    assert attributes["http.request.header.x_note"] == ["list", ["[REDACTED]"]], "a sanitize field"
    assert attributes["http.request.header.x_api_key"] == ["list", ["[scrubbed]"]], "a credential"
    assert attributes["http.response.header.content_length"] == ["list", ["5"]]
    assert "KEY-SECRET" not in json.dumps(out["spans"])
    assert "http.request.header.traceparent" not in attributes, "read before the trace headers"
    port = out["port"]
    assert attributes["http.method"] == ["str", "GET"] and attributes["http.status_code"] == ["int", 200]
    assert attributes["http.url"] == attributes["url.full"] == ["str", f"http://127.0.0.1:{port}/ok"]
    assert attributes["http.host"] == ["str", "127.0.0.1"] and attributes["net.peer.port"] == ["int", port]
    assert attributes["http.flavor"] == ["str", "1.1"]


# -- 9. another span processor ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_with_another_processor_the_spans_go_through_the_sdk(kind: str) -> None:
    out = run(
        """
        with TRACER.start_as_current_span("parent") as parent:
            request("GET", "/ok?q=1")
            request("GET", "/missing")
            try:
                request("GET", f"http://127.0.0.1:{CLOSED_PORT}/ok")
            except httpx.ConnectError as error:
                RESULT["message"] = str(error)
            RESULT["parent"] = hex_ids(parent)
        """,
        kind,
        mode="fallback",
    )
    assert "DirectSpan" not in out["started"]
    assert len(out["started"]) == 3
    memory = client_spans(out["memory"])
    encoded = client_spans(out["spans"])
    assert len(memory) == 3
    assert out["on_end_calls"] == 4  # the three client spans and their parent, all through the SDK
    trace_id, parent_span_id = out["result"]["parent"]
    port, closed_port = out["port"], out["closed_port"]
    ok, missing, refused = memory
    assert ok["name"] == "GET"
    assert ok["attributes"] == {
        "http.request.method": ["str", "GET"],
        "url.full": ["str", f"http://127.0.0.1:{port}/ok?q=1"],
        "server.address": ["str", "127.0.0.1"],
        "server.port": ["int", port],
        "http.response.status_code": ["int", 200],
        "network.protocol.version": ["str", "1.1"],
    }
    assert ok["status"] == ["UNSET", ""]
    assert missing["attributes"]["error.type"] == ["str", "404"]
    assert missing["status"][0] == "ERROR"
    assert refused["attributes"]["error.type"] == ["str", "ConnectError"]
    assert refused["attributes"]["server.port"] == ["int", closed_port]
    assert refused["status"] == ["ERROR", f"ConnectError: {out['result']['message']}"]
    assert [event["name"] for event in refused["events"]] == ["exception"]
    for span in memory:
        assert span["trace_id"] == trace_id
        assert span["parent_span_id"] == parent_span_id
    assert [headers(r, "traceparent") for r in out["received"]] == [[traceparent(ok)], [traceparent(missing)]]
    # The encoded processor saw the same spans.
    assert [(s["span_id"], s["attributes"], s["status"]) for s in encoded] == [
        (s["span_id"], s["attributes"], s["status"]) for s in memory
    ]


# -- 10. instrumenting twice --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_instrumenting_twice_still_gives_one_span_per_request(kind: str) -> None:
    out = run(
        """
        instrument_transports(httpx, "test")
        RESULT["status"] = request("GET", "/ok").status_code
        """,
        kind,
    )
    assert out["result"] == {"status": 200}
    assert out["started"] == ["DirectSpan"]
    [span] = client_spans(out["spans"])
    [received] = out["received"]
    assert headers(received, "traceparent") == [traceparent(span)]
    assert headers(received, "x-trace-id") == [uuid_from_trace_id(int(span["trace_id"], 16))]
    assert [point["count"] for point in durations(out)] == [1]
