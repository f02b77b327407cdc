"""Spans that go from the instrumentation straight to the encoded export queue.

Why: from ``tracer.start_span`` to queued bytes, an SDK span costs about 20 µs (attribute
validation, a lock, bounded containers, the processor fan-out), a fifth of what a trivial
endpoint costs uvicorn and FastAPI together. When beacon-otel's encoded processor is the only
processor of the tracer provider, nothing else ever sees the span, so the instrumentation (the
ASGI middleware, the httpx transports) keeps its attributes (which it built, and which are
valid) in a plain dict and hands the finished span to the encoder itself.

It is still a real, recording span for everything that runs inside it: child spans
take their parent from it, log lines their ids, warnings become its events, and the app can set
attributes and status on it. The sampler, id generator, resource, scope and span limits are the
tracer's own. Any other processor, a disabled tracer, the SDK's own span metrics, or an SDK
without the attributes read here send the instrumentation back to ``tracer.start_span``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import MappingProxyType, TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, SpanLimits
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from beacon_otel import _upstream
from beacon_otel.export.span_queue import EncodedBatchSpanProcessor
from beacon_otel.instrumentation.fast_path import say_why_not_direct, why_not_direct

_PRIMITIVES = (str, bool, int, float)
_VALUES = (str, bool, int, float, bytes)  # bytes too, kept as bytes, as the Python SDK does
_UNSET = Status(StatusCode.UNSET)
# Trace flags by (sampled, random trace id).
_FLAGS = {
    (sampled, random): TraceFlags(
        (TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        | (TraceFlags.RANDOM_TRACE_ID if random else TraceFlags.DEFAULT)
    )
    for sampled in (False, True)
    for random in (False, True)
}


def valid_attribute_value(value: object) -> bool:
    """An attribute value the OpenTelemetry spec allows: a primitive, or a homogeneous
    sequence of one primitive type (None allowed in between)."""
    if isinstance(value, _VALUES):
        return True
    if not isinstance(value, Sequence) or isinstance(value, bytearray):
        return False
    kinds = {type(item) for item in value if item is not None}
    if len(kinds) > 1:
        return False
    return not kinds or next(iter(kinds)) in _PRIMITIVES


def _stored(value: AttributeValue, limit: int | None) -> AttributeValue:
    """The value as the span keeps it: sequences copied (the caller may change theirs later),
    strings cut to the length limit."""
    if isinstance(value, str):
        return value if limit is None else value[:limit]
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        if limit is None:
            return tuple(value)
        return tuple(item[:limit] if isinstance(item, str) else item for item in value)
    return value


class DirectSpan(trace.Span):
    """A recording span read by the encoder as it reads an SDK ``ReadableSpan``.

    One request owns it; like the task that runs the request, it is not shared between threads
    while it is written to, so it takes no lock.
    """

    __slots__ = (
        "_attributes",
        "_events",
        "_limits",
        "_links",
        "_on_end",
        "context",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_time",
        "instrumentation_scope",
        "kind",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        route: DirectRoute,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.resource = route.tracer.resource
        self.instrumentation_scope = route.scope
        self.start_time = time_ns()
        self.end_time: int | None = None
        self.status = _UNSET
        self.dropped_attributes = self.dropped_events = self.dropped_links = 0
        self._limits = route.limits
        self._attributes = attributes
        self._events: list[Event] = []
        self._links: list[Link] = []
        self._on_end = route.on_end
        limit = self._limits.max_span_attributes
        if self._limits.max_span_attribute_length is not None or (
            limit is not None and len(attributes) > limit
        ):
            self._attributes = {}
            self.set_attributes(attributes)

    # -- what the encoder reads ----------------------------------------------------------------

    @property
    def attributes(self) -> Mapping[str, Any]:
        # A copy (one C-level step under the GIL): a thread that still writes to the span while
        # it is encoded cannot change the dict under the encoder's feet.
        return MappingProxyType(dict(self._attributes))

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(self._events)

    @property
    def links(self) -> tuple[Link, ...]:
        return tuple(self._links)

    # -- the Span API ---------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self.end_time is not None or not key or not isinstance(key, str):
            return
        if not valid_attribute_value(value):
            return
        if key not in self._attributes:
            limit = self._limits.max_span_attributes
            if limit is not None and len(self._attributes) >= limit:
                self.dropped_attributes += 1
                return
        self._attributes[key] = _stored(value, self._limits.max_span_attribute_length)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp: int | None = None,
    ) -> None:
        if self.end_time is not None:
            return
        limit = self._limits.max_events
        if limit is not None and len(self._events) >= limit:
            self.dropped_events += 1
            return
        bounded = self._bounded(self._limits.max_event_attributes, attributes)
        self._events.append(Event(name, bounded, timestamp if timestamp is not None else time_ns()))

    def add_link(self, context: SpanContext, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        if self.end_time is not None or context is None:
            return
        if not (context.is_valid or attributes or context.trace_state):
            return  # nothing to link to or say (the SDK's rule)
        limit = self._limits.max_links
        if limit is not None and len(self._links) >= limit:
            self.dropped_links += 1
            return
        self._links.append(Link(context, self._bounded(self._limits.max_link_attributes, attributes)))

    def _bounded(
        self, limit: int | None, attributes: Mapping[str, AttributeValue] | None
    ) -> BoundedAttributes:
        """An event's or link's attributes, validated and limited as the SDK does."""
        return BoundedAttributes(
            limit, attributes, immutable=True, max_value_len=self._limits.max_attribute_length
        )

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # OK is final; UNSET never overrides (the SDK's rules).
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if isinstance(status, Status) and status.status_code is not StatusCode.UNSET:
            self.status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, AttributeValue] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        cls = type(exception)
        module = cls.__module__
        name = cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"
        stacktrace = traceback.format_exception(cls, exception, exception.__traceback__)
        event_attributes: dict[str, AttributeValue] = {
            "exception.type": name,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(stacktrace),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event_attributes.update(attributes)
        self.add_event("exception", event_attributes, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time if end_time is not None else time_ns()
        self._on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.end()

    def __repr__(self) -> str:
        return f"DirectSpan(name={self.name!r}, context={self.context!r})"


class DirectRoute:
    """What direct spans of one tracer need: its scope and limits, and the processor's
    ``put_finished``, which encodes and queues a finished span (a DirectSpan reads as a
    ReadableSpan)."""

    __slots__ = ("is_enabled", "limits", "on_end", "scope", "tracer")

    def __init__(
        self,
        tracer: SdkTracer,
        internals: tuple[InstrumentationScope, SpanLimits, Callable[[], bool]],
        processor: EncodedBatchSpanProcessor,
    ) -> None:
        self.tracer = tracer
        self.scope, self.limits, self.is_enabled = internals
        self.on_end: Callable[[DirectSpan], None] = processor.put_finished  # type: ignore[assignment]


class DirectSpanStarter:
    """Starts an instrumentation's spans of one kind: direct when nothing but the encoded
    processor would see them, through the tracer otherwise (checked at each start: a processor
    can be added at any time)."""

    def __init__(self, tracer: trace.Tracer, kind: SpanKind = SpanKind.SERVER) -> None:
        self._tracer = tracer
        self._kind = kind
        self._seen_processors: object = None
        self._route: DirectRoute | None = None

    def start(self, name: str, parent: Context | None, attributes: dict[str, Any]) -> trace.Span:
        tracer = self._tracer
        route = self._direct_route(tracer)
        if route is None:
            return tracer.start_span(
                name,
                context=parent,
                kind=self._kind,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            )
        tracer = route.tracer
        parent_context: SpanContext | None = trace.get_current_span(parent).get_span_context()
        if parent_context is None or not parent_context.is_valid:
            parent_context = None
            trace_id = tracer.id_generator.generate_trace_id()
            random_trace_id = tracer.id_generator.is_trace_id_random()
        else:
            trace_id = parent_context.trace_id
            random_trace_id = parent_context.trace_flags.random_trace_id
        if tracer.sampler is DEFAULT_ON:
            # The default sampler's verdict, without the call: a root is sampled, a child
            # follows its parent, the attributes are the span's own, the trace state the parent's.
            sampled = parent_context is None or parent_context.trace_flags.sampled
            recording = sampled
            trace_state = None if parent_context is None else parent_context.trace_state
        else:
            sampling = tracer.sampler.should_sample(parent, trace_id, name, self._kind, attributes, ())
            sampled = sampling.decision is Decision.RECORD_AND_SAMPLE
            recording = sampled or sampling.decision is Decision.RECORD_ONLY
            trace_state = sampling.trace_state
            # The sampler hands back the attributes the span starts with (its own added, if any).
            attributes = dict(sampling.attributes)
        span_context = SpanContext(
            trace_id,
            tracer.id_generator.generate_span_id(),
            is_remote=False,
            trace_flags=_FLAGS[sampled, random_trace_id],
            trace_state=trace_state,
        )
        if not recording:
            return trace.NonRecordingSpan(span_context)
        return DirectSpan(name, span_context, parent_context, self._kind, attributes, route)

    def _direct_route(self, tracer: trace.Tracer) -> DirectRoute | None:
        if not isinstance(tracer, SdkTracer):
            return None
        processors = _upstream.tracer_span_processors(tracer)
        if processors is not self._seen_processors:
            self._seen_processors = processors
            self._route = direct_route(tracer, processors)
            if self._route is None:
                say_why_not_direct(tracer, processors)
        route = self._route
        if route is None or not route.is_enabled():
            return None
        return route


def direct_route(tracer: SdkTracer, processors: tuple[Any, ...] | None) -> DirectRoute | None:
    """The route for direct spans, when the encoded processor is the tracer's only processor
    and does not hook span ending, the SDK's own span metrics are off, and the tracer has
    everything a direct span reads; None otherwise (see :func:`why_not_direct`)."""
    if why_not_direct(tracer, processors) is not None:
        return None
    internals = _upstream.tracer_internals(tracer)
    assert internals is not None and processors is not None  # checked by why_not_direct
    return DirectRoute(tracer, internals, processors[0])
