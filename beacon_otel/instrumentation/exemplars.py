"""Which request durations become exemplars (``OTEL_METRICS_EXEMPLAR_FILTER``), and what an
exemplar keeps of one.

The filter has the SDK's meaning: ``trace_based`` (the default) keeps a duration measured under
a sampled span, ``always_on`` every duration, ``always_off`` none. The span that counts is the
request's own: the instrumentations hand it over with the duration, which costs nothing, where
asking the context for the current span would cost a look-up per request and, once the span has
ended and left the context, find its parent instead.

What is kept follows the SDK's reservoir for explicit-bucket histograms (its
``AlignedHistogramBucketExemplarReservoir``): per series and bucket, the last duration of the
collection interval, with the time it was measured and, under a valid span, that span's ids.
Each collection hands the kept ones over and starts empty, cumulative exporters included.
"""

from __future__ import annotations

from collections.abc import Callable
from time import time_ns

from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    TraceBasedExemplarFilter,
)
from opentelemetry.trace import Span

from beacon_otel.settings import DEFAULT_EXEMPLAR_FILTER, EXEMPLAR_FILTERS

__all__ = ["DEFAULT_EXEMPLAR_FILTER", "EXEMPLAR_FILTERS", "exemplar_sampler", "sdk_exemplar_filter"]

# A name from settings.EXEMPLAR_FILTERS, which reads and checks OTEL_METRICS_EXEMPLAR_FILTER.
ExemplarFilterName = str

# One kept measurement: (value, time_unix_nano, span_id, trace_id); no ids without a valid span.
Kept = tuple[float, int, int | None, int | None]
Sampler = Callable[[float, Span | None], Kept | None]


def sdk_exemplar_filter(name: ExemplarFilterName) -> ExemplarFilter:
    """The SDK's filter of that name, for the meter provider: the SDK's instruments (and the
    HTTP histograms when they fall back to them) then keep exemplars by the same rule."""
    if name == "always_on":
        return AlwaysOnExemplarFilter()
    if name == "always_off":
        return AlwaysOffExemplarFilter()
    return TraceBasedExemplarFilter()


def exemplar_sampler(name: ExemplarFilterName) -> Sampler | None:
    """What to keep of one measurement under the filter ``name``; None for ``always_off``, so that
    the aggregation skips the call altogether."""
    if name == "always_off":
        return None
    if name == "always_on":
        return _keep_any
    return _keep_sampled


def _keep_sampled(value: float, span: Span | None) -> Kept | None:
    if span is None:
        return None
    context = span.get_span_context()
    if not context.trace_flags.sampled or not context.is_valid:
        return None
    return (value, time_ns(), context.span_id, context.trace_id)


def _keep_any(value: float, span: Span | None) -> Kept:
    context = None if span is None else span.get_span_context()
    if context is None or not context.is_valid:
        return (value, time_ns(), None, None)
    return (value, time_ns(), context.span_id, context.trace_id)
