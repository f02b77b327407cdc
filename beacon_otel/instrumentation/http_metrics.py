"""HTTP request durations (server and client), aggregated where they are measured.

Why: on the demo router, the SDK's ``Histogram.record`` costs about 8 µs per request (a
measurement object, the current context, the exemplar filter, attributes copied and hashed by a
generic recursive function, two locks), a tenth of what a trivial endpoint costs uvicorn and
FastAPI together. The instrumentations' attributes come from a small, known set, so here a
series is found with one tuple look-up and counted under one lock. At each collection the
series are handed to the metrics exporters as ordinary OTLP histograms, with the temporality
each exporter asks for.

``http.server.active_requests`` and ``http.client.active_requests`` are observable up-down
counters of the SDK's: they are cheap to keep (two dict updates per request), and since each
has a point once a request has been served or sent, every collection that has durations to
report reaches the exporters, which is where the histograms join in.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from time import time_ns
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

SCOPE_NAME = "beacon_otel.instrumentation.asgi"
CLIENT_SCOPE_NAME = "beacon_otel.instrumentation.httpx"
DURATION_NAME = "http.server.request.duration"
DURATION_DESCRIPTION = "Duration of HTTP server requests."
CLIENT_DURATION_NAME = "http.client.request.duration"
CLIENT_DURATION_DESCRIPTION = "Duration of HTTP client requests."
# Semantic-convention bucket boundaries for both durations (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

# (http.request.method, url.scheme, http.route, http.response.status_code, error.type)
SeriesKey = tuple[str, str, str | None, int, str | None]
# (http.request.method, server.address, server.port, http.response.status_code, error.type)
ClientSeriesKey = tuple[str, str, int | None, int, str | None]


def _with_outcome(attributes: dict[str, Any], status: int, error_type: str | None) -> dict[str, Any]:
    if status:
        attributes["http.response.status_code"] = status
    if error_type:
        attributes["error.type"] = error_type
    return attributes


def series_attributes(key: SeriesKey) -> dict[str, Any]:
    method, scheme, route, status, error_type = key
    attributes: dict[str, Any] = {"http.request.method": method, "url.scheme": scheme}
    if route:
        attributes["http.route"] = route
    return _with_outcome(attributes, status, error_type)


def client_series_attributes(key: ClientSeriesKey) -> dict[str, Any]:
    method, address, port, status, error_type = key
    attributes: dict[str, Any] = {"http.request.method": method, "server.address": address}
    if port:
        attributes["server.port"] = port
    return _with_outcome(attributes, status, error_type)


def _sdk_duration(meter: Meter, name: str, description: str) -> Histogram:
    return meter.create_histogram(
        name, unit="s", description=description, explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS)
    )


class ServerMetrics(Protocol):
    """What the server-span middleware reports about each request."""

    def request_started(self, method: str, scheme: str) -> None: ...

    def request_ended(self, seconds: float, key: SeriesKey) -> None: ...


class SdkServerMetrics:
    """Through the SDK's instruments: for a meter provider beacon-otel did not build."""

    def __init__(self, meter: Meter) -> None:
        self._duration = _sdk_duration(meter, DURATION_NAME, DURATION_DESCRIPTION)

    def request_started(self, method: str, scheme: str) -> None:
        return None

    def request_ended(self, seconds: float, key: SeriesKey) -> None:
        self._duration.record(seconds, series_attributes(key))


class ClientMetrics(Protocol):
    """What the httpx instrumentation reports about each request it sent."""

    def client_request_started(self, method: str, address: str, port: int | None) -> None: ...

    def client_request_ended(self, seconds: float, key: ClientSeriesKey) -> None: ...


class SdkClientMetrics:
    """Through the SDK's histogram: for a meter provider beacon-otel did not build."""

    def __init__(self, meter: Meter) -> None:
        self._duration = _sdk_duration(meter, CLIENT_DURATION_NAME, CLIENT_DURATION_DESCRIPTION)

    def client_request_started(self, method: str, address: str, port: int | None) -> None:
        return None

    def client_request_ended(self, seconds: float, key: ClientSeriesKey) -> None:
        self._duration.record(seconds, client_series_attributes(key))


class _Series:
    __slots__ = ("attributes", "buckets", "count", "max", "min", "sum")

    def __init__(self, attributes: dict[str, Any], bucket_count: int) -> None:
        self.attributes = attributes
        self.buckets = [0] * bucket_count
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")


_SERVER, _CLIENT = 0, 1


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
    ) -> None:
        self.resource = resource
        self.scope = scope
        self.client_scope = client_scope or InstrumentationScope(CLIENT_SCOPE_NAME, scope.version)
        self._bounds = DURATION_BUCKETS
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

    # -- the middleware's side ------------------------------------------------------------------

    def request_started(self, method: str, scheme: str) -> None:
        key = (method, scheme)
        with self._lock:
            self._active[key] = self._active.get(key, 0) + 1

    def request_ended(self, seconds: float, key: SeriesKey) -> None:
        bucket = bisect_left(self._bounds, seconds)  # buckets include their upper bound
        active_key = key[:2]  # (method, scheme)
        with self._lock:
            self._active[active_key] = self._active.get(active_key, 1) - 1
            self._count(_SERVER, key, seconds, bucket)

    def client_request_started(self, method: str, address: str, port: int | None) -> None:
        key = (method, address, port)
        with self._lock:
            self._client_active[key] = self._client_active.get(key, 0) + 1

    def client_request_ended(self, seconds: float, key: ClientSeriesKey) -> None:
        bucket = bisect_left(self._bounds, seconds)
        active_key = key[:3]
        with self._lock:
            self._client_active[active_key] = self._client_active.get(active_key, 1) - 1
            self._count(_CLIENT, key, seconds, bucket)

    def _count(self, histogram: int, key: Any, seconds: float, bucket: int) -> None:
        """Count one duration in every sink (the caller holds the lock)."""
        for sink in self._sinks:
            table = sink.series[histogram]
            series = table.get(key)
            if series is None:
                attributes = series_attributes(key) if histogram == _SERVER else client_series_attributes(key)
                series = table[key] = _Series(attributes, len(self._bounds) + 1)
            series.buckets[bucket] += 1
            series.count += 1
            series.sum += seconds
            if seconds < series.min:
                series.min = seconds
            if seconds > series.max:
                series.max = seconds

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
        """The histograms for one exporter, by scope; a delta sink starts a new interval."""
        now = time_ns()
        with self._lock:
            start = sink.start_ns
            tables = [
                [
                    (
                        series.attributes,
                        tuple(series.buckets),
                        series.count,
                        series.sum,
                        series.min,
                        series.max,
                    )
                    for series in table.values()
                ]
                for table in sink.series
            ]
            if sink.temporality is AggregationTemporality.DELTA:
                sink.series = ({}, {})
                sink.start_ns = now
        described = (
            (self.scope, DURATION_NAME, DURATION_DESCRIPTION),
            (self.client_scope, CLIENT_DURATION_NAME, CLIENT_DURATION_DESCRIPTION),
        )
        metrics: list[tuple[InstrumentationScope, Metric]] = []
        for (scope, name, description), points in zip(described, tables, strict=True):
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
                )
                for attributes, buckets, count, total, low, high in points
            ]
            histogram = HistogramData(data_points=data_points, aggregation_temporality=sink.temporality)
            metrics.append((scope, Metric(name=name, description=description, unit="s", data=histogram)))
        return metrics


class WithHttpMetrics(MetricExporter):
    """Adds the request-duration histograms to every export of the exporter it wraps."""

    def __init__(self, exporter: MetricExporter, metrics: FastHttpMetrics) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self.exporter = exporter
        self._metrics = metrics
        preferred = exporter._preferred_temporality or {}
        temporality = preferred.get(SdkHistogram, AggregationTemporality.CUMULATIVE)
        self._sink = metrics.add_sink(temporality)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        for scope, metric in self._metrics.collect(self._sink):
            metrics_data = _with_metric(metrics_data, self._metrics.resource, scope, metric)
        return self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)


def _with_metric(
    data: MetricsData, resource: Resource, scope: InstrumentationScope, metric: Metric
) -> MetricsData:
    """``data`` with ``metric`` added to ``scope``'s metrics of ``resource``."""
    resource_metrics: list[ResourceMetrics] = []
    added = False
    for entry in data.resource_metrics:
        if not added and entry.resource == resource:
            entry = ResourceMetrics(
                entry.resource, _with_scope_metric(entry.scope_metrics, scope, metric), entry.schema_url
            )
            added = True
        resource_metrics.append(entry)
    if not added:
        resource_metrics.append(ResourceMetrics(resource, [ScopeMetrics(scope, [metric], "")], ""))
    return MetricsData(resource_metrics=resource_metrics)


def _with_scope_metric(
    scope_metrics: Sequence[ScopeMetrics], scope: InstrumentationScope, metric: Metric
) -> list[ScopeMetrics]:
    result: list[ScopeMetrics] = []
    added = False
    for entry in scope_metrics:
        if not added and entry.scope == scope:
            entry = ScopeMetrics(entry.scope, [*entry.metrics, metric], entry.schema_url)
            added = True
        result.append(entry)
    if not added:
        result.append(ScopeMetrics(scope, [metric], ""))
    return result


_installed: tuple[FastHttpMetrics, MeterProvider] | None = None


def install(fast: FastHttpMetrics, meter_provider: MeterProvider) -> None:
    """Make ``fast`` the HTTP metrics of what is instrumented from now on, for as long as
    ``meter_provider`` is the global one."""
    global _installed
    _installed = (fast, meter_provider)


def server_metrics(version: str) -> ServerMetrics:
    """The fast aggregation when beacon-otel built the global meter provider, the SDK's
    instruments otherwise."""
    fast = installed_http_metrics()
    return fast if fast is not None else SdkServerMetrics(metrics.get_meter(SCOPE_NAME, version))


def installed_http_metrics() -> FastHttpMetrics | None:
    """The fast aggregation, when beacon-otel built the global meter provider."""
    if _installed is not None and metrics.get_meter_provider() is _installed[1]:
        return _installed[0]
    return None


def client_metrics(version: str) -> ClientMetrics:
    """Like :func:`server_metrics`, for the httpx instrumentation."""
    fast = installed_http_metrics()
    return fast if fast is not None else SdkClientMetrics(metrics.get_meter(CLIENT_SCOPE_NAME, version))
