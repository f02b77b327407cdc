"""What a valid configuration does that its author may not expect, said once at start-up and
by ``beacon-otel doctor``: OTEL_* variables that have no effect under beacon-otel, semantic
conventions that differ between the instrumentations, a deprecated name, an exemplar filter the
SDK does not know, a capture-all-methods value that reads as false. None of these stops an app:
:mod:`beacon_otel.settings` refuses what is invalid; this module explains what is surprising.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from beacon_otel.settings import (
    CAPTURE_ALL_METHODS,
    DEPRECATED_FASTAPI_UPSTREAM,
    EXEMPLAR_FILTER_VARIABLE,
    EXEMPLAR_FILTERS,
    FASTAPI_UPSTREAM,
    SEMCONV_OPT_IN,
    Settings,
    exemplar_filter_named,
    variables_read,
)

__all__ = ["HONOURED_UPSTREAM", "NOT_HONOURED", "ConfigWarning", "configuration_warnings"]


class ConfigWarning(NamedTuple):
    """A configuration that works, but not as its author probably expects: reported once at
    start-up and by ``beacon-otel doctor``, never fatal."""

    topic: str  # the doctor's check name
    message: str
    remedy: str


# --- OTEL_* variables beacon-otel does not read itself ---------------------------------------------

# Honoured under beacon-otel exactly as without it, by the SDK, the OTLP exporters or
# opentelemetry-instrument, which read them on their own: span limits (the direct spans take the
# tracer's), the metric reader's timeout, the exporters'
# TLS files, gRPC security, credential providers and retryable codes, and the distro selection.
_SIGNAL_SCOPES = ("", "TRACES_", "METRICS_", "LOGS_")
HONOURED_UPSTREAM: frozenset[str] = frozenset(
    {
        "OTEL_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        "OTEL_SPAN_EVENT_COUNT_LIMIT",
        "OTEL_SPAN_LINK_COUNT_LIMIT",
        "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
        "OTEL_METRIC_EXPORT_TIMEOUT",
        # The SDK's span metrics: on, spans take the SDK's own path so that it counts them (doctor's
        # fast-path row and one start-up line say so).
        "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED",
        *(
            f"OTEL_EXPORTER_OTLP_{scope}{part}"
            for scope in _SIGNAL_SCOPES
            for part in ("CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE", "INSECURE")
        ),
        *(
            f"OTEL_PYTHON_EXPORTER_OTLP_{protocol}_{scope}CREDENTIAL_PROVIDER"
            for protocol in ("GRPC", "HTTP")
            for scope in _SIGNAL_SCOPES
        ),
        "OTEL_PYTHON_EXPORTER_OTLP_GRPC_RETRYABLE_ERROR_CODES",
        "OTEL_PYTHON_DISTRO",
        "OTEL_PYTHON_CONFIGURATOR",
        "OTEL_PYTHON_CONTEXT",
        "OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH",
    }
)

_OWN_PROVIDERS = "beacon-otel builds and installs the providers itself"
_OWN_LOGGING = "beacon-otel's log pipeline replaces the SDK's (BEACON_OTEL_LOG_FORMAT, _LOG_LEVEL)"
_OTLP_ONLY = "beacon-otel exports over OTLP or to the console only"
# Known to the SDK or to opentelemetry-instrument, without effect under beacon-otel: why.
NOT_HONOURED: Mapping[str, str] = MappingProxyType(
    {
        "OTEL_CONFIG_FILE": "configuration files are not supported: use the variables",
        "OTEL_LOG_LEVEL": "the Python SDK does not read it; BEACON_OTEL_LOG_LEVEL sets the log level",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "no detector runs; OTEL_RESOURCE_ATTRIBUTES is read",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": _OTLP_ONLY,
        "OTEL_EXPORTER_ZIPKIN_TIMEOUT": _OTLP_ONLY,
        "OTEL_EXPORTER_PROMETHEUS_HOST": _OTLP_ONLY,
        "OTEL_EXPORTER_PROMETHEUS_PORT": _OTLP_ONLY,
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION": "histograms keep explicit buckets",
        "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT": "the log pipeline's records are not limited by it",
        "OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT": "the log pipeline's records are not limited by it",
        "OTEL_PYTHON_ID_GENERATOR": "beacon-otel's id generator keeps the runner's X-Trace-Id as trace id",
        "OTEL_PYTHON_TRACER_PROVIDER": _OWN_PROVIDERS,
        "OTEL_PYTHON_METER_PROVIDER": _OWN_PROVIDERS,
        "OTEL_PYTHON_LOGGER_PROVIDER": _OWN_PROVIDERS,
        "OTEL_PYTHON_TRACER_CONFIGURATOR": _OWN_PROVIDERS,
        "OTEL_PYTHON_METER_CONFIGURATOR": _OWN_PROVIDERS,
        "OTEL_PYTHON_LOGGER_CONFIGURATOR": _OWN_PROVIDERS,
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": _OWN_LOGGING,
        "OTEL_PYTHON_LOG_CORRELATION": _OWN_LOGGING,
        "OTEL_PYTHON_LOG_FORMAT": _OWN_LOGGING,
        "OTEL_PYTHON_LOG_LEVEL": _OWN_LOGGING,
    }
)
_UNKNOWN = "read by neither beacon-otel nor the OpenTelemetry packages it runs: a typo, or another library's"
VARIABLES_DOC = "docs/telemetry.md#opentelemetry-variables"


def configuration_warnings(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> list[ConfigWarning]:
    """What a valid configuration does that its author may not expect, one warning per topic:
    OTEL_* variables without effect here, a deprecated name, semantic conventions that differ
    between the instrumentations, a capture-all-methods value that reads as false but is on."""
    env = os.environ if environ is None else environ
    warnings = [*_unsupported_variables(env), *_semconv_warnings(settings)]
    exemplar_problem = exemplar_filter_named(env.get(EXEMPLAR_FILTER_VARIABLE))[1]
    if exemplar_problem:
        warnings.append(
            ConfigWarning(
                "exemplar-filter", exemplar_problem, f"set it to one of {', '.join(EXEMPLAR_FILTERS)}"
            )
        )
    if env.get(DEPRECATED_FASTAPI_UPSTREAM, "").strip():
        warnings.append(
            ConfigWarning(
                "deprecated",
                f"{DEPRECATED_FASTAPI_UPSTREAM} is deprecated: it is now {FASTAPI_UPSTREAM} (same meaning)",
                f"rename it to {FASTAPI_UPSTREAM}",
            )
        )
    capture_all = env.get(CAPTURE_ALL_METHODS, "")
    if capture_all.strip().lower() in ("false", "0", "no", "off"):
        warnings.append(
            ConfigWarning(
                "http-methods",
                f"{CAPTURE_ALL_METHODS}={capture_all!r} turns the option ON: the OpenTelemetry "
                "instrumentations take any value that is not empty as on, so every HTTP method is "
                "recorded as sent",
                f"unset {CAPTURE_ALL_METHODS} to record unknown methods as _OTHER",
            )
        )
    return warnings


def _unsupported_variables(environ: Mapping[str, str]) -> list[ConfigWarning]:
    known = variables_read() | HONOURED_UPSTREAM
    unsupported = sorted(name for name in environ if name.startswith("OTEL_") and name not in known)
    if not unsupported:
        return []
    described = "; ".join(f"{name} ({NOT_HONOURED.get(name, _UNKNOWN)})" for name in unsupported)
    count = f"{len(unsupported)} OTEL_* variable{'s' if len(unsupported) > 1 else ''}"
    return [
        ConfigWarning(
            "otel-variables",
            f"{count} set here {'have' if len(unsupported) > 1 else 'has'} no effect: {described}",
            f"unset {'them' if len(unsupported) > 1 else 'it'}; {VARIABLES_DOC} lists those that work",
        )
    ]


_SEMCONV_ENTRIES = ("http", "http/dup", "database", "database/dup", "gen_ai_latest_experimental")


def _semconv_warnings(settings: Settings) -> list[ConfigWarning]:
    """OTEL_SEMCONV_STABILITY_OPT_IN where beacon-otel's own instrumentations cannot follow it,
    or where they and the upstream ones selected beside them would name HTTP attributes
    differently; all in one warning."""
    http = settings.http_instrumentation
    value = ",".join(http.semconv_opt_in)
    shown = f"{SEMCONV_OPT_IN}={value!r}" if value else f"{SEMCONV_OPT_IN} is unset, so"
    own, upstream = _http_instrumentations(settings)
    parts = []
    unknown = [entry for entry in http.semconv_opt_in if entry not in _SEMCONV_ENTRIES]
    if unknown:
        parts.append(f"{', '.join(unknown)} is not an opt-in the instrumentations know (ignored)")
    if http.http_mode == "default" and own and upstream:
        parts.append(
            f"the upstream {' and '.join(upstream)} instrumentation emits the old HTTP attribute names "
            f"(http.method, http.status_code, ...) while beacon-otel's {' and '.join(own)} instrumentation "
            "emits the stable ones (http.request.method, http.response.status_code, ...)"
        )
    if http.http_mode == "http/dup" and own:
        parts.append(
            f"beacon-otel's {' and '.join(own)} spans carry the old HTTP attribute names beside the stable "
            "ones, but its HTTP metrics keep the stable names only (no http.server.duration or "
            "http.client.duration)"
        )
    if (
        "database/dup" in http.semconv_opt_in
        and settings.instrumentation_enabled("asyncpg")
        and not settings.asyncpg_upstream
    ):
        parts.append("beacon-otel's asyncpg spans carry the stable database attribute names only")
    if not parts:
        return []
    return [
        ConfigWarning(
            "semconv",
            f"{shown}: {'; '.join(parts)}",
            "set it to http (stable names everywhere), or select the upstream instrumentations "
            "(BEACON_OTEL_<LIB>_UPSTREAM=true) for their exact output",
        )
    ]


def _http_instrumentations(settings: Settings) -> tuple[list[str], list[str]]:
    """The enabled HTTP instrumentations: (beacon-otel's own, upstream), by library name."""
    own: list[str] = []
    upstream: list[str] = []
    for name, selected in (("FastAPI", settings.fastapi_upstream), ("httpx", settings.httpx_upstream)):
        if settings.instrumentation_enabled(name.lower()):
            (upstream if selected else own).append(name)
    return own, upstream
