"""``beacon-otel config``'s output: the effective settings under the variables' own names.

An operator sets ``OTEL_BSP_MAX_QUEUE_SIZE``, not ``span_batch.max_queue_size``: each line names
the variable to change, and the per-signal OTLP values are shown resolved (the generic endpoint
with its ``/v1/<signal>`` path, the generic headers merged under the signal's). Values are
written the way the variable takes them, so that feeding the output back as the environment
gives the same settings (header values excepted: they are masked).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import quote

from beacon_otel.scrubbing import Scrubber
from beacon_otel.settings import (
    CAPTURE_ALL_METHODS,
    CAPTURE_HEADERS,
    SEMCONV_OPT_IN,
    SIGNALS,
    BatchSettings,
    HttpInstrumentationVariables,
    Settings,
)

Lines = list[tuple[str, str]]
# Everything but the separators of the key=value,... format stays readable ("[scrubbed]", "/").
_SAFE = "!#$&'()*+-./:;<>?@[]^_`{|}~"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _pairs(mapping: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{quote(key, safe=_SAFE)}={quote(value, safe=_SAFE)}" for key, value in mapping)


def _exporters(settings: Settings) -> Lines:
    return [
        (f"OTEL_{signal.upper()}_EXPORTER", ",".join(settings.exporters[signal]) or "none")
        for signal in SIGNALS
    ]


def _otlp(settings: Settings) -> Lines:
    scrubber = Scrubber()
    lines: Lines = []
    for signal in SIGNALS:
        otlp = settings.otlp_for(signal)
        prefix = f"OTEL_EXPORTER_OTLP_{signal.upper()}"
        headers = ((name, scrubber.scrub_header(name, value)) for name, value in otlp.headers.items())
        lines += [
            (f"{prefix}_ENDPOINT", otlp.endpoint),
            (f"{prefix}_PROTOCOL", otlp.protocol),
            (f"{prefix}_HEADERS", _pairs(headers)),
            (f"{prefix}_TIMEOUT", _number(otlp.timeout_seconds * 1000)),
            (f"{prefix}_COMPRESSION", otlp.compression),
        ]
    return lines


def _batch(prefix: str, batch: BatchSettings) -> Lines:
    return [
        (f"{prefix}_MAX_QUEUE_SIZE", str(batch.max_queue_size)),
        (f"{prefix}_SCHEDULE_DELAY", str(batch.schedule_delay_ms)),
        (f"{prefix}_MAX_EXPORT_BATCH_SIZE", str(batch.max_export_batch_size)),
        (f"{prefix}_EXPORT_TIMEOUT", str(batch.export_timeout_ms)),
    ]


def _http_instrumentation(http: HttpInstrumentationVariables) -> Lines:
    """Each library's excluded URLs under its own variable (which wins over the generic one)."""
    return [
        ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", ",".join(http.fastapi_excluded_urls)),
        ("OTEL_PYTHON_STARLETTE_EXCLUDED_URLS", ",".join(http.starlette_excluded_urls)),
        ("OTEL_PYTHON_HTTPX_EXCLUDED_URLS", ",".join(http.httpx_excluded_urls)),
        (f"{CAPTURE_HEADERS}_SERVER_REQUEST", ",".join(http.server_request_headers)),
        (f"{CAPTURE_HEADERS}_SERVER_RESPONSE", ",".join(http.server_response_headers)),
        (f"{CAPTURE_HEADERS}_CLIENT_REQUEST", ",".join(http.client_request_headers)),
        (f"{CAPTURE_HEADERS}_CLIENT_RESPONSE", ",".join(http.client_response_headers)),
        (f"{CAPTURE_HEADERS}_SANITIZE_FIELDS", ",".join(http.sanitize_fields)),
        (SEMCONV_OPT_IN, ",".join(http.semconv_opt_in)),
        # Empty when off: any other value, "false" too, turns it on.
        (CAPTURE_ALL_METHODS, "true" if http.capture_all_methods else ""),
    ]


def _untraced(settings: Settings) -> str:
    methods = [f"{module}:{cls}.{method}" for module, cls, method in settings.untraced_methods]
    return ",".join(methods) or "none"


# Settings field -> its lines; every field appears once (a test holds this table to Settings).
FIELDS: dict[str, Callable[[Settings], Lines]] = {
    "sdk_disabled": lambda s: [("OTEL_SDK_DISABLED", _flag(s.sdk_disabled))],
    "service_name": lambda s: [("OTEL_SERVICE_NAME", s.service_name)],
    "resource_attributes": lambda s: [
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            _pairs(Scrubber(s.scrub_patterns).scrub_mapping(s.resource_attributes).items()),
        )
    ],
    "exporters": _exporters,
    "otlp": _otlp,
    "metrics_temporality": lambda s: [
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", s.metrics_temporality)
    ],
    "sampler": lambda s: [("OTEL_TRACES_SAMPLER", s.sampler)],
    "sampler_arg": lambda s: [("OTEL_TRACES_SAMPLER_ARG", _number(s.sampler_arg))],
    "propagators": lambda s: [("OTEL_PROPAGATORS", ",".join(s.propagators) or "none")],
    "disabled_instrumentations": lambda s: [
        ("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", ",".join(sorted(s.disabled_instrumentations)))
    ],
    "span_batch": lambda s: _batch("OTEL_BSP", s.span_batch),
    "log_batch": lambda s: _batch("OTEL_BLRP", s.log_batch),
    "metric_export_interval_ms": lambda s: [
        ("OTEL_METRIC_EXPORT_INTERVAL", str(s.metric_export_interval_ms))
    ],
    "railway_environment": lambda s: [("RAILWAY_ENVIRONMENT", s.railway_environment or "")],
    "railway_commit_sha": lambda s: [("RAILWAY_GIT_COMMIT_SHA", s.railway_commit_sha or "")],
    "railway_service_name": lambda s: [("RAILWAY_SERVICE_NAME", s.railway_service_name or "")],
    "railway_replica_id": lambda s: [("RAILWAY_REPLICA_ID", s.railway_replica_id or "")],
    "legacy_trace_header": lambda s: [("BEACON_OTEL_LEGACY_TRACE_HEADER", s.legacy_trace_header or "")],
    "httpx_upstream": lambda s: [("BEACON_OTEL_HTTPX_UPSTREAM", _flag(s.httpx_upstream))],
    "asyncpg_upstream": lambda s: [("BEACON_OTEL_ASYNCPG_UPSTREAM", _flag(s.asyncpg_upstream))],
    "fastapi_upstream": lambda s: [("BEACON_OTEL_FASTAPI_UPSTREAM", _flag(s.fastapi_upstream))],
    "http_server_metrics": lambda s: [("BEACON_OTEL_HTTP_SERVER_METRICS", _flag(s.http_server_metrics))],
    "metrics_exemplar_filter": lambda s: [("OTEL_METRICS_EXEMPLAR_FILTER", s.metrics_exemplar_filter)],
    "export_error_interval": lambda s: [
        ("BEACON_OTEL_EXPORT_ERROR_INTERVAL", _number(s.export_error_interval))
    ],
    "allow_uninstrumented": lambda s: [("BEACON_OTEL_ALLOW_UNINSTRUMENTED", _flag(s.allow_uninstrumented))],
    "shutdown_timeout": lambda s: [("BEACON_OTEL_SHUTDOWN_TIMEOUT", _number(s.shutdown_timeout))],
    "provider_hooks": lambda s: [
        ("BEACON_OTEL_PROVIDER_HOOKS", ",".join(f"{module}:{cls}" for module, cls in s.provider_hooks))
    ],
    "untraced_methods": lambda s: [("BEACON_OTEL_UNTRACED_METHODS", _untraced(s))],
    "health_interval": lambda s: [("BEACON_OTEL_HEALTH_INTERVAL", _number(s.health_interval))],
    "log_format": lambda s: [("BEACON_OTEL_LOG_FORMAT", s.log_format)],
    "log_level": lambda s: [("BEACON_OTEL_LOG_LEVEL", s.log_level or "")],
    "export_access_logs": lambda s: [("BEACON_OTEL_EXPORT_ACCESS_LOGS", _flag(s.export_access_logs))],
    "scrub_patterns": lambda s: [("BEACON_OTEL_SCRUB_PATTERNS", " ".join(s.scrub_patterns))],
    "http_instrumentation": lambda s: _http_instrumentation(s.http_instrumentation),
}


def effective_variables(settings: Settings) -> Lines:
    """(variable, value) for every setting, in the README table's order; empty means unset."""
    return [line for render in FIELDS.values() for line in render(settings)]


def render_text(settings: Settings) -> str:
    """``NAME=value`` lines: what to grep for, and what to set."""
    return "".join(f"{name}={value}\n" for name, value in effective_variables(settings))
