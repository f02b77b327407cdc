"""Whether spans can skip the SDK's span object, and why not when they cannot.

Direct spans (:mod:`beacon_otel.instrumentation.direct_span`) cost about half of an SDK span;
they are only possible while beacon-otel's encoded processor is the tracer's one processor and
the tracer is one whose fields beacon-otel knows. When that stops being true the spans quietly
take the SDK's path; this module says so, once per reason, at start and when it happens, and
gives ``doctor`` the same words. It imports little, so start-up can ask without loading the
direct spans themselves.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import Tracer as SdkTracer

from beacon_otel import _upstream
from beacon_otel.export.span_queue import EncodedBatchSpanProcessor

__all__ = ["say_why_not_direct", "why_not_direct"]

_told: set[str] = set()


def say_why_not_direct(tracer: SdkTracer, processors: tuple[Any, ...] | None) -> None:
    """One line per process and reason when the fast path turns off: it costs CPU per span,
    and nothing else would show it."""
    if processors == ():
        return  # no span is exported at all (OTEL_TRACES_EXPORTER=none): no cost to speak of
    reason = why_not_direct(tracer, processors)
    if reason is None or reason in _told:
        return
    _told.add(reason)
    from beacon_otel.export.reporting import tell

    tell("beacon-otel: spans take the SDK's slower path (direct spans are off): %s", reason)


def why_not_direct(tracer: object, processors: tuple[Any, ...] | None) -> str | None:
    """Why spans of this tracer cannot skip the SDK's span object (None when they can): said
    by ``doctor`` and at start, since the fast path turning off is a 2-4x cost per span."""
    if not isinstance(tracer, SdkTracer):
        return f"the tracer is a {type(tracer).__module__}.{type(tracer).__qualname__}, not the SDK's"
    if processors is None:
        return "the SDK's span processors cannot be read (an SDK version beacon-otel does not know)"
    others = [type(p).__qualname__ for p in processors if not isinstance(p, EncodedBatchSpanProcessor)]
    if others and len(others) == len(processors):
        return "the span processor is not beacon-otel's encoded one: " + ", ".join(others)
    if others:
        return "another span processor is registered: " + ", ".join(others)
    if not processors:
        return "no span processor is registered"
    if len(processors) > 1:
        return "more than one encoded span processor is registered"
    if _upstream.hooks_span_ending(processors[0]):
        return f"the span processor {type(processors[0]).__qualname__} hooks span ending"
    if _upstream.tracer_internals(tracer) is None:
        return "the tracer records the SDK's span metrics, or lacks a field direct spans read"
    return None
