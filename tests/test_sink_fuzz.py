"""Property tests of the sink's decoder and mapper: whatever a client sends, the answer is rows or
a 4xx, never an unhandled exception and never a 5xx (a Collector does not retry a 500, so the
batch's good spans would be lost with the bad).

In process for breadth (thousands of inputs), then a sample of the same inputs over a real
socket to a real sink, whose answers must be below 500 too.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from beacon_otel.settings import DEFAULT_SINK_SERVICE_MAP
from beacon_otel.sink.decoding import DecodeLimits, decode
from beacon_otel.sink.mapping import map_request
from beacon_otel.sink.reply import Reply
from tests.support.sink import AUTH, Sink

LIMITS = DecodeLimits(max_decompressed_bytes=1024 * 1024, max_elements=100_000)


def _rich_request() -> bytes:
    """A valid request using every part of the schema the mapper reads."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    service = resource_spans.resource.attributes.add()
    service.key, service.value.string_value = "service.name", "hybrid-router"
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "beacon"
    span = scope_spans.spans.add()
    span.trace_id, span.span_id, span.parent_span_id = b"\x01" * 16, b"\x02" * 8, b"\x03" * 8
    span.name = "POST /inference"
    span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_500_000_000
    span.trace_state = "vendor=abc"
    span.status.code, span.status.message = 2, "provider failed"
    for key, setter in (
        ("beacon.job_id", lambda value: setattr(value, "string_value", "job-1")),
        ("beacon.execution_id", lambda value: setattr(value, "int_value", 42)),
        ("beacon.region", lambda value: setattr(value, "string_value", "eu-west")),
        ("error.type", lambda value: setattr(value, "string_value", "http_500")),
        ("http.response.status_code", lambda value: setattr(value, "int_value", 500)),
        ("ratio", lambda value: setattr(value, "double_value", 0.5)),
        ("flag", lambda value: setattr(value, "bool_value", True)),
        ("blob", lambda value: setattr(value, "bytes_value", b"\xff\x00")),
    ):
        attribute = span.attributes.add()
        attribute.key = key
        setter(attribute.value)
    listed = span.attributes.add()
    listed.key = "list"
    listed.value.array_value.values.add().string_value = "a"
    nested = span.attributes.add()
    nested.key = "map"
    entry = nested.value.kvlist_value.values.add()
    entry.key, entry.value.int_value = "k", 1
    event = span.events.add()
    event.name, event.time_unix_nano = "exception", 1_700_000_000_100_000_000
    message = event.attributes.add()
    message.key, message.value.string_value = "exception.message", "boom"
    link = span.links.add()
    link.trace_id, link.span_id = b"\x04" * 16, b"\x05" * 8
    return request.SerializeToString()


VALID = _rich_request()


@st.composite
def mutated_protobuf(draw: st.DrawFn) -> bytes:
    """The valid request with bytes replaced, inserted, deleted, or the tail cut off."""
    body = bytearray(VALID)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, max(len(body) - 1, 0)))
        operation = draw(st.sampled_from(("replace", "insert", "delete", "truncate")))
        if operation == "replace" and body:
            body[position] = draw(st.integers(0, 255))
        elif operation == "insert":
            body[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete" and body:
            del body[position]
        else:
            del body[position:]
    return bytes(body)


_OTLP_KEYS = (
    "resourceSpans", "scopeSpans", "spans", "resource", "scope", "attributes", "key", "value",
    "stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue", "values",
    "traceId", "spanId", "parentSpanId", "name", "startTimeUnixNano", "endTimeUnixNano", "status",
    "code", "message", "events", "links", "traceState", "kind", "timeUnixNano",
)  # fmt: skip
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(_OTLP_KEYS) | st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@st.composite
def otlp_shaped_json(draw: st.DrawFn) -> bytes:
    """JSON documents that look like OTLP/JSON, with any value anywhere."""
    document: Any = {"resourceSpans": [{"scopeSpans": [{"spans": [draw(_json_values)]}]}]}
    if draw(st.booleans()):
        document = draw(_json_values)
    return json.dumps(document).encode()


def _decode_and_map(body: bytes, encoding: bytes, as_json: bool) -> None:
    try:
        mapped = map_request(decode(body, encoding, as_json, LIMITS), DEFAULT_SINK_SERVICE_MAP)
    except Reply as reply:
        assert 400 <= reply.status < 500, (reply.status, reply.message)
        return
    assert mapped.rejected >= 0
    for row in mapped.rows:
        json.dumps(row[13])  # the metadata column must serialise


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4096))
def test_any_bytes_as_protobuf(body: bytes) -> None:
    _decode_and_map(body, b"", False)


@FUZZ
@given(mutated_protobuf())
def test_mutated_requests(body: bytes) -> None:
    _decode_and_map(body, b"", False)
    _decode_and_map(gzip.compress(body), b"gzip", False)


@FUZZ
@given(otlp_shaped_json())
def test_otlp_shaped_json(body: bytes) -> None:
    _decode_and_map(body, b"", True)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from((b"gzip", b"br", b"identity")), st.booleans())
def test_any_bytes_with_any_encoding(body: bytes, encoding: bytes, as_json: bool) -> None:
    _decode_and_map(body, encoding, as_json)


def test_the_valid_request_maps_to_a_row() -> None:
    """The corpus' seed is really valid: the mutations start from something the mapper stores."""
    mapped = map_request(decode(VALID, b"", False, LIMITS), DEFAULT_SINK_SERVICE_MAP)
    assert len(mapped.rows) == 1 and mapped.rejected == 0


_socket_inputs = st.one_of(
    mutated_protobuf().map(lambda body: (body, "application/x-protobuf")),
    otlp_shaped_json().map(lambda body: (body, "application/json")),
    st.binary(max_size=512).map(lambda body: (body, "application/x-protobuf")),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_socket_inputs)
def test_a_sample_over_a_real_socket(sink: Sink, sent: tuple[bytes, str]) -> None:
    """The same kinds of input, sent to one real sink: never a 5xx, and no traceback in its log."""
    body, content_type = sent
    response = httpx.post(sink.url, content=body, headers={"content-type": content_type, **AUTH}, timeout=10)
    assert response.status_code < 500, (body[:200], response.status_code, response.content[:200])
    assert sink.process.poll() is None
    assert "Traceback" not in sink.log.read_text()
