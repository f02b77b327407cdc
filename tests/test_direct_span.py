"""Direct server spans: what the encoded queue exports for them, and when the starter falls back.

Every test builds a real SDK ``TracerProvider`` (never the global one) whose processor is
beacon-otel's ``EncodedBatchSpanProcessor`` with an exporter that decodes each payload, starts
spans with ``DirectSpanStarter`` as the ASGI middleware does, flushes the processor and asserts
on the decoded ``ExportTraceServiceRequest``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import Attributes

from beacon_otel.export.reporting import ExportReporter
from beacon_otel.export.span_queue import EncodedBatchSpanProcessor
from beacon_otel.instrumentation.direct_span import DirectSpan, DirectSpanStarter
from beacon_otel.settings import BatchSettings
from tests.support.otlp import RecordingPayloadExporter

REMOTE_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
REMOTE_SPAN_ID = 0xB7AD6B7169203331

# Span.flags (trace.proto): bits 0-7 are the W3C trace flags, then "has is_remote" and "is_remote".
HAS_IS_REMOTE = 0x100
IS_REMOTE = 0x200


class BoomError(RuntimeError):
    """A non-builtin exception: its exception.type must be module-qualified."""


@dataclass
class Pipeline:
    provider: TracerProvider
    tracer: trace.Tracer
    processor: EncodedBatchSpanProcessor
    exporter: RecordingPayloadExporter
    starter: DirectSpanStarter

    def start(
        self,
        name: str = "GET /items",
        parent: Context | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> trace.Span:
        return self.starter.start(name, parent, dict(attributes or {}))

    def exported(self) -> list[tuple[ResourceSpans, ScopeSpans, PbSpan]]:
        """Flush the encoded queue, and every span it has sent so far with its resource and scope."""
        assert self.processor.force_flush(5000)
        return list(self.exporter.exported())

    def spans(self) -> list[PbSpan]:
        return [span for _, _, span in self.exported()]

    def only_span(self) -> PbSpan:
        spans = self.spans()
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]


PipelineFactory = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline() -> Iterator[PipelineFactory]:
    """Builds providers whose only processor is the encoded one; shuts them all down after."""
    built: list[Pipeline] = []

    def make(
        *,
        scope: str = "beacon.test",
        scope_version: str | None = None,
        scope_attributes: Attributes = None,
        **provider_options: Any,
    ) -> Pipeline:
        exporter = RecordingPayloadExporter()
        processor = EncodedBatchSpanProcessor(
            exporter,
            BatchSettings(max_queue_size=100, schedule_delay_ms=60_000, max_export_batch_size=50),
            ExportReporter(interval=60),
        )
        provider_options.setdefault("resource", Resource.create({"service.name": "direct-span-test"}))
        provider = TracerProvider(**provider_options)
        provider.add_span_processor(processor)
        tracer = provider.get_tracer(scope, scope_version, attributes=scope_attributes)
        pipeline = Pipeline(provider, tracer, processor, exporter, DirectSpanStarter(tracer))
        built.append(pipeline)
        return pipeline

    yield make
    for pipeline in built:
        pipeline.provider.shutdown()


def value_of(value: AnyValue) -> tuple[str | None, Any]:
    """An AnyValue as (which field is set, python value): the field tells int from bool from double."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return which, [value_of(item) for item in value.array_value.values]
    if which is None:
        return None, None
    return which, getattr(value, which)


def typed(attributes: Sequence[KeyValue]) -> dict[str, tuple[str | None, Any]]:
    return {kv.key: value_of(kv.value) for kv in attributes}


def plain(attributes: Sequence[KeyValue]) -> dict[str, Any]:
    def unwrap(value: tuple[str | None, Any]) -> Any:
        which, python = value
        return [unwrap(item) for item in python] if which == "array_value" else python

    return {key: unwrap(value) for key, value in typed(attributes).items()}


def remote_parent(flags: int = TraceFlags.SAMPLED, state: TraceState | None = None) -> Context:
    span_context = SpanContext(
        REMOTE_TRACE_ID, REMOTE_SPAN_ID, is_remote=True, trace_flags=TraceFlags(flags), trace_state=state
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def ids(span: trace.Span) -> tuple[bytes, bytes]:
    context = span.get_span_context()
    return context.trace_id.to_bytes(16, "big"), context.span_id.to_bytes(8, "big")


def raised(exception: BaseException) -> BaseException:
    """The exception, with a traceback from having been raised."""
    try:
        raise exception
    except BaseException as caught:
        return caught


# -- 1. the direct path ------------------------------------------------------------------------------


def test_a_direct_span_arrives_with_everything_written_to_it(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(
        resource=Resource.create({"service.name": "direct-span-test", "deployment.environment": "ci"}),
        scope="beacon.test.asgi",
        scope_version="1.2.3",
        scope_attributes={"scope.kind": "middleware"},
    )
    span = pipeline.start("GET", None, {"http.request.method": "GET", "url.path": "/items"})
    assert isinstance(span, DirectSpan)
    assert span.is_recording()

    span.set_attribute("http.response.status_code", 200)
    span.set_attributes({"cache.hit": True, "ratio": 0.25, "tags": ["red", "blue"]})
    span.update_name("GET /items")
    span.add_event("checkpoint", {"step": 1})
    span.record_exception(raised(BoomError("it went boom")))
    span.record_exception(ValueError("bad value"), escaped=True)
    span.set_status(StatusCode.ERROR, "boom")
    span.end()
    assert not span.is_recording()

    ((resource_spans, scope_spans, exported),) = pipeline.exported()
    trace_id, span_id = ids(span)
    assert exported.name == "GET /items"
    assert exported.kind == PbSpan.SPAN_KIND_SERVER
    assert exported.trace_id == trace_id
    assert exported.span_id == span_id
    assert exported.parent_span_id == b""
    assert 0 < exported.start_time_unix_nano <= exported.end_time_unix_nano
    assert typed(exported.attributes) == {
        "http.request.method": ("string_value", "GET"),
        "url.path": ("string_value", "/items"),
        "http.response.status_code": ("int_value", 200),
        "cache.hit": ("bool_value", True),
        "ratio": ("double_value", 0.25),
        "tags": ("array_value", [("string_value", "red"), ("string_value", "blue")]),
    }
    assert exported.dropped_attributes_count == 0
    assert exported.status.code == PbStatus.STATUS_CODE_ERROR
    assert exported.status.message == "boom"

    assert [event.name for event in exported.events] == ["checkpoint", "exception", "exception"]
    checkpoint, boom, bad_value = exported.events
    assert typed(checkpoint.attributes) == {"step": ("int_value", 1)}
    assert exported.start_time_unix_nano <= checkpoint.time_unix_nano <= exported.end_time_unix_nano

    boom_attributes = plain(boom.attributes)
    assert boom_attributes["exception.type"] == f"{__name__}.BoomError"
    assert boom_attributes["exception.message"] == "it went boom"
    assert boom_attributes["exception.escaped"] == "False"
    stacktrace = boom_attributes["exception.stacktrace"]
    assert stacktrace.startswith("Traceback (most recent call last):")
    assert "in raised" in stacktrace
    assert stacktrace.rstrip().endswith(f"{__name__}.BoomError: it went boom")

    bad_value_attributes = plain(bad_value.attributes)
    assert bad_value_attributes["exception.type"] == "ValueError"
    assert bad_value_attributes["exception.message"] == "bad value"
    assert bad_value_attributes["exception.escaped"] == "True"
    assert bad_value_attributes["exception.stacktrace"].strip() == "ValueError: bad value"

    assert plain(resource_spans.resource.attributes) == dict(pipeline.provider.resource.attributes)
    assert plain(resource_spans.resource.attributes)["deployment.environment"] == "ci"
    assert scope_spans.scope.name == "beacon.test.asgi"
    assert scope_spans.scope.version == "1.2.3"
    assert plain(scope_spans.scope.attributes) == {"scope.kind": "middleware"}


def test_a_direct_span_decodes_like_an_sdk_span_of_the_same_tracer(make_pipeline: PipelineFactory) -> None:
    """Apart from ids and times, the two paths must export the same thing."""
    pipeline = make_pipeline()
    attributes = {"http.request.method": "GET", "url.path": "/same"}
    direct = pipeline.start("GET /same", None, attributes)
    sdk = pipeline.tracer.start_span("GET /same", kind=SpanKind.SERVER, attributes=attributes)
    assert isinstance(direct, DirectSpan)
    assert not isinstance(sdk, DirectSpan)
    for span in (direct, sdk):
        span.set_attribute("http.response.status_code", 404)
        span.add_event("lookup", {"hit": False})
        span.set_status(StatusCode.ERROR, "not found")
        span.end()

    exported = pipeline.spans()
    assert len(exported) == 2
    for span in exported:
        span.ClearField("trace_id")
        span.ClearField("span_id")
        span.start_time_unix_nano = span.end_time_unix_nano = 0
        for event in span.events:
            event.time_unix_nano = 0
    assert exported[0] == exported[1]


def test_a_list_attribute_is_kept_as_it_was_when_set(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start()
    tags = ["red"]
    span.set_attribute("tags", tags)
    tags.append("blue")  # the caller reuses its list after handing it over
    span.end()

    assert plain(pipeline.only_span().attributes) == {"tags": ["red"]}


# -- 2. a parent from the context ---------------------------------------------------------------------


def test_a_remote_parent_gives_its_trace_and_becomes_the_parent(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start("POST /orders", remote_parent(state=TraceState([("vendor", "v1")])), {})
    assert isinstance(span, DirectSpan)
    span.end()

    exported = pipeline.only_span()
    assert exported.trace_id == REMOTE_TRACE_ID.to_bytes(16, "big")
    assert exported.parent_span_id == REMOTE_SPAN_ID.to_bytes(8, "big")
    assert exported.span_id == ids(span)[1]
    assert exported.span_id != REMOTE_SPAN_ID.to_bytes(8, "big")
    assert exported.trace_state == "vendor=v1"
    assert exported.flags & (HAS_IS_REMOTE | IS_REMOTE) == HAS_IS_REMOTE | IS_REMOTE
    # The parent's flags say sampled, not random-trace-id: the child inherits exactly that.
    assert exported.flags & 0xFF == TraceFlags.SAMPLED


# -- 3. SDK children -------------------------------------------------------------------------------------


def test_sdk_spans_started_inside_a_direct_span_are_its_children(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    server = pipeline.start("GET /parent", remote_parent(), {})
    assert isinstance(server, DirectSpan)
    with trace.use_span(server, end_on_exit=False):
        current = pipeline.tracer.start_span("from current context")
        current.end()
    explicit = pipeline.tracer.start_span("from explicit context", context=trace.set_span_in_context(server))
    explicit.end()
    server.end()
    assert isinstance(current, ReadableSpan)
    assert isinstance(explicit, ReadableSpan)

    by_name = {span.name: span for span in pipeline.spans()}
    assert set(by_name) == {"GET /parent", "from current context", "from explicit context"}
    parent = by_name["GET /parent"]
    assert parent.parent_span_id == REMOTE_SPAN_ID.to_bytes(8, "big")
    for name in ("from current context", "from explicit context"):
        child = by_name[name]
        assert child.trace_id == parent.trace_id == REMOTE_TRACE_ID.to_bytes(16, "big")
        assert child.parent_span_id == parent.span_id
        assert child.span_id != parent.span_id
        assert child.kind == PbSpan.SPAN_KIND_INTERNAL
        assert child.flags & (HAS_IS_REMOTE | IS_REMOTE) == HAS_IS_REMOTE, "a local parent"


def test_use_span_records_an_exception_and_an_error_on_a_direct_span(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start()
    with pytest.raises(ValueError), trace.use_span(span, end_on_exit=True):
        raise ValueError("no such item")

    exported = pipeline.only_span()
    assert exported.status.code == PbStatus.STATUS_CODE_ERROR
    assert exported.status.message == "ValueError: no such item"
    (event,) = exported.events
    assert event.name == "exception"
    assert plain(event.attributes)["exception.type"] == "ValueError"
    assert plain(event.attributes)["exception.message"] == "no such item"


# -- 4. span limits ----------------------------------------------------------------------------------------

LIMITS = SpanLimits(max_span_attributes=2, max_events=1, max_attribute_length=5)


def test_span_limits_drop_and_count_attributes_and_events_and_truncate_strings(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(span_limits=LIMITS)
    span = pipeline.start("GET /limits", None, {})
    assert isinstance(span, DirectSpan)
    span.set_attribute("text", "0123456789")
    span.set_attribute("tags", ["abcdefgh", "xy"])
    span.set_attribute("extra", 3)
    span.set_attributes({"more": True, "again": "x"})
    span.set_attribute("text", "zyxwvutsrq")  # replacing a kept key is no drop
    span.add_event("first", {"note": "abcdefgh"})
    span.add_event("second")
    span.record_exception(ValueError("dropped too"))
    span.end()

    exported = pipeline.only_span()
    assert plain(exported.attributes) == {"text": "zyxwv", "tags": ["abcde", "xy"]}
    assert exported.dropped_attributes_count == 3
    assert [event.name for event in exported.events] == ["first"]
    assert plain(exported.events[0].attributes) == {"note": "abcde"}
    assert exported.dropped_events_count == 2


def test_span_limits_apply_to_the_attributes_a_span_starts_with(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(span_limits=LIMITS)
    within_count = pipeline.start("GET /a", None, {"url.path": "/abcdefgh"})
    over_count = pipeline.start("GET /b", None, {"k1": "v", "k2": "longvalue", "k3": "v"})
    assert isinstance(within_count, DirectSpan)
    assert isinstance(over_count, DirectSpan)
    within_count.end()
    over_count.end()

    by_name = {span.name: span for span in pipeline.spans()}
    assert plain(by_name["GET /b"].attributes) == {"k1": "v", "k2": "longv"}
    assert by_name["GET /b"].dropped_attributes_count == 1
    assert plain(by_name["GET /a"].attributes) == {"url.path": "/abcd"}
    assert by_name["GET /a"].dropped_attributes_count == 0


# -- 5. invalid values, writes after end -------------------------------------------------------------


def test_invalid_attribute_values_and_keys_are_ignored(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start("GET /invalid", None, {})
    span.set_attribute("none", None)
    span.set_attribute("dict", {"a": 1})
    span.set_attribute("mixed", [1, "a"])
    span.set_attribute("nested", [["a"]])
    span.set_attribute("bytes", b"raw")
    span.set_attribute("", "empty key")
    span.set_attributes({"also none": None, "kept": 7})
    span.end()

    exported = pipeline.only_span()
    # bytes are kept, as the Python SDK keeps them
    assert typed(exported.attributes) == {"bytes": ("bytes_value", b"raw"), "kept": ("int_value", 7)}
    assert exported.dropped_attributes_count == 0


def test_the_span_length_limit_cuts_span_attributes_and_the_general_one_event_attributes(
    make_pipeline: PipelineFactory,
) -> None:
    limits = SpanLimits(max_span_attribute_length=3, max_attribute_length=6)
    pipeline = make_pipeline(span_limits=limits)
    span = pipeline.start("GET /cut", None, {"url.path": "/abcdefgh"})
    span.set_attribute("later", "0123456789")
    span.add_event("evt", {"detail": "0123456789"})
    span.end()

    exported = pipeline.only_span()
    assert plain(exported.attributes) == {"url.path": "/ab", "later": "012"}
    assert plain(exported.events[0].attributes) == {"detail": "012345"}


def test_writes_after_end_are_ignored_and_a_second_end_queues_nothing(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline()
    span = pipeline.start("GET /ended", None, {"kept": "yes"})
    assert isinstance(span, DirectSpan)
    first_end = span.start_time + 5_000
    span.end(end_time=first_end)

    span.set_attribute("late", 1)
    span.set_attributes({"later": 2})
    span.update_name("renamed")
    span.set_status(StatusCode.ERROR, "too late")
    span.add_event("late event")
    span.record_exception(ValueError("too late"))
    span.add_link(SpanContext(REMOTE_TRACE_ID, REMOTE_SPAN_ID, is_remote=True))
    span.end(end_time=first_end + 10_000)
    span.end()

    (exported,) = pipeline.spans()
    assert pipeline.exporter.counts == [1]
    assert exported.name == "GET /ended"
    assert plain(exported.attributes) == {"kept": "yes"}
    assert exported.end_time_unix_nano == first_end
    assert exported.status.code == PbStatus.STATUS_CODE_UNSET
    assert list(exported.events) == []
    assert list(exported.links) == []


# -- 6. status rules ---------------------------------------------------------------------------------------


def test_ok_is_final(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start()
    span.set_status(StatusCode.OK)
    span.set_status(StatusCode.ERROR, "later failure")
    span.set_status(Status(StatusCode.ERROR, "as a Status"))
    span.end()

    exported = pipeline.only_span()
    assert exported.status.code == PbStatus.STATUS_CODE_OK
    assert exported.status.message == ""


@pytest.mark.parametrize(
    "set_error",
    [
        pytest.param(lambda span: span.set_status(StatusCode.ERROR, "why"), id="code and description"),
        pytest.param(lambda span: span.set_status(Status(StatusCode.ERROR, "why")), id="Status"),
    ],
)
def test_error_keeps_its_description(
    make_pipeline: PipelineFactory, set_error: Callable[[trace.Span], None]
) -> None:
    pipeline = make_pipeline()
    span = pipeline.start()
    set_error(span)
    span.end()

    exported = pipeline.only_span()
    assert exported.status.code == PbStatus.STATUS_CODE_ERROR
    assert exported.status.message == "why"


def test_unset_does_not_override_an_error(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start()
    span.set_status(StatusCode.ERROR, "why")
    span.set_status(StatusCode.UNSET)
    span.set_status(Status(StatusCode.UNSET))
    span.end()

    exported = pipeline.only_span()
    assert exported.status.code == PbStatus.STATUS_CODE_ERROR
    assert exported.status.message == "why"


def test_error_can_become_ok(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start()
    span.set_status(StatusCode.ERROR, "why")
    span.set_status(StatusCode.OK)
    span.end()

    assert pipeline.only_span().status.code == PbStatus.STATUS_CODE_OK


# -- 7. sampling -------------------------------------------------------------------------------------------


class FixedSampler(Sampler):
    """Always the same decision, with one attribute of its own."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        return SamplingResult(self.decision, {**(attributes or {}), "sampler.decision": self.decision.name})

    def get_description(self) -> str:
        return f"FixedSampler({self.decision.name})"


def test_always_off_gives_a_non_recording_span_and_exports_nothing(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(sampler=ALWAYS_OFF)
    span = pipeline.start("GET /unsampled", None, {"url.path": "/unsampled"})
    assert not isinstance(span, DirectSpan)
    assert not span.is_recording()
    assert not span.get_span_context().trace_flags.sampled
    assert span.get_span_context().is_valid
    span.set_attribute("ignored", 1)
    span.end()

    assert pipeline.spans() == []
    assert pipeline.exporter.requests == []


@pytest.mark.parametrize(
    "sampler",
    [DEFAULT_ON, ParentBased(ALWAYS_ON)],
    ids=["default instance (decided without the call)", "another ParentBased (asked)"],
)
def test_an_unsampled_remote_parent_is_followed(make_pipeline: PipelineFactory, sampler: Sampler) -> None:
    pipeline = make_pipeline(sampler=sampler)
    span = pipeline.start("GET /follow", remote_parent(flags=TraceFlags.DEFAULT), {})
    assert not span.is_recording()
    assert span.get_span_context().trace_id == REMOTE_TRACE_ID
    assert not span.get_span_context().trace_flags.sampled
    span.end()

    sampled = pipeline.start("GET /follow-sampled", remote_parent(flags=TraceFlags.SAMPLED), {})
    assert isinstance(sampled, DirectSpan)
    sampled.end()

    assert [span.name for span in pipeline.spans()] == ["GET /follow-sampled"]


def test_record_only_records_but_is_not_exported(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(sampler=FixedSampler(Decision.RECORD_ONLY))
    span = pipeline.start("GET /record-only", None, {"url.path": "/record-only"})
    assert isinstance(span, DirectSpan)
    assert span.is_recording()
    assert not span.get_span_context().trace_flags.sampled
    assert dict(span.attributes) == {"url.path": "/record-only", "sampler.decision": "RECORD_ONLY"}
    span.end()

    assert pipeline.spans() == []


def test_attributes_added_by_the_sampler_are_exported(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(sampler=FixedSampler(Decision.RECORD_AND_SAMPLE))
    span = pipeline.start("GET /sampler", None, {"url.path": "/sampler"})
    assert isinstance(span, DirectSpan)
    span.end()

    assert plain(pipeline.only_span().attributes) == {
        "url.path": "/sampler",
        "sampler.decision": "RECORD_AND_SAMPLE",
    }


# -- 8. falling back to the SDK ----------------------------------------------------------------------------


def test_another_processor_sends_the_starter_back_to_the_sdk(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    before = pipeline.start("GET /before", None, {"phase": "before"})
    assert isinstance(before, DirectSpan)
    before.end()

    memory = InMemorySpanExporter()
    pipeline.provider.add_span_processor(SimpleSpanProcessor(memory))
    after = pipeline.start("GET /after", None, {"phase": "after"})
    assert not isinstance(after, DirectSpan)
    assert isinstance(after, ReadableSpan)
    after.set_attribute("http.response.status_code", 201)
    after.end()

    (in_memory,) = memory.get_finished_spans()
    assert in_memory.name == "GET /after"
    assert in_memory.kind is SpanKind.SERVER
    assert dict(in_memory.attributes or {}) == {"phase": "after", "http.response.status_code": 201}

    by_name = {span.name: span for span in pipeline.spans()}
    assert set(by_name) == {"GET /before", "GET /after"}
    assert by_name["GET /after"].kind == PbSpan.SPAN_KIND_SERVER
    assert by_name["GET /after"].span_id == ids(after)[1]
    assert plain(by_name["GET /after"].attributes) == {"phase": "after", "http.response.status_code": 201}


def test_a_provider_without_the_encoded_processor_gets_sdk_spans() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    starter = DirectSpanStarter(provider.get_tracer("beacon.test"))
    span = starter.start("GET /plain", None, {"url.path": "/plain"})
    assert not isinstance(span, DirectSpan)
    assert isinstance(span, ReadableSpan)
    span.end()

    (finished,) = memory.get_finished_spans()
    assert finished.name == "GET /plain"
    assert finished.kind is SpanKind.SERVER
    assert dict(finished.attributes or {}) == {"url.path": "/plain"}
    provider.shutdown()


def test_a_disabled_tracer_starts_no_direct_span(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    assert isinstance(pipeline.tracer, SdkTracer)
    assert isinstance(pipeline.start(), DirectSpan)
    pipeline.tracer._tracer_config.is_enabled = False
    span = pipeline.start("GET /disabled", None, {})
    assert not isinstance(span, DirectSpan)
    assert not span.is_recording()
    span.end()

    assert pipeline.spans() == []


# -- 9. trace flags --------------------------------------------------------------------------------------


def test_root_spans_are_sampled_and_flag_their_random_trace_id(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    span = pipeline.start("GET /root", None, {})
    assert isinstance(span, DirectSpan)
    flags = span.get_span_context().trace_flags
    assert flags.sampled
    assert flags.random_trace_id
    sdk_root = pipeline.tracer.start_span("sdk root")
    assert flags == sdk_root.get_span_context().trace_flags
    span.end()

    exported = pipeline.only_span()
    assert exported.flags & 0xFF == TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID
    assert exported.flags & (HAS_IS_REMOTE | IS_REMOTE) == HAS_IS_REMOTE


class SequentialIdGenerator(IdGenerator):
    """Ids that are not random, and say so."""

    def __init__(self) -> None:
        self.next_id = 0

    def generate_span_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def generate_trace_id(self) -> int:
        self.next_id += 1
        return self.next_id


def test_a_non_random_id_generator_gets_no_random_trace_id_flag(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(id_generator=SequentialIdGenerator())
    span = pipeline.start("GET /sequential", None, {})
    assert isinstance(span, DirectSpan)
    assert span.get_span_context().trace_flags == TraceFlags.SAMPLED
    span.end()

    exported = pipeline.only_span()
    assert exported.trace_id == (1).to_bytes(16, "big")
    assert exported.span_id == (2).to_bytes(8, "big")
    assert exported.flags & 0xFF == TraceFlags.SAMPLED
