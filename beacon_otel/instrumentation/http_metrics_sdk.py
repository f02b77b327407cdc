"""The HTTP request durations through the SDK's histograms: the fallback when beacon-otel did not
build the global meter provider (an app that set up its own), so its aggregation cannot reach
that provider's exporters.

Each duration is recorded in the context of the request's own span, so that the meter provider's
exemplar filter sees the span the duration belongs to, as it would if the span were still current.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.trace import Span

from beacon_otel.instrumentation.http_series import (
    CLIENT_DURATION_DESCRIPTION,
    CLIENT_DURATION_NAME,
    DURATION_BUCKETS,
    DURATION_DESCRIPTION,
    DURATION_NAME,
    ClientSeriesKey,
    SeriesKey,
    client_series_attributes,
    series_attributes,
)


def _sdk_duration(meter: Meter, name: str, description: str) -> Histogram:
    return meter.create_histogram(
        name, unit="s", description=description, explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS)
    )


def _in_span(span: Span | None) -> Context | None:
    """The context the duration is measured in: the span's, or the current one without a span."""
    return None if span is None else trace.set_span_in_context(span)


class SdkServerMetrics:
    """Through the SDK's instruments: for a meter provider beacon-otel did not build."""

    def __init__(self, meter: Meter) -> None:
        self._duration = _sdk_duration(meter, DURATION_NAME, DURATION_DESCRIPTION)

    def request_started(self, method: str, scheme: str) -> None:
        return None

    def request_ended(self, seconds: float, key: SeriesKey, span: Span | None = None) -> None:
        self._duration.record(seconds, series_attributes(key), context=_in_span(span))


class SdkClientMetrics:
    """Through the SDK's histogram: for a meter provider beacon-otel did not build."""

    def __init__(self, meter: Meter) -> None:
        self._duration = _sdk_duration(meter, CLIENT_DURATION_NAME, CLIENT_DURATION_DESCRIPTION)

    def client_request_started(self, method: str, address: str, port: int | None) -> None:
        return None

    def client_request_ended(self, seconds: float, key: ClientSeriesKey, span: Span | None = None) -> None:
        self._duration.record(seconds, client_series_attributes(key), context=_in_span(span))
