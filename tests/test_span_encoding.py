"""The hand-written OTLP span encoder must decode to what the upstream encoder produces.

Every test records real SDK spans (TracerProvider + SimpleSpanProcessor + InMemorySpanExporter),
encodes them with ``SpanBatchEncoder`` and with the upstream
``opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans``, and compares the decoded
``ExportTraceServiceRequest`` messages.

One difference is deliberate: our ``Span.flags`` and ``Link.flags`` also carry the W3C trace flags in
bits 0-7 ("Bits 0-7 are used for trace flags", trace.proto), which upstream leaves out. The
comparison ORs them into upstream's flags, and ``_assert_flags`` checks those bits explicitly.

Messages are compared as text (readable diffs) and as deterministic serialisations, which are bitwise,
so NaN doubles compare equal to themselves and empty-but-present sub-messages are not confused with
absent ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from google.protobuf import text_format
from google.protobuf.message import Message
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TraceState,
    set_span_in_context,
)

from beacon_otel.export import span_encoding
from beacon_otel.export.span_encoding import SpanBatchEncoder

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - the property test is skipped without hypothesis
    HAVE_HYPOTHESIS = False
else:
    HAVE_HYPOTHESIS = True

HAS_IS_REMOTE = 0x100
IS_REMOTE = 0x200

SpanKey = tuple[bytes, bytes]


# --- recording spans --------------------------------------------------------------------------


def _provider(
    exporter: InMemorySpanExporter,
    resource: Resource | None = None,
    limits: SpanLimits | None = None,
) -> TracerProvider:
    provider = TracerProvider(
        resource=resource if resource is not None else Resource({"service.name": "test"}),
        span_limits=limits,
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _tracer(
    limits: SpanLimits | None = None, resource: Resource | None = None
) -> tuple[Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return _provider(exporter, resource, limits).get_tracer("test.scope", "1.0"), exporter


def _remote_context(trace_state: TraceState | None = None, trace_flags: int = 0x01) -> Context:
    parent = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(trace_flags),
        trace_state=trace_state,
    )
    return set_span_in_context(NonRecordingSpan(parent))


def _one_span(attributes: Mapping[str, Any]) -> Sequence[ReadableSpan]:
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("span", attributes=attributes):
        pass
    return exporter.get_finished_spans()


# --- comparing --------------------------------------------------------------------------------


def _encode(
    spans: Sequence[ReadableSpan], encoder: SpanBatchEncoder | None = None
) -> ExportTraceServiceRequest:
    data = (encoder or SpanBatchEncoder()).encode(spans)
    return ExportTraceServiceRequest.FromString(data)


def _key(message: PbSpan | PbSpan.Link) -> SpanKey:
    return bytes(message.trace_id), bytes(message.span_id)


def _sdk_key(context: SpanContext) -> SpanKey:
    return context.trace_id.to_bytes(16, "big"), context.span_id.to_bytes(8, "big")


def _pb_spans(request: ExportTraceServiceRequest) -> Iterator[PbSpan]:
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            yield from scope_spans.spans


def _upstream(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """Upstream's request with the W3C trace flags put in bits 0-7, as our encoder does."""
    request = encode_spans(spans)
    by_key = {_sdk_key(span.context): span for span in spans}
    for pb_span in _pb_spans(request):
        sdk_span = by_key[_key(pb_span)]
        pb_span.flags |= int(sdk_span.context.trace_flags)
        for pb_link, sdk_link in zip(pb_span.links, sdk_span.links, strict=True):
            pb_link.flags |= int(sdk_link.context.trace_flags)
    return request


def _assert_same(actual: Message, expected: Message) -> None:
    assert text_format.MessageToString(actual) == text_format.MessageToString(expected)
    assert actual.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)


def _assert_flags(spans: Sequence[ReadableSpan], request: ExportTraceServiceRequest) -> None:
    by_key = {_sdk_key(span.context): span for span in spans}
    pb_spans = list(_pb_spans(request))
    assert len(pb_spans) == len(spans)
    for pb_span in pb_spans:
        sdk_span = by_key[_key(pb_span)]
        parent_is_remote = sdk_span.parent is not None and sdk_span.parent.is_remote
        assert pb_span.flags & 0xFF == int(sdk_span.context.trace_flags)
        assert pb_span.flags & HAS_IS_REMOTE
        assert bool(pb_span.flags & IS_REMOTE) == parent_is_remote
        assert pb_span.flags & ~0x3FF == 0
        for pb_link, sdk_link in zip(pb_span.links, sdk_span.links, strict=True):
            assert pb_link.flags & 0xFF == int(sdk_link.context.trace_flags)
            assert pb_link.flags & HAS_IS_REMOTE
            assert bool(pb_link.flags & IS_REMOTE) == sdk_link.context.is_remote
            assert pb_link.flags & ~0x3FF == 0


def _check(
    spans: Sequence[ReadableSpan], encoder: SpanBatchEncoder | None = None
) -> ExportTraceServiceRequest:
    """Encode ``spans``, check the flags and the equality with upstream; return our decoded request."""
    ours = _encode(spans, encoder)
    _assert_flags(spans, ours)
    _assert_same(ours, _upstream(spans))
    return ours


def _attribute(attributes: Sequence[KeyValue], key: str) -> AnyValue:
    matches = [pair.value for pair in attributes if pair.key == key]
    assert len(matches) == 1, f"{key!r} in {[pair.key for pair in attributes]}"
    return matches[0]


# --- basic shapes -----------------------------------------------------------------------------


def test_empty_batch_is_empty_bytes() -> None:
    assert SpanBatchEncoder().encode([]) == b""
    _assert_same(ExportTraceServiceRequest.FromString(b""), encode_spans([]))


def test_all_span_kinds() -> None:
    tracer, exporter = _tracer()
    for kind in SpanKind:
        with tracer.start_as_current_span(f"kind-{kind.name}", kind=kind):
            pass
    spans = exporter.get_finished_spans()
    assert len(spans) == 5

    ours = _check(spans)

    expected = [PbSpan.SpanKind.Value(f"SPAN_KIND_{kind.name}") for kind in SpanKind]
    assert [span.kind for span in _pb_spans(ours)] == expected


def test_root_local_child_and_remote_parent() -> None:
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("root") as root, tracer.start_as_current_span("local-child"):
        pass
    state = TraceState([("vendor", "abc"), ("other", "x-y_z")])
    with (
        tracer.start_as_current_span("remote-child", context=_remote_context(state)),
        tracer.start_as_current_span("grandchild"),
    ):
        pass
    spans = exporter.get_finished_spans()

    ours = _check(spans)

    by_name = {span.name: span for span in _pb_spans(ours)}
    root_id = root.get_span_context().span_id.to_bytes(8, "big")
    assert by_name["root"].parent_span_id == b""
    assert by_name["local-child"].parent_span_id == root_id
    assert by_name["remote-child"].parent_span_id == (0xB7AD6B7169203331).to_bytes(8, "big")
    assert by_name["remote-child"].trace_state == "vendor=abc,other=x-y_z"
    assert by_name["grandchild"].trace_state == "vendor=abc,other=x-y_z"
    assert by_name["root"].trace_state == ""
    # Locally started traces are sampled (0x01) with a random trace id (0x02, W3C level 2); the
    # remote parent's trace carries only the flags it arrived with.
    assert {name: span.flags for name, span in by_name.items()} == {
        "root": HAS_IS_REMOTE | 0x03,
        "local-child": HAS_IS_REMOTE | 0x03,
        "remote-child": HAS_IS_REMOTE | IS_REMOTE | 0x01,
        "grandchild": HAS_IS_REMOTE | 0x01,
    }


# --- attribute values -------------------------------------------------------------------------

NAN = float("nan")

# Values the SDK keeps as they are (checked in test_attribute_values_everywhere) and upstream encodes.
ATTRIBUTE_VALUES: dict[str, Any] = {
    "str": "GET",
    "str-non-ascii": "héllo wörld ✓ 日本語 😀",
    "str-empty": "",
    "str-300": "x" * 300,
    "bool-true": True,
    "bool-false": False,
    "int-zero": 0,
    "int-127": 127,
    "int-128": 128,
    "int-negative": -1,
    "int64-max": 2**63 - 1,
    "int64-min": -(2**63),
    "float": 1.5,
    "float-zero": 0.0,
    "float-negative-zero": -0.0,
    "float-negative": -2.25,
    "float-inf": math.inf,
    "float-negative-inf": -math.inf,
    "float-nan": NAN,
    "seq-str": ("a", "", "ü"),
    "seq-bool": (True, False),
    "seq-int": (1, -2, 2**40),
    "seq-float": (1.5, -0.5, NAN, math.inf),
    "seq-empty": (),
    "bytes": b"\x00\xff",
    "bytes-empty": b"",
    "mapping": {"k": "v", "nested": {"deep": (1, 2)}},
    "mapping-empty": {},
    "seq-mixed": (1, "a", 2.5, False),
    "seq-nested": ((1,), ("x", "y")),
}


def _sdk_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_sdk_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_sdk_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("value", ATTRIBUTE_VALUES.values(), ids=ATTRIBUTE_VALUES.keys())
def test_attribute_values_everywhere(value: Any) -> None:
    """The value as a span, event, link, resource and scope attribute."""
    exporter = InMemorySpanExporter()
    provider = _provider(exporter, Resource({"service.name": "test", "value": value}))
    tracer = provider.get_tracer("scope", "2.0", attributes={"value": value})
    link = Link(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0)), {"value": value})
    with tracer.start_as_current_span("span", links=[link], attributes={"value": value}) as span:
        span.add_event("event", {"value": value}, timestamp=1_700_000_000_000_000_000)
    spans = exporter.get_finished_spans()
    assert _sdk_equal(spans[0].attributes["value"], value), "the SDK changed the value"

    _check(spans)


def test_all_value_types_in_one_span_and_repeatedly() -> None:
    spans = _one_span(ATTRIBUTE_VALUES)
    encoder = SpanBatchEncoder()
    first = encoder.encode(spans)
    for _ in range(3):  # warm caches must not change anything
        assert encoder.encode(spans) == first
        assert SpanBatchEncoder().encode(spans) == first
    _check(spans)


def test_none_attribute_values_match_upstream() -> None:
    """The SDK keeps None (alone, in sequences, in mappings); upstream encodes an empty AnyValue.

    Bug: ``_any_value`` has no None case and falls through to ``str(value)``, encoding the
    string "None".
    """
    attributes = {"none": None, "seq": ("a", None), "map": {"k": None}}
    spans = _one_span(attributes)
    assert dict(spans[0].attributes) == attributes

    _check(spans)


@pytest.mark.parametrize(
    "value",
    [2**63, 2**64 - 1, 2**64, 2**70, -(2**63) - 1, -(2**64) - 1],
    ids=["2^63", "2^64-1", "2^64", "2^70", "-2^63-1", "-2^64-1"],
)
def test_integers_outside_int64_match_upstream(value: int) -> None:
    """The SDK keeps any Python int; upstream drops an attribute whose int does not fit int64.

    Bug: ``_varint`` writes such ints anyway: 2^63..2^64-1 decode as negative numbers, 2^64 as 0,
    2^70 makes the whole request undecodable ("Wire format was corrupt"), and below -2^64
    ``encode`` raises ValueError ("byte must be in range(0, 256)"), losing the whole batch.
    """
    spans = _one_span({"ok": 1, "big": value, "seq": (1, value)})
    assert spans[0].attributes["big"] == value

    ours = _check(spans)

    assert [pair.key for pair in next(_pb_spans(ours)).attributes] == ["ok"]


def test_lone_surrogates_are_replaced_not_raised() -> None:
    """Strings that are not valid UTF-8; upstream raises UnicodeEncodeError on the span name."""
    exporter = InMemorySpanExporter()
    provider = _provider(exporter, Resource({"service.name": "svc\ud800"}))
    tracer = provider.get_tracer("scope\ud800", "1\ud800")
    with tracer.start_as_current_span("name\ud800", attributes={"key\udfff": "value\ud800"}) as span:
        span.add_event("event\ud800", {"k": ("a\ud800",)})
        span.set_status(Status(StatusCode.ERROR, "boom\ud800"))
    spans = exporter.get_finished_spans()

    data = SpanBatchEncoder().encode(spans)

    request = ExportTraceServiceRequest.FromString(data)
    resource_spans = request.resource_spans[0]
    scope = resource_spans.scope_spans[0].scope
    pb_span = resource_spans.scope_spans[0].spans[0]
    assert _attribute(resource_spans.resource.attributes, "service.name").string_value == "svc?"
    assert (scope.name, scope.version) == ("scope?", "1?")
    assert pb_span.name == "name?"
    assert _attribute(pb_span.attributes, "key?").string_value == "value?"
    assert pb_span.events[0].name == "event?"
    assert _attribute(pb_span.events[0].attributes, "k").array_value.values[0].string_value == "a?"
    assert pb_span.status.message == "boom?"
    assert pb_span.status.code == PbStatus.STATUS_CODE_ERROR


def test_long_strings_and_large_messages() -> None:
    """Values past the pair cache's 256-character limit, and multi-byte length prefixes."""
    tracer, exporter = _tracer()
    long_value = "é" * 20_000  # 40 000 bytes: a three-byte length varint
    for i in range(3):
        with tracer.start_as_current_span("n" * 200, attributes={"long": long_value, "i": i}) as span:
            span.add_event("e" * 300, {"long": long_value})
            span.set_status(StatusCode.ERROR, "d" * 1000)
    spans = exporter.get_finished_spans()

    _check(spans)
    _check(spans)


# --- events, links, status, limits -------------------------------------------------------------


def test_events_and_links() -> None:
    tracer, exporter = _tracer()
    links = [
        Link(SpanContext(0x1, 0x2, is_remote=False, trace_flags=TraceFlags(0x00))),
        Link(SpanContext(0x3, 0x4, is_remote=True, trace_flags=TraceFlags(0x01)), {"l": "one", "n": 1}),
        Link(SpanContext(0x5, 0x6, is_remote=False, trace_flags=TraceFlags(0x03)), {"f": (1.0, 2.0)}),
        Link(SpanContext(0x7, 0x8, is_remote=True, trace_flags=TraceFlags(0xFF)), {}),
    ]
    with tracer.start_as_current_span("span", links=links) as span:
        span.add_event("no-attributes", timestamp=1)
        span.add_event("zero-timestamp", {"a": "b"}, timestamp=0)
        span.add_event("now", {"n": 2**40, "b": True, "s": ("x", "y")})
        span.add_link(SpanContext(0x9, 0xA, is_remote=True, trace_flags=TraceFlags(1)), {"late": True})
    spans = exporter.get_finished_spans()

    ours = _check(spans)

    pb_span = next(_pb_spans(ours))
    assert [event.name for event in pb_span.events] == ["no-attributes", "zero-timestamp", "now"]
    assert [event.time_unix_nano for event in pb_span.events[:2]] == [1, 0]
    assert [link.flags for link in pb_span.links] == [0x100, 0x301, 0x103, 0x3FF, 0x301]


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (None, 0, ""),
        (Status(StatusCode.OK), 1, ""),
        (Status(StatusCode.ERROR), 2, ""),
        (Status(StatusCode.ERROR, "it broke: ünïcode"), 2, "it broke: ünïcode"),
    ],
    ids=["unset", "ok", "error", "error-with-description"],
)
def test_status(status: Status | None, code: int, message: str) -> None:
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("span") as span:
        if status is not None:
            span.set_status(status)
    spans = exporter.get_finished_spans()

    ours = _check(spans)

    pb_status = next(_pb_spans(ours)).status
    assert (pb_status.code, pb_status.message) == (code, message)


def test_dropped_counts() -> None:
    limits = SpanLimits(
        max_span_attributes=2,
        max_events=2,
        max_links=2,
        max_event_attributes=1,
        max_link_attributes=1,
    )
    tracer, exporter = _tracer(limits)
    links = [Link(SpanContext(i, i, is_remote=False), {"a": 1, "b": 2, "c": 3}) for i in range(1, 5)]
    attributes = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    with tracer.start_as_current_span("span", links=links, attributes=attributes) as span:
        for i in range(5):
            span.add_event(f"event-{i}", {"a": 1, "b": 2, "c": 3})
    spans = exporter.get_finished_spans()

    ours = _check(spans)

    pb_span = next(_pb_spans(ours))
    assert (pb_span.dropped_attributes_count, pb_span.dropped_events_count, pb_span.dropped_links_count) == (
        3,
        3,
        2,
    )
    assert [event.dropped_attributes_count for event in pb_span.events] == [2, 2]
    assert [link.dropped_attributes_count for link in pb_span.links] == [2, 2]


# --- resources and scopes ---------------------------------------------------------------------


def test_several_resources_and_scopes_keep_their_order() -> None:
    exporter = InMemorySpanExporter()
    resources = [
        Resource({"service.name": "router", "deployment.environment": "prod"}),
        Resource({"service.name": "worker"}, schema_url="https://opentelemetry.io/schemas/1.26.0"),
        Resource({}),
    ]
    tracers = []
    for resource in resources:
        provider = _provider(exporter, resource)
        tracers.append(
            [
                provider.get_tracer("http", "1.2.3", "https://opentelemetry.io/schemas/1.21.0", {"lib": "h"}),
                provider.get_tracer("db"),
                provider.get_tracer("", attributes={"only": ("attributes",)}),
            ]
        )
    # Interleaved so that grouping, not arrival order, decides the layout.
    for round_ in range(2):
        for scope_index in (2, 0, 1):
            for resource_index in (1, 0, 2):
                tracer = tracers[resource_index][scope_index]
                with tracer.start_as_current_span(f"s-{resource_index}-{scope_index}-{round_}"):
                    pass
    spans = exporter.get_finished_spans()

    ours = _check(spans)

    layout = [
        [[span.name for span in scope_spans.spans] for scope_spans in resource_spans.scope_spans]
        for resource_spans in ours.resource_spans
    ]
    assert layout == [[[f"s-{r}-{s}-0", f"s-{r}-{s}-1"] for s in (2, 0, 1)] for r in (1, 0, 2)]
    worker = ours.resource_spans[0]
    assert worker.schema_url == "https://opentelemetry.io/schemas/1.26.0"
    http = ours.resource_spans[1].scope_spans[1]
    assert (http.scope.name, http.scope.version, http.schema_url) == (
        "http",
        "1.2.3",
        "https://opentelemetry.io/schemas/1.21.0",
    )


def test_resource_and_scope_caches_overflow() -> None:
    """More resources (> 64) and scopes (> 256) than the encoder's identity caches hold."""
    exporter = InMemorySpanExporter()
    for i in range(70):
        provider = _provider(exporter, Resource({"service.name": f"svc-{i}", "i": i}))
        with provider.get_tracer(f"r-{i}").start_as_current_span(f"r-{i}"):
            pass
    provider = _provider(exporter)
    for i in range(260):
        tracer = provider.get_tracer(f"scope-{i}", str(i), attributes={"i": i})
        with tracer.start_as_current_span(f"s-{i}"):
            pass
    spans = exporter.get_finished_spans()

    encoder = SpanBatchEncoder()
    _check(spans, encoder)
    _check(spans, encoder)
    _check(list(reversed(spans)), encoder)


# --- the attribute pair cache -----------------------------------------------------------------


def test_repeated_pairs_share_cached_bytes() -> None:
    tracer, exporter = _tracer()
    common = {"http.request.method": "GET", "http.route": "/v1/chat", "retry": False, "status": 200}
    for i in range(200):
        with tracer.start_as_current_span("request", attributes={**common, "i": i % 7}) as span:
            span.add_event("chunk", common)
    spans = exporter.get_finished_spans()

    encoder = SpanBatchEncoder()
    first = _check(spans, encoder)
    span_attribute_tag = b"\x4a"
    assert (span_attribute_tag, "http.request.method", str, "GET") in span_encoding._pair_cache
    _assert_same(_check(spans, encoder), first)
    _assert_same(_check(list(spans), SpanBatchEncoder()), first)


def test_pair_cache_clearing_keeps_output_correct() -> None:
    """More distinct pairs and keys than the caches hold (8192), so the pair cache is cleared."""
    tracer, exporter = _tracer(SpanLimits(max_span_attributes=200))
    with tracer.start_as_current_span("before", attributes={"method": "GET", "flag": True}):
        pass
    for i in range(60):
        attributes = {f"key-{i}-{j}": f"value-{i}-{j}" for j in range(150)}
        with tracer.start_as_current_span(f"distinct-{i}", attributes=attributes):
            pass
    spans = exporter.get_finished_spans()
    distinct_pairs = 60 * 150
    assert distinct_pairs > span_encoding._PAIR_CACHE_LIMIT

    encoder = SpanBatchEncoder()
    _check(spans, encoder)

    assert len(span_encoding._pair_cache) <= span_encoding._PAIR_CACHE_LIMIT
    assert len(span_encoding._key_cache) <= span_encoding._PAIR_CACHE_LIMIT
    _check(spans[:1], encoder)  # pairs cached before the clearing
    _check(spans, encoder)


# --- divergences kept on purpose -------------------------------------------------------------


def test_link_trace_state_is_encoded_where_upstream_drops_it() -> None:
    """Span.Link.trace_state (field 3) is in trace.proto; upstream never fills it, we do.

    Everything else about the link matches upstream.
    """
    tracer, exporter = _tracer()
    context = SpanContext(
        0x1, 0x2, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("v", "1")])
    )
    with tracer.start_as_current_span("span", links=[Link(context, {"a": 1})]):
        pass
    spans = exporter.get_finished_spans()

    ours = _encode(spans)
    _assert_flags(spans, ours)

    upstream = _upstream(spans)
    assert next(_pb_spans(upstream)).links[0].trace_state == ""
    assert next(_pb_spans(ours)).links[0].trace_state == "v=1"
    next(_pb_spans(upstream)).links[0].trace_state = "v=1"
    _assert_same(ours, upstream)


def test_equal_but_distinct_resources_are_not_merged() -> None:
    """Upstream groups by Resource equality, we group by identity.

    Two providers with equal resources give two ResourceSpans here and one upstream; the spans,
    resources and scopes are the same, in the same order.
    """
    exporter = InMemorySpanExporter()
    for _ in range(2):
        provider = _provider(exporter, Resource({"service.name": "same"}))
        with provider.get_tracer("same").start_as_current_span("span"):
            pass
    spans = exporter.get_finished_spans()
    assert spans[0].resource == spans[1].resource
    assert spans[0].resource is not spans[1].resource

    ours = _encode(spans)
    upstream = _upstream(spans)

    assert (len(ours.resource_spans), len(upstream.resource_spans)) == (2, 1)

    def flat(request: ExportTraceServiceRequest) -> list[tuple[bytes, bytes, bytes]]:
        return [
            (
                resource_spans.resource.SerializeToString(deterministic=True),
                scope_spans.scope.SerializeToString(deterministic=True),
                span.SerializeToString(deterministic=True),
            )
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    assert flat(ours) == flat(upstream)


def test_span_without_scope() -> None:
    """A hand-made ReadableSpan may have no scope: upstream writes an empty ``scope``, we omit it."""
    span = ReadableSpan(
        name="no-scope",
        context=SpanContext(0x1, 0x2, is_remote=False, trace_flags=TraceFlags(1)),
        resource=Resource({}),
        start_time=1,
        end_time=2,
    )

    ours = _encode([span])
    upstream = _upstream([span])

    assert not ours.resource_spans[0].scope_spans[0].HasField("scope")
    upstream.resource_spans[0].scope_spans[0].ClearField("scope")
    _assert_same(ours, upstream)


# --- property-based ---------------------------------------------------------------------------

if HAVE_HYPOTHESIS:
    # None and ints outside int64 are left out: they have their own (failing) tests above.
    _texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
    _ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    _floats = st.floats(allow_nan=True, allow_infinity=True)
    _scalars = st.one_of(_texts, st.booleans(), _ints, _floats)
    _values = st.one_of(
        _scalars,
        st.lists(_texts, max_size=4),
        st.lists(st.booleans(), max_size=4),
        st.lists(_ints, max_size=4),
        st.lists(_floats, max_size=4),
    )
    _attribute_dicts = st.dictionaries(st.text("abc.", min_size=1, max_size=3), _values, max_size=8)
    _property_tracer, _property_exporter = _tracer()

    @settings(max_examples=150, deadline=None)
    @given(attributes=_attribute_dicts, event_attributes=_attribute_dicts)
    def test_random_attributes_match_upstream(
        attributes: dict[str, Any], event_attributes: dict[str, Any]
    ) -> None:
        _property_exporter.clear()
        with _property_tracer.start_as_current_span("span", attributes=attributes) as span:
            span.add_event("event", event_attributes)
        spans = _property_exporter.get_finished_spans()

        _check(spans)
        _check(spans)  # again, with the pairs now cached

else:  # pragma: no cover

    @pytest.mark.skip(reason="hypothesis is not installed")
    def test_random_attributes_match_upstream() -> None:
        pass
