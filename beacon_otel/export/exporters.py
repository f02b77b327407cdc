"""Exporters for each signal, chosen from settings, safe across fork, quiet when failing.

Three things set these apart from wiring the upstream exporters directly:

* spans are encoded by :mod:`beacon_otel.export.span_encoding` (a few µs per span instead of
  ~30 µs), everything else (retries, TLS, compression, headers) is the upstream exporters';
* each real exporter is created in the process that first exports through it, so a gRPC
  channel or HTTP connection pool is never shared by a pre-fork server and its workers, and
  importing grpc is deferred until the first batch leaves (faster start-up);
* failures go to :class:`~beacon_otel.export.reporting.ExportReporter` (one line per interval).
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from beacon_otel import _upstream
from beacon_otel._upstream import LogRecordExporter, LogRecordExportResult, ReadableLogRecord
from beacon_otel.export import deadline
from beacon_otel.export.bounded_http import MAX_RESPONSE_BYTES, bound_http_exporter
from beacon_otel.export.log_encoding import LogBatchEncoder
from beacon_otel.export.reporting import ExportReporter, tell
from beacon_otel.export.span_encoding import SpanBatchEncoder
from beacon_otel.scrubbing import Scrubber
from beacon_otel.settings import OtlpSettings, Settings, Signal

E = TypeVar("E")


def _stop_retrying(exporter: object) -> None:
    """Make an upstream OTLP exporter give up after one attempt per export, within what is left
    of the shutdown deadline (over HTTP the bounded transport reads that deadline itself)."""
    _upstream.stop_retrying(exporter, deadline.remaining)


class _ProcessLocal(Generic[E]):
    """Holds one exporter per process, built on first use from a factory."""

    def __init__(self, factory: Callable[[], E]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._instance: E | None = None
        self._one_attempt = False

    def get(self) -> E:
        pid = os.getpid()
        instance = self._instance
        if instance is not None and self._pid == pid:
            return instance
        with self._lock:
            if self._instance is None or self._pid != pid:
                # After a fork the parent's exporter (and its sockets) are left untouched.
                self._instance = self._factory()
                self._pid = pid
                if self._one_attempt:
                    _stop_retrying(self._instance)
            return self._instance

    def one_attempt_per_export(self) -> None:
        """From now on (the process is exiting) each export is tried once, without backoff."""
        self._one_attempt = True
        existing = self.existing()
        if existing is not None:
            _stop_retrying(existing)

    def existing(self) -> E | None:
        return self._instance if self._pid == os.getpid() else None


class _PayloadSender:
    """What the span and log guards share: one fast OTLP exporter per process, sent encoded
    requests, failures reported (never raised: an exporter bug must not kill the export thread)."""

    signal: Signal
    success: object  # the delegate's result for an accepted request

    def __init__(self, destination: str, factory: Callable[[], Any], reporter: ExportReporter) -> None:
        self.destination = destination
        self._delegate: _ProcessLocal[Any] = _ProcessLocal(factory)
        self._reporter = reporter

    def export_payload(self, payload: bytes, count: int) -> bool:
        try:
            result = self._delegate.get().export_payload(payload, count)
        except Exception as error:
            self._reporter.failed(self.signal, self.destination, count, f"{type(error).__name__}: {error}")
            return False
        if result is self.success:
            self._reporter.succeeded(self.signal)
            return True
        self._reporter.failed(self.signal, self.destination, count)
        return False

    def shutdown(self) -> None:
        delegate = self._delegate.existing()
        if delegate is not None:
            delegate.shutdown()

    def one_attempt_per_export(self) -> None:
        self._delegate.one_attempt_per_export()


class ResilientSpanExporter(_PayloadSender, SpanExporter):
    """Wraps a fast OTLP span exporter: created per process, failures reported, never raises.

    It takes either span objects (``export``, the SpanExporter interface) or a request already
    encoded by :class:`~beacon_otel.export.span_queue.EncodedBatchSpanProcessor`
    (``export_payload``).
    """

    signal: Signal = "traces"
    success = SpanExportResult.SUCCESS

    def __init__(
        self,
        destination: str,
        factory: Callable[[], Any],
        reporter: ExportReporter,
        scrubber: Scrubber | None = None,
    ) -> None:
        super().__init__(destination, factory, reporter)
        self._encoder = SpanBatchEncoder(scrubber)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        accepted = self.export_payload(self._encoder.encode(spans), len(spans))
        return SpanExportResult.SUCCESS if accepted else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here


class ResilientLogExporter(_PayloadSender, LogRecordExporter):
    """The same guard as :class:`ResilientSpanExporter`, for log records: SDK records
    (``export``) or requests encoded by :mod:`beacon_otel.export.log_encoding` (``export_payload``)."""

    signal: Signal = "logs"
    success = LogRecordExportResult.SUCCESS

    def __init__(
        self,
        destination: str,
        factory: Callable[[], Any],
        reporter: ExportReporter,
        scrubber: Scrubber | None = None,
    ) -> None:
        super().__init__(destination, factory, reporter)
        self._encoder = LogBatchEncoder(scrubber=scrubber)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        payload = self._encoder.assemble(self._encoder.encode_sdk_record(record) for record in batch)
        accepted = self.export_payload(payload, len(batch))
        return LogRecordExportResult.SUCCESS if accepted else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here


class ResilientMetricExporter(MetricExporter):
    """The same guard for metrics; temporality is decided here, not by the lazy delegate."""

    def __init__(
        self,
        destination: str,
        factory: Callable[[], MetricExporter],
        reporter: ExportReporter,
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
    ) -> None:
        super().__init__(preferred_temporality=preferred_temporality)
        self.destination = destination
        self._delegate = _ProcessLocal(factory)
        self._reporter = reporter

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        points = sum(
            len(metric.data.data_points)
            for resource_metrics in metrics_data.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        )
        try:
            result = self._delegate.get().export(metrics_data, timeout_millis=timeout_millis)
        except Exception as error:
            self._reporter.failed("metrics", self.destination, points, f"{type(error).__name__}: {error}")
            return MetricExportResult.FAILURE
        if result is MetricExportResult.SUCCESS:
            self._reporter.succeeded("metrics")
        else:
            self._reporter.failed("metrics", self.destination, points)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        delegate = self._delegate.existing()
        return True if delegate is None else delegate.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        delegate = self._delegate.existing()
        if delegate is not None:
            delegate.shutdown(timeout_millis=timeout_millis)

    def one_attempt_per_export(self) -> None:
        self._delegate.one_attempt_per_export()


def describe(otlp: OtlpSettings) -> str:
    return f"{otlp.endpoint} ({otlp.protocol})"


def _grpc_compression(otlp: OtlpSettings) -> Any:
    from grpc import Compression

    return Compression.Gzip if otlp.compression == "gzip" else Compression.NoCompression


def _http_compression(otlp: OtlpSettings) -> Any:
    from opentelemetry.exporter.otlp.proto.http import Compression

    return Compression.Gzip if otlp.compression == "gzip" else Compression.NoCompression


# The exporters are imported lazily, by export threads. Two hazards come with that:
# - the threads of the three signals import at about the same moment, and two threads importing
#   requests/urllib3 (or grpc) at once can meet Python's import-deadlock avoidance, which hands
#   one of them a half-initialised module;
# - a pre-fork server (gunicorn) that forks while an export thread is half-way through an import
#   leaves its workers a half-initialised module in sys.modules for good.
# So imports happen one at a time, and a fork waits until the current one is complete.
_import_lock = threading.Lock()


def _renew_import_lock() -> None:
    global _import_lock
    _import_lock = threading.Lock()


os.register_at_fork(
    before=lambda: _import_lock.acquire(),
    after_in_parent=lambda: _import_lock.release(),
    after_in_child=_renew_import_lock,
)


def _otlp_exporter(otlp: OtlpSettings, grpc_class: str, http_class: str) -> Any:
    """Import (only now: grpc is slow to import) and build the exporter for the protocol."""
    module_name, _, class_name = (grpc_class if otlp.protocol == "grpc" else http_class).rpartition(".")
    with _import_lock:  # building one imports more (the HTTP exporters import requests)
        exporter_class = getattr(importlib.import_module(module_name), class_name)
        compression = _grpc_compression(otlp) if otlp.protocol == "grpc" else _http_compression(otlp)
        options: dict[str, Any] = {}
        if otlp.protocol == "grpc":
            # An OTLP answer is small: a larger one is refused by gRPC itself.
            options["channel_options"] = (("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),)
        exporter = exporter_class(
            endpoint=otlp.endpoint,
            headers=dict(otlp.headers),
            timeout=otlp.timeout_seconds,
            compression=compression,
            **options,
        )
        if otlp.protocol != "grpc":
            if not bound_http_exporter(exporter):
                tell(
                    "beacon-otel: %s keeps its transport elsewhere in this exporter version: its "
                    "answers are read without beacon-otel's size and time bound",
                    class_name,
                )
            # requests imports netrc (and shlex) during its first request; import them now, so
            # that a fork during that first request cannot leave their module locks held.
            importlib.import_module("netrc")
        return exporter


def otlp_span_exporter(otlp: OtlpSettings) -> Any:
    """The fast OTLP span exporter (it also takes pre-encoded requests)."""
    return _otlp_exporter(
        otlp,
        "beacon_otel.export.otlp_grpc.FastGrpcSpanExporter",
        "beacon_otel.export.otlp_http.FastHttpSpanExporter",
    )


def otlp_metric_exporter(otlp: OtlpSettings) -> MetricExporter:
    exporter: MetricExporter = _otlp_exporter(
        otlp,
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter.OTLPMetricExporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter.OTLPMetricExporter",
    )
    return exporter


def otlp_log_exporter(otlp: OtlpSettings) -> Any:
    """The fast OTLP log exporter (it takes pre-encoded requests)."""
    return _otlp_exporter(
        otlp,
        "beacon_otel.export.otlp_grpc.FastGrpcLogExporter",
        "beacon_otel.export.otlp_http.FastHttpLogExporter",
    )


def _temporality(settings: Settings) -> dict[type, AggregationTemporality]:
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )

    cumulative = AggregationTemporality.CUMULATIVE
    delta = AggregationTemporality.DELTA
    if settings.metrics_temporality == "cumulative":
        return {}
    monotonic = delta
    histogram = delta
    observable_counter = delta if settings.metrics_temporality == "delta" else cumulative
    return {
        Counter: monotonic,
        UpDownCounter: cumulative,
        Histogram: histogram,
        ObservableCounter: observable_counter,
        ObservableUpDownCounter: cumulative,
        ObservableGauge: cumulative,
    }


def span_exporters(settings: Settings, reporter: ExportReporter, scrubber: Scrubber) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in settings.exporters["traces"]:
        if name == "otlp":
            otlp = settings.otlp_for("traces")
            exporters.append(
                ResilientSpanExporter(
                    describe(otlp), functools.partial(otlp_span_exporter, otlp), reporter, scrubber
                )
            )
        elif name == "console":
            from beacon_otel.export.console import console_span_exporter

            exporters.append(console_span_exporter(scrubber, settings.log_format))
    return exporters


def metric_exporters(settings: Settings, reporter: ExportReporter) -> list[MetricExporter]:
    exporters: list[MetricExporter] = []
    for name in settings.exporters["metrics"]:
        if name == "otlp":
            otlp = settings.otlp_for("metrics")
            exporters.append(
                ResilientMetricExporter(
                    describe(otlp),
                    functools.partial(otlp_metric_exporter, otlp),
                    reporter,
                    _temporality(settings),
                )
            )
        elif name == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            exporters.append(ConsoleMetricExporter(preferred_temporality=_temporality(settings)))
    return exporters


def log_exporters(
    settings: Settings, reporter: ExportReporter, scrubber: Scrubber | None = None
) -> list[LogRecordExporter]:
    exporters: list[LogRecordExporter] = []
    for name in settings.exporters["logs"]:
        if name == "otlp":
            otlp = settings.otlp_for("logs")
            exporters.append(
                ResilientLogExporter(
                    describe(otlp), functools.partial(otlp_log_exporter, otlp), reporter, scrubber
                )
            )
        elif name == "console":
            from beacon_otel.export.console import console_log_exporter

            exporters.append(console_log_exporter(scrubber or Scrubber()))
    return exporters


__all__ = [
    "ResilientLogExporter",
    "ResilientMetricExporter",
    "ResilientSpanExporter",
    "Signal",
    "log_exporters",
    "metric_exporters",
    "span_exporters",
]
