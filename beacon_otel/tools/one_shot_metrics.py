"""Metrics for a command that records once and exits: exported when asked, exactly once.

The SDK's periodic reader exports again at shutdown, so a command that flushes its metrics and
then exits sends the same cumulative points twice (two requests; the console block printed
twice). This reader exports only when collected, and its shutdown closes the exporter without
another collection.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, MetricsData
from opentelemetry.sdk.resources import Resource

from beacon_otel import _upstream


class OneShotMetricReader(_upstream.ReceivingMetricReader):
    """Hands each collection to one exporter, with that exporter's temporality and aggregation."""

    def __init__(self, exporter: MetricExporter) -> None:
        temporality, aggregation = _upstream.metric_exporter_preferences(exporter)
        super().__init__(preferred_temporality=temporality, preferred_aggregation=aggregation)
        self._exporter = exporter

    def receive(self, metrics_data: MetricsData, timeout_millis: float) -> None:
        self._exporter.export(metrics_data, timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._exporter.shutdown(timeout_millis=timeout_millis)


def one_shot_meter_provider(resource: Resource, exporters: list[MetricExporter]) -> MeterProvider:
    """A meter provider whose ``force_flush`` is the one and only export of each exporter."""
    readers: list[MetricReader] = [OneShotMetricReader(exporter) for exporter in exporters]
    return MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
