"""Every use beacon-otel makes of an upstream name that is not public API, in one place.

The fast path leans on details of opentelemetry-sdk, the OTLP exporters, asyncpg, FastAPI and
uvicorn that their authors may change in any release. The rest of beacon-otel reaches them only
through this module, and ``tests/test_upstream_contract.py`` checks each one against the
installed versions, so an upgrade that moves one fails a test that names it instead of
misbehaving quietly (``.ci/upstream-newest`` runs those tests on the newest releases).

The functions give a neutral answer when a detail is missing at run time (``None``, ``False``,
the public default), so that callers fall back to the upstream path rather than break. The
classes and modules listed in ``_LAZY`` are imported on first use: importing this module costs
nothing, and a process that exports over HTTP never imports grpc.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry._logs import Logger as Logger
    from opentelemetry._logs import SeverityNumber as SeverityNumber
    from opentelemetry._logs import set_logger_provider as set_logger_provider
    from opentelemetry.exporter.http.transport._base import BaseHTTPResult as BaseHTTPResult
    from opentelemetry.exporter.http.transport._base import BaseHTTPTransport as BaseHTTPTransport
    from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
    from opentelemetry.sdk._configuration import _BaseConfigurator as BaseConfigurator
    from opentelemetry.sdk._logs import LoggerProvider as LoggerProvider
    from opentelemetry.sdk._logs import LogRecordProcessor as LogRecordProcessor
    from opentelemetry.sdk._logs import ReadableLogRecord as ReadableLogRecord
    from opentelemetry.sdk._logs import ReadWriteLogRecord as ReadWriteLogRecord
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as BatchLogRecordProcessor
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter as ConsoleLogRecordExporter
    from opentelemetry.sdk._logs.export import LogRecordExporter as LogRecordExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult as LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, MetricsData
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as HttpToolsProtocol

    class Configurator(BaseConfigurator):
        def configure_process(self) -> None: ...

    class Distro(BaseDistro):  # type: ignore[misc]  # an untyped namespace package to mypy
        pass

    class ReceivingMetricReader(MetricReader):
        def receive(self, metrics_data: MetricsData, timeout_millis: float) -> None: ...
        def _receive_metrics(
            self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
        ) -> None: ...

# --- names under private modules, imported when first used ---------------------------------------

# The logs API and SDK are still under ``_logs`` (experimental upstream): when they become
# ``opentelemetry.sdk.logs``, this table is all that changes.
_LAZY: dict[str, tuple[str, str]] = {
    "Logger": ("opentelemetry._logs", "Logger"),
    "ApiLoggerProvider": ("opentelemetry._logs", "LoggerProvider"),
    "SeverityNumber": ("opentelemetry._logs", "SeverityNumber"),
    "set_logger_provider": ("opentelemetry._logs", "set_logger_provider"),
    "LoggerProvider": ("opentelemetry.sdk._logs", "LoggerProvider"),
    "LogRecordProcessor": ("opentelemetry.sdk._logs", "LogRecordProcessor"),
    "ReadableLogRecord": ("opentelemetry.sdk._logs", "ReadableLogRecord"),
    "ReadWriteLogRecord": ("opentelemetry.sdk._logs", "ReadWriteLogRecord"),
    "BatchLogRecordProcessor": ("opentelemetry.sdk._logs.export", "BatchLogRecordProcessor"),
    "ConsoleLogRecordExporter": ("opentelemetry.sdk._logs.export", "ConsoleLogRecordExporter"),
    "LogRecordExporter": ("opentelemetry.sdk._logs.export", "LogRecordExporter"),
    "LogRecordExportResult": ("opentelemetry.sdk._logs.export", "LogRecordExportResult"),
    "GrpcLogExporter": ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    "HttpLogExporter": ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
    # The OTLP/HTTP exporters' pluggable transport (beacon_otel.export.bounded_http bounds it).
    "BaseHTTPResult": ("opentelemetry.exporter.http.transport._base", "BaseHTTPResult"),
    "BaseHTTPTransport": ("opentelemetry.exporter.http.transport._base", "BaseHTTPTransport"),
    # The base of OpenTelemetry's configurators, which opentelemetry-instrument loads by entry point.
    "BaseConfigurator": ("opentelemetry.sdk._configuration", "_BaseConfigurator"),
    # uvicorn's httptools protocol, which the sink extends with its connection limits.
    "HttpToolsProtocol": ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
}


def _configurator() -> type:
    base: Any = importlib.import_module("opentelemetry.sdk._configuration")._BaseConfigurator

    class Configurator(base):  # type: ignore[misc]
        """A configurator for ``opentelemetry-instrument`` whose work is ``configure_process``."""

        def configure_process(self) -> None:
            raise NotImplementedError

        def _configure(self, **kwargs: Any) -> None:
            self.configure_process()

    return Configurator


def _distro() -> type:
    base: Any = importlib.import_module("opentelemetry.instrumentation.distro").BaseDistro

    class Distro(base):  # type: ignore[misc]
        """A distro that configures nothing itself (the configurator does)."""

        def _configure(self, **kwargs: Any) -> None:
            return None

    return Distro


def _receiving_metric_reader() -> type:
    from opentelemetry.sdk.metrics.export import MetricReader

    class ReceivingMetricReader(MetricReader):
        """A metric reader whose ``receive`` gets each collection (the SDK calls the reader's
        private ``_receive_metrics`` with it)."""

        def receive(self, metrics_data: Any, timeout_millis: float) -> None:
            raise NotImplementedError

        def _receive_metrics(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> None:
            if metrics_data is not None:
                self.receive(metrics_data, timeout_millis)

    return ReceivingMetricReader


# Base classes whose subclasses implement a private upstream hook, built when first used.
_BUILT: dict[str, Callable[[], type]] = {
    "Configurator": _configurator,
    "Distro": _distro,
    "ReceivingMetricReader": _receiving_metric_reader,
}


def __getattr__(name: str) -> Any:
    if name in _BUILT:
        value: Any = _BUILT[name]()
    elif name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next look-up is a plain global
    return value


def default_resource() -> Resource:
    """The SDK's ``telemetry.sdk.*`` resource, without the detectors ``Resource.create`` runs."""
    from opentelemetry.sdk.resources import _DEFAULT_RESOURCE

    return _DEFAULT_RESOURCE


# --- the SDK tracer, for direct spans ---------------------------------------------------------------


def tracer_span_processors(tracer: Any) -> tuple[Any, ...] | None:
    """The processors the tracer's spans go to (the provider's multi-processor's tuple, which
    the SDK replaces, never mutates, when one is added), or None if that is not knowable."""
    processors = getattr(getattr(tracer, "span_processor", None), "_span_processors", None)
    return processors if isinstance(processors, tuple) else None


def tracer_internals(tracer: Any) -> tuple[InstrumentationScope, SpanLimits, Callable[[], bool]] | None:
    """What a span made without the SDK's Span class needs from the tracer: its scope, its
    limits and its "is this tracer enabled" check. None when any is missing, or when the
    tracer records the SDK's own span metrics (a direct span would skip them)."""
    from opentelemetry.sdk.trace import SpanLimits
    from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    scope = getattr(tracer, "_instrumentation_scope", None)
    limits = getattr(tracer, "_span_limits", None)
    is_enabled = getattr(tracer, "_is_enabled", None)
    if not (
        isinstance(scope, InstrumentationScope)
        and isinstance(limits, SpanLimits)
        and callable(is_enabled)
        and isinstance(getattr(tracer, "_tracer_metrics", None), NoOpTracerMetrics)
    ):
        return None
    return scope, limits, is_enabled


def hooks_span_ending(processor: object) -> bool:
    """Whether the processor overrides the SDK's ``_on_ending`` hook (called by ``Span.end``
    before ``on_end``), which a direct span would not call."""
    from opentelemetry.sdk.trace import SpanProcessor

    base = getattr(SpanProcessor, "_on_ending", None)
    return getattr(type(processor), "_on_ending", base) is not base


def attribute_dict(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The plain dict inside the SDK's BoundedAttributes: iterating it skips the Mapping ABC's
    per-item overhead, which dominates span encoding. Any other mapping is returned as is."""
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else attributes


# --- metric exporters -------------------------------------------------------------------------------


Preferences = dict[type, Any] | None


def metric_exporter_preferences(exporter: MetricExporter) -> tuple[Preferences, Preferences]:
    """The temporality and aggregation an exporter was built with (what a reader wrapping it
    must ask for); (None, None), the SDK's defaults, when they cannot be read."""
    temporality = getattr(exporter, "_preferred_temporality", None)
    aggregation = getattr(exporter, "_preferred_aggregation", None)
    return (
        temporality if isinstance(temporality, dict) else None,
        aggregation if isinstance(aggregation, dict) else None,
    )


# --- OTLP exporters ---------------------------------------------------------------------------------


def replace_http_transport(exporter: Any, wrap: Callable[[Any, Any], Any]) -> bool:
    """Put ``wrap(transport, session)`` in place of an upstream OTLP/HTTP exporter's transport,
    keeping its requests session (TLS, headers, pooling). False, and nothing changed, when the
    exporter is not built that way."""
    client = getattr(exporter, "_client", None)
    inner = getattr(client, "_transport", None)
    session = getattr(inner, "_session", None)
    if client is None or inner is None or session is None:
        return False
    client._transport = wrap(inner, session)
    return True


def http_exporter_post(exporter: Any, payload: bytes) -> Any | None:
    """Send an encoded request through an upstream OTLP/HTTP exporter's client (its retries,
    timeout, headers, compression); the client's result, or None once the exporter is shut down."""
    if exporter._shutdown:
        return None
    return exporter._client.export(payload)


def stop_retrying(exporter: object, remaining: Callable[[float], float]) -> None:
    """Make an upstream OTLP exporter give up after one attempt: its retry loops stop when their
    shutdown event is set (the HTTP client's, or the gRPC exporter's own), while the exporter
    stays usable. Over gRPC the whole-call timeout is also cut to ``remaining(timeout)``."""
    client = getattr(exporter, "_client", None)
    for event in (getattr(client, "_shutdown_event", None), getattr(exporter, "_shutdown_in_progress", None)):
        if isinstance(event, threading.Event):
            event.set()
    timeout = getattr(exporter, "_timeout", None)
    if isinstance(timeout, int | float) and getattr(exporter, "_channel_options", None) is not None:
        exporter._timeout = max(0.001, min(float(timeout), remaining(float(timeout))))  # type: ignore[attr-defined]


class _RawServiceStub:
    """A TraceService or LogsService stub that sends request bytes encoded already."""

    def __init__(self, channel: Any, method: str, response_type: Any) -> None:
        self.Export = channel.unary_unary(
            method,
            request_serializer=None,  # the request is bytes already
            response_deserializer=response_type.FromString,
        )


class EncodedGrpcExport:
    """Mixin for an upstream OTLP/gRPC exporter (listed first among the bases): ``export_payload``
    sends a request beacon-otel encoded, through the upstream channel, retries and timeout.

    It overrides three of the exporter mixin's private hooks: the stub made with the channel,
    the translation of items into a request, and their count for the exporter's metrics.
    """

    service_method: str = ""
    response_type: Any = None
    _payload_count = 0

    def encode(self, items: Any) -> bytes:
        """The request for items given to ``export`` (a subclass that accepts items overrides it)."""
        raise TypeError(f"{type(self).__name__} exports encoded requests only")

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()  # type: ignore[misc]
        stub = _RawServiceStub(self._channel, self.service_method, self.response_type)  # type: ignore[attr-defined]
        setattr(self, "_client", stub)  # noqa: B010 (the exporter declares its own type for it)

    def _translate_data(self, data: Any) -> Any:
        return data if isinstance(data, bytes) else self.encode(data)

    def _count_data(self, data: Any) -> int:
        return self._payload_count if isinstance(data, bytes) else len(data)

    def export_payload(self, payload: bytes, count: int = 1) -> Any:
        """Send an encoded request of ``count`` items, with the upstream retries and timeout."""
        self._payload_count = count
        return self._export(payload)  # type: ignore[attr-defined]


# Upstream loggers whose records beacon_otel.export.reporting turns into its own reports.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
    "opentelemetry.exporter.otlp.proto.grpc._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
HTTP_TRACE_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
HTTP_LOG_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http._log_exporter"
# The batch processors' loggers, and the start of their warning when an item is dropped.
QUEUE_LOGGERS = ("opentelemetry.sdk._shared_internal", "opentelemetry.sdk.trace.export")
QUEUE_FULL_PREFIX = "Queue full"
METRIC_READER_LOGGERS = ("opentelemetry.sdk.metrics._internal.export",)


# --- asyncpg ----------------------------------------------------------------------------------------


def asyncpg_server(connection: Any) -> tuple[str | None, object]:
    """The database name and the address (``(host, port)``, or a Unix socket path) a
    connection was opened with, from its private fields; None for what is missing."""
    database = getattr(getattr(connection, "_params", None), "database", None)
    return (database if isinstance(database, str) else None), getattr(connection, "_addr", None)


def asyncpg_statement_source(instance: Any) -> tuple[Any, object]:
    """A cursor's or prepared statement's connection and query text, which it keeps privately."""
    return getattr(instance, "_connection", None), getattr(instance, "_query", None)


def asyncpg_iterator_will_fetch(iterator: Any) -> bool:
    """Whether a cursor iterator's next step goes to the server (rows already fetched come from
    its buffer). True when its fields are not asyncpg's known ones: every step then gets a span."""
    try:
        return not iterator._exhausted and (not iterator._portal_name or not iterator._buffer)
    except AttributeError:
        return True


# --- FastAPI ----------------------------------------------------------------------------------------


def fastapi_traces_itself(app: Any) -> bool:
    """Whether a FastAPI app was built with its own tracing on (``telemetry={"tracing": True}``)."""
    telemetry = getattr(app, "_telemetry", None)
    return isinstance(telemetry, Mapping) and bool(telemetry.get("tracing"))


# --- uvicorn ----------------------------------------------------------------------------------------

# What beacon_otel.sink.connections overrides or reads on uvicorn's HttpToolsProtocol.
HTTPTOOLS_PROTOCOL_HOOKS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_headers_complete",
    "on_message_complete",
)
HTTPTOOLS_PROTOCOL_ATTRIBUTES = ("loop", "transport")
