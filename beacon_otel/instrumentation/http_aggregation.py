"""HTTP request durations (server and client), aggregated where they are measured.

Why: the SDK's ``Histogram.record`` costs about ten times this aggregation per request
(docs/benchmarks.md, "In process": a measurement object, the current context, the exemplar
filter, attributes copied and hashed by a generic recursive function, two locks), a sizeable
part of what a trivial endpoint costs uvicorn and FastAPI together. The instrumentations'
attributes come from a small, known set, so here a series is found with one tuple look-up and
counted under one lock. At each collection the
series are handed over as ordinary histogram points, with the temporality each exporter asks
for (:mod:`beacon_otel.export.added_metrics` adds them to the exports).

As the SDK's histograms do, each series keeps exemplars (:mod:`~beacon_otel.instrumentation.exemplars`)
and each exporter's table holds at most :data:`DEFAULT_SERIES_LIMIT` points: the OpenTelemetry
cardinality limit. Once an exporter's table is full, durations of a new attribute set count in
one overflow point, attributed ``otel.metric.overflow=true``, so that totals stay right while
memory stays bounded; the series already there keep counting. A delta exporter's table starts
empty each interval, a cumulative one's lasts as long as the process.

``http.server.active_requests`` and ``http.client.active_requests`` are observable up-down
counters of the SDK's: they are cheap to keep (two dict updates per request), and since each
has a point once a request has been served or sent, every collection that has durations to
report reaches the exporters, which is where the histograms join in.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from time import time_ns
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Exemplar, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, HistogramDataPoint, Metric
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Span

from beacon_otel.instrumentation.exemplars import (
    DEFAULT_EXEMPLAR_FILTER,
    ExemplarFilterName,
    exemplar_sampler,
)
from beacon_otel.instrumentation.http_series import (
    CLIENT_DURATION_DESCRIPTION,
    CLIENT_DURATION_NAME,
    CLIENT_SCOPE_NAME,
    DURATION_BUCKETS,
    DURATION_DESCRIPTION,
    DURATION_NAME,
    SCOPE_NAME,
    ClientSeriesKey,
    SeriesKey,
    client_series_attributes,
    series_attributes,
)

# The OpenTelemetry SDKs' default cardinality limit: points per metric stream and exporter,
# the overflow point included.
DEFAULT_SERIES_LIMIT = 2000
OVERFLOW_ATTRIBUTES: dict[str, Any] = {"otel.metric.overflow": True}
_OVERFLOW = ("otel.metric.overflow",)  # the overflow series' key: no SeriesKey has one element

_SERVER, _CLIENT = 0, 1
_ATTRIBUTES: tuple[Callable[[Any], dict[str, Any]], Callable[[Any], dict[str, Any]]] = (
    series_attributes,
    client_series_attributes,
)


class _Series:
    __slots__ = ("attributes", "buckets", "count", "exemplars", "max", "min", "sum")

    def __init__(self, attributes: dict[str, Any], bucket_count: int) -> None:
        self.attributes = attributes
        self.buckets = [0] * bucket_count
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        # Per bucket, the kept measurement of this interval (see exemplars.Kept); on the overflow
        # series, the measurement's series key follows. None until the first one is kept.
        self.exemplars: list[tuple[Any, ...] | None] | None = None


class _Sink:
    """The series one exporter has not been sent yet (delta) or since the start (cumulative):
    one table per histogram (server, client)."""

    __slots__ = ("series", "start_ns", "temporality")

    def __init__(self, temporality: AggregationTemporality) -> None:
        self.temporality = temporality
        self.series: tuple[dict[Any, _Series], dict[Any, _Series]] = ({}, {})
        self.start_ns = time_ns()


class FastHttpMetrics:
    """The request-duration histograms and active-request counts of this process."""

    def __init__(
        self,
        resource: Resource,
        scope: InstrumentationScope,
        client_scope: InstrumentationScope | None = None,
        *,
        exemplar_filter: ExemplarFilterName = DEFAULT_EXEMPLAR_FILTER,
        series_limit: int = DEFAULT_SERIES_LIMIT,
    ) -> None:
        if series_limit < 1:
            raise ValueError(f"series_limit must be 1 or more, not {series_limit}")
        self.resource = resource
        self.scope = scope
        self.client_scope = client_scope or InstrumentationScope(CLIENT_SCOPE_NAME, scope.version)
        self._bounds = DURATION_BUCKETS
        self._series_limit = series_limit
        self._sample = exemplar_sampler(exemplar_filter)
        self._lock = threading.Lock()
        self._sinks: list[_Sink] = []
        self._active: dict[tuple[str, str], int] = {}
        self._client_active: dict[tuple[str, str, int | None], int] = {}
        os.register_at_fork(after_in_child=self._forget_parent)

    def _forget_parent(self) -> None:
        """A forked worker starts from zero: the parent's requests are the parent's to report."""
        self._lock = threading.Lock()
        self._active = {}
        self._client_active = {}
        for sink in self._sinks:
            sink.series = ({}, {})
            sink.start_ns = time_ns()

    # -- the instrumentations' side -------------------------------------------------------------

    def request_started(self, method: str, scheme: str) -> None:
        key = (method, scheme)
        with self._lock:
            self._active[key] = self._active.get(key, 0) + 1

    def request_ended(self, seconds: float, key: SeriesKey, span: Span | None = None) -> None:
        """One served request; ``span`` is the request's own, for the exemplar."""
        bucket = bisect_left(self._bounds, seconds)  # buckets include their upper bound
        sample = self._sample
        kept = None if sample is None else sample(seconds, span)
        active_key = key[:2]  # (method, scheme)
        with self._lock:
            self._active[active_key] = self._active.get(active_key, 1) - 1
            self._count(_SERVER, key, seconds, bucket, kept)

    def client_request_started(self, method: str, address: str, port: int | None) -> None:
        key = (method, address, port)
        with self._lock:
            self._client_active[key] = self._client_active.get(key, 0) + 1

    def client_request_ended(self, seconds: float, key: ClientSeriesKey, span: Span | None = None) -> None:
        """One sent request; ``span`` is its client span, for the exemplar."""
        bucket = bisect_left(self._bounds, seconds)
        sample = self._sample
        kept = None if sample is None else sample(seconds, span)
        active_key = key[:3]
        with self._lock:
            self._client_active[active_key] = self._client_active.get(active_key, 1) - 1
            self._count(_CLIENT, key, seconds, bucket, kept)

    def _count(
        self, histogram: int, key: Any, seconds: float, bucket: int, kept: tuple[Any, ...] | None
    ) -> None:
        """Count one duration in every sink (the caller holds the lock)."""
        for sink in self._sinks:
            table = sink.series[histogram]
            series = table.get(key)
            exemplar = kept
            if series is None:
                series, overflowed = self._admit(table, histogram, key)
                if overflowed and exemplar is not None:
                    exemplar = (*exemplar, key)  # its attributes are no longer the point's
            series.buckets[bucket] += 1
            series.count += 1
            series.sum += seconds
            if seconds < series.min:
                series.min = seconds
            if seconds > series.max:
                series.max = seconds
            if exemplar is not None:
                exemplars = series.exemplars
                if exemplars is None:
                    exemplars = series.exemplars = [None] * len(series.buckets)
                exemplars[bucket] = exemplar  # the last of the interval wins, as in the SDK

    def _admit(self, table: dict[Any, _Series], histogram: int, key: Any) -> tuple[_Series, bool]:
        """A new series for ``key``, or the overflow series when the table is full (True)."""
        overflow = table.get(_OVERFLOW)
        if len(table) - (overflow is not None) < self._series_limit - 1:
            series = table[key] = _Series(_ATTRIBUTES[histogram](key), len(self._bounds) + 1)
            return series, False
        if overflow is None:
            overflow = table[_OVERFLOW] = _Series(dict(OVERFLOW_ATTRIBUTES), len(self._bounds) + 1)
        return overflow, True

    # -- the exporters' side --------------------------------------------------------------------

    def observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            active = list(self._active.items())
        return [
            Observation(count, {"http.request.method": method, "url.scheme": scheme})
            for (method, scheme), count in active
        ]

    def observe_client_active(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            active = list(self._client_active.items())
        return [
            Observation(count, client_series_attributes((method, address, port, 0, None)))
            for (method, address, port), count in active
        ]

    def register_active_requests(self, meter_provider: MeterProvider, version: str) -> None:
        """``http.server.active_requests``."""
        meter_provider.get_meter(SCOPE_NAME, version).create_observable_up_down_counter(
            "http.server.active_requests",
            callbacks=[self.observe_active],
            unit="{request}",
            description="Number of active HTTP server requests.",
        )

    def register_client_active_requests(self, meter_provider: MeterProvider, version: str) -> None:
        """``http.client.active_requests``: besides its own worth, a point in every collection
        once the client has sent a request, so that the client durations reach the exporters."""
        meter_provider.get_meter(CLIENT_SCOPE_NAME, version).create_observable_up_down_counter(
            "http.client.active_requests",
            callbacks=[self.observe_client_active],
            unit="{request}",
            description="Number of active HTTP client requests.",
        )

    def add_sink(self, temporality: AggregationTemporality) -> _Sink:
        sink = _Sink(temporality)
        with self._lock:
            self._sinks.append(sink)
        return sink

    def collect(self, sink: _Sink) -> list[tuple[InstrumentationScope, Metric]]:
        """The histograms for one exporter, by scope; a delta sink starts a new interval, and
        every sink starts without exemplars."""
        now = time_ns()
        with self._lock:
            start = sink.start_ns
            tables = [[_taken(series) for series in table.values()] for table in sink.series]
            if sink.temporality is AggregationTemporality.DELTA:
                sink.series = ({}, {})
                sink.start_ns = now
        described = (
            (self.scope, DURATION_NAME, DURATION_DESCRIPTION, series_attributes),
            (self.client_scope, CLIENT_DURATION_NAME, CLIENT_DURATION_DESCRIPTION, client_series_attributes),
        )
        metrics: list[tuple[InstrumentationScope, Metric]] = []
        for (scope, name, description, attributes_of), points in zip(described, tables, strict=True):
            if not points:
                continue
            data_points = [
                HistogramDataPoint(
                    attributes=attributes,
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=count,
                    sum=total,
                    bucket_counts=buckets,
                    explicit_bounds=self._bounds,
                    min=low,
                    max=high,
                    exemplars=_exemplars(kept, attributes_of),
                )
                for attributes, buckets, count, total, low, high, kept in points
            ]
            histogram = HistogramData(data_points=data_points, aggregation_temporality=sink.temporality)
            metrics.append((scope, Metric(name=name, description=description, unit="s", data=histogram)))
        return metrics


def _taken(series: _Series) -> tuple[Any, ...]:
    """A series' figures for one export, its exemplars taken out of it (the caller holds the lock)."""
    kept, series.exemplars = series.exemplars, None
    return (
        series.attributes,
        tuple(series.buckets),
        series.count,
        series.sum,
        series.min,
        series.max,
        kept,
    )


def _exemplars(
    kept: list[tuple[Any, ...] | None] | None, attributes_of: Callable[[Any], dict[str, Any]]
) -> list[Exemplar]:
    """The SDK's exemplars, in bucket order. Their filtered attributes are the measurement's that
    the point lacks: none on an ordinary series (the same attributes), all of them on the
    overflow series."""
    if kept is None:
        return []
    return [
        Exemplar(
            attributes_of(entry[4]) if len(entry) > 4 else {},
            entry[0],
            entry[1],
            entry[2],
            entry[3],
        )
        for entry in kept
        if entry is not None
    ]
