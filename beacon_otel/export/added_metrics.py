"""A metric exporter that adds metrics aggregated outside the SDK to every export it passes on.

beacon-otel's HTTP request durations are aggregated by the instrumentations themselves
(:mod:`beacon_otel.instrumentation.http_aggregation`), not by the SDK's meter provider, so the
SDK's readers never see them. Wrapped around each metrics exporter, :class:`WithHttpMetrics`
collects them at each export, with the temporality that exporter asks for, and puts them beside
the SDK's metrics of the same resource and scope. It knows the aggregation only as a
:class:`MetricSource`: the SDK wiring hands it over, so this package needs nothing from the
instrumentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from beacon_otel import _upstream


class MetricSource(Protocol):
    """Metrics aggregated outside the SDK: one sink (what has not been sent yet) per exporter."""

    @property
    def resource(self) -> Resource: ...

    def add_sink(self, temporality: AggregationTemporality) -> Any: ...

    def collect(self, sink: Any) -> list[tuple[InstrumentationScope, Metric]]: ...


class WithHttpMetrics(MetricExporter):
    """Adds the request-duration histograms to every export of the exporter it wraps."""

    def __init__(self, exporter: MetricExporter, metrics: MetricSource) -> None:
        temporality, aggregation = _upstream.metric_exporter_preferences(exporter)
        super().__init__(preferred_temporality=temporality, preferred_aggregation=aggregation)
        self.exporter = exporter
        self._metrics = metrics
        preferred = temporality or {}
        self._sink = metrics.add_sink(preferred.get(SdkHistogram, AggregationTemporality.CUMULATIVE))

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
