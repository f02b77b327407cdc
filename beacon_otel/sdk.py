"""Builds the tracer, meter and logger providers from :class:`~beacon_otel.settings.Settings`.

Only this module turns settings into SDK objects; it installs them as the global providers
once per process and keeps a handle so that they can be flushed and shut down.
"""

from __future__ import annotations

import atexit
import os
import uuid
from dataclasses import dataclass, field

from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from beacon_otel import _upstream
from beacon_otel.export.added_metrics import WithHttpMetrics
from beacon_otel.export.encoded_queue import EncodedBatchQueue
from beacon_otel.export.exporters import (
    ResilientLogExporter,
    ResilientSpanExporter,
    log_exporters,
    metric_exporters,
    span_exporters,
)
from beacon_otel.export.log_encoding import EncodedLogRecordProcessor, LogBatchEncoder
from beacon_otel.export.reporting import ExportReporter, install_log_capture
from beacon_otel.export.span_queue import EncodedBatchSpanProcessor
from beacon_otel.instrumentation import http_metrics
from beacon_otel.instrumentation.exemplars import sdk_exemplar_filter
from beacon_otel.instrumentation.fast_path import say_why_not_direct
from beacon_otel.instrumentation.http_aggregation import FastHttpMetrics
from beacon_otel.instrumentation.http_series import SCOPE_NAME
from beacon_otel.legacy_trace import LegacyAwareIdGenerator, LegacyTraceIdPropagator
from beacon_otel.logs.otlp import EncodedLogEmitter, LogEmitter
from beacon_otel.scrubbing import Scrubber
from beacon_otel.settings import Settings

SCOPE = "beacon_otel"


def process_instance_id(settings: Settings) -> str:
    """A ``service.instance.id`` unique to this process.

    Railway's replica id names the container; workers inside one replica still need their own
    id, so the pid is appended (and a random suffix when there is no replica id at all).
    """
    if settings.railway_replica_id:
        return f"{settings.railway_replica_id}-{os.getpid()}"
    return str(uuid.uuid4())


def build_resource(settings: Settings) -> Resource:
    """Resource from Railway's variables, then OTEL_RESOURCE_ATTRIBUTES, then the service name."""
    attributes: dict[str, str | int] = {
        "service.instance.id": process_instance_id(settings),
        "telemetry.distro.name": "beacon-otel",
        "telemetry.distro.version": _version(),
    }
    if settings.railway_environment:
        attributes["deployment.environment.name"] = settings.railway_environment
    if settings.railway_commit_sha:
        attributes["service.version"] = settings.railway_commit_sha
    if settings.railway_service_name:
        attributes["railway.service.name"] = settings.railway_service_name
    if settings.railway_replica_id:
        attributes["railway.replica.id"] = settings.railway_replica_id
    # Scrubbed here, once, so that every signal gets the same clean resource: the span and log
    # encoders scrub what they encode, but metrics are encoded by the upstream exporters.
    attributes.update(Scrubber(settings.scrub_patterns).scrub_mapping(settings.resource_attributes))
    attributes["service.name"] = settings.service_name
    # Resource(...) rather than Resource.create(): create() would re-read the environment and
    # run detectors; everything it would add is already here, validated.
    return Resource.get_empty().merge(_sdk_resource()).merge(Resource(attributes))


def _sdk_resource() -> Resource:
    return _upstream.default_resource()  # the telemetry.sdk.* attributes


def _version() -> str:
    from beacon_otel import __version__

    return __version__


def build_sampler(settings: Settings) -> Sampler:
    ratio = 1.0 if settings.sampler_arg is None else settings.sampler_arg
    name = settings.sampler
    if name == "always_on":
        return ALWAYS_ON
    if name == "always_off":
        return ALWAYS_OFF
    if name == "traceidratio":
        return TraceIdRatioBased(ratio)
    if name == "parentbased_always_off":
        return ParentBased(ALWAYS_OFF)
    if name == "parentbased_traceidratio":
        return ParentBased(TraceIdRatioBased(ratio))
    return DEFAULT_ON  # ParentBased(ALWAYS_ON), the instance server spans recognise


def build_propagator(settings: Settings) -> TextMapPropagator:
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    propagators: list[TextMapPropagator] = []
    if "tracecontext" in settings.propagators:
        propagators.append(TraceContextTextMapPropagator())
    if "baggage" in settings.propagators:
        propagators.append(W3CBaggagePropagator())
    if settings.legacy_trace_header:
        propagators.append(LegacyTraceIdPropagator(settings.legacy_trace_header))
    return CompositePropagator(propagators)


@dataclass
class Telemetry:
    """The providers of this process, as installed globally."""

    settings: Settings
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: _upstream.LoggerProvider
    reporter: ExportReporter
    scrubber: Scrubber
    readers: list[MetricReader] = field(default_factory=list)
    log_queue: EncodedBatchQueue | None = None
    log_encoder: LogBatchEncoder = field(default_factory=LogBatchEncoder)
    http_metrics: FastHttpMetrics | None = None

    exporters: list[object] = field(default_factory=list)
    queues: list[EncodedBatchQueue] = field(default_factory=list)

    def force_flush(self, timeout_millis: int = 5000) -> None:
        self.tracer_provider.force_flush(timeout_millis)
        self.meter_provider.force_flush(timeout_millis)
        self.logger_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and shut down every pipeline within ``BEACON_OTEL_SHUTDOWN_TIMEOUT`` (once)."""
        from beacon_otel.shutdown import shut_down

        shut_down(self)


def _observe_drops(meter_provider: MeterProvider, reporter: ExportReporter) -> None:
    """``beacon.telemetry.dropped``: spans and log records lost, per signal and reason
    (``queue_full``: the queue was full; ``export_failed``: an export failed for good), so the
    loss is visible where the rest of the telemetry is."""
    from opentelemetry.metrics import CallbackOptions, Observation

    def observe(options: CallbackOptions) -> list[Observation]:
        observations = []
        for signal in ("traces", "logs"):
            for reason, count in (
                ("queue_full", reporter.dropped_total(signal)),
                ("export_failed", reporter.failed_total(signal)),
            ):
                if count:
                    observations.append(Observation(count, {"signal": signal, "reason": reason}))
        return observations

    meter_provider.get_meter("beacon_otel.export").create_observable_counter(
        "beacon.telemetry.dropped",
        callbacks=[observe],
        unit="{item}",
        description="Spans and log records lost: queue full, or export failed for good.",
    )


def say_if_spans_take_the_slow_path(telemetry: Telemetry) -> None:
    """At start, one line when the configuration itself turns direct spans off (the console
    exporter's processor, the SDK's span metrics); a processor the app adds later is said when
    the next span starts."""
    tracer = telemetry.tracer_provider.get_tracer(SCOPE_NAME, _version())
    if isinstance(tracer, SdkTracer):
        say_why_not_direct(tracer, _upstream.tracer_span_processors(tracer))


def build_telemetry(settings: Settings) -> Telemetry:
    """Create (but do not install) the three providers with their exporters."""
    reporter = ExportReporter(settings.export_error_interval)
    install_log_capture(reporter)
    scrubber = Scrubber(settings.scrub_patterns)
    resource = build_resource(settings)

    # shutdown_on_exit=False everywhere: Telemetry.shutdown, registered below, shuts the three
    # down together within one deadline instead of one after the other, each with its own.
    tracer_provider = TracerProvider(
        resource=resource,
        sampler=build_sampler(settings),
        id_generator=LegacyAwareIdGenerator(),
        shutdown_on_exit=False,
    )
    exporters: list[object] = []  # every exporter of the three signals, for the shutdown
    queues: list[EncodedBatchQueue] = []
    for span_exporter in span_exporters(settings, reporter, scrubber):
        exporters.append(span_exporter)
        if isinstance(span_exporter, ResilientSpanExporter):
            encoded = EncodedBatchSpanProcessor(span_exporter, settings.span_batch, reporter, scrubber)
            queues.append(encoded.queue)
            processor: SpanProcessor = encoded
        else:
            # The console is for looking at spans as they happen, not for throughput.
            processor = SimpleSpanProcessor(span_exporter)
        tracer_provider.add_span_processor(processor)

    exemplar_filter = settings.metrics_exemplar_filter
    fast_http_metrics = FastHttpMetrics(
        resource, InstrumentationScope(SCOPE_NAME, _version()), exemplar_filter=exemplar_filter
    )
    readers: list[MetricReader] = []
    for metric_exporter in metric_exporters(settings, reporter):
        exporters.append(metric_exporter)
        readers.append(
            PeriodicExportingMetricReader(
                WithHttpMetrics(metric_exporter, fast_http_metrics),
                export_interval_millis=settings.metric_export_interval_ms,
            )
        )
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=readers,
        exemplar_filter=sdk_exemplar_filter(exemplar_filter),
        shutdown_on_exit=False,
    )
    _observe_drops(meter_provider, reporter)
    if settings.http_server_metrics:
        fast_http_metrics.register_active_requests(meter_provider, _version())
    fast_http_metrics.register_client_active_requests(meter_provider, _version())

    logger_provider = _upstream.LoggerProvider(resource=resource, shutdown_on_exit=False)
    log_queue: EncodedBatchQueue | None = None
    log_encoder = LogBatchEncoder(resource, scrubber)
    for log_exporter in log_exporters(settings, reporter, scrubber):
        exporters.append(log_exporter)
        if isinstance(log_exporter, ResilientLogExporter):
            log_queue = EncodedBatchQueue("logs", log_exporter, log_encoder, settings.log_batch, reporter)
            queues.append(log_queue)
            # Records emitted through the OpenTelemetry Logs API take the same encoded path.
            logger_provider.add_log_record_processor(EncodedLogRecordProcessor(log_queue, log_encoder))
        else:
            log_batch = settings.log_batch
            logger_provider.add_log_record_processor(
                _upstream.BatchLogRecordProcessor(
                    log_exporter,
                    max_queue_size=log_batch.max_queue_size,
                    schedule_delay_millis=log_batch.schedule_delay_ms,
                    max_export_batch_size=log_batch.max_export_batch_size,
                    export_timeout_millis=log_batch.export_timeout_ms,
                )
            )
    telemetry = Telemetry(
        settings,
        tracer_provider,
        meter_provider,
        logger_provider,
        reporter,
        scrubber,
        readers,
        log_queue=log_queue,
        log_encoder=log_encoder,
        http_metrics=fast_http_metrics,
        exporters=exporters,
        queues=queues,
    )
    atexit.register(telemetry.shutdown)
    return telemetry


def log_emitter(telemetry: Telemetry) -> LogEmitter | None:
    """How the log pipeline exports records: straight into the encoded queue for OTLP, not at
    all otherwise. The console exporter is for records emitted through the OpenTelemetry Logs
    API: the pipeline prints each of its own records already, and printing it a second time, as
    a console export, would double every line on stdout."""
    if "otlp" in telemetry.settings.exporters["logs"] and telemetry.log_queue is not None:
        return EncodedLogEmitter(telemetry.log_queue, telemetry.log_encoder)
    return None


def install(telemetry: Telemetry) -> None:
    """Make the providers and propagator global for this process."""
    trace.set_tracer_provider(telemetry.tracer_provider)
    metrics.set_meter_provider(telemetry.meter_provider)
    _upstream.set_logger_provider(telemetry.logger_provider)
    if telemetry.http_metrics is not None:
        http_metrics.install(telemetry.http_metrics, telemetry.meter_provider)
    propagate.set_global_textmap(build_propagator(telemetry.settings))
