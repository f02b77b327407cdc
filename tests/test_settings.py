"""Unit tests for beacon_otel.settings: defaults, OTLP rules of the specification, validation.

Every test hands ``load_settings`` an explicit mapping; none of them reads the real ``os.environ``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import pytest

from beacon_otel.settings import (
    SIGNALS,
    BatchSettings,
    ConfigError,
    Settings,
    Signal,
    child_environment,
    load_settings,
)

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def problems_for(environ: Mapping[str, str]) -> list[str]:
    """The problem lines of the ConfigError that ``environ`` must raise."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    problems = caught.value.problems
    assert problems, "a ConfigError must carry at least one problem"
    # The message shown to the user lists every problem.
    for problem in problems:
        assert problem in str(caught.value)
    return problems


def names_variable(line: str, variable: str) -> bool:
    """True when a problem line is about ``variable`` (``NAME=...`` or ``NAME is invalid``)."""
    return re.match(rf"{re.escape(variable)}[= ]", line) is not None


def lines_about(problems: list[str], variable: str) -> list[str]:
    return [line for line in problems if names_variable(line, variable)]


# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------


@pytest.fixture
def defaults() -> Settings:
    return load_settings({})


def test_defaults_general(defaults: Settings) -> None:
    assert defaults.sdk_disabled is False
    assert defaults.service_name == "hybrid-router"
    assert dict(defaults.resource_attributes) == {}
    assert defaults.sampler == "parentbased_always_on"
    assert defaults.sampler_arg is None
    assert defaults.propagators == ("tracecontext", "baggage")
    assert defaults.disabled_instrumentations == frozenset()
    assert defaults.legacy_trace_header == "x-trace-id"
    assert defaults.metric_export_interval_ms == 60000
    assert defaults.metrics_temporality == "cumulative"
    assert defaults.fastapi_upstream is False
    assert defaults.http_server_metrics is True
    assert defaults.export_error_interval == 60.0


def test_defaults_railway_fields_are_none(defaults: Settings) -> None:
    assert defaults.railway_environment is None
    assert defaults.railway_commit_sha is None
    assert defaults.railway_service_name is None
    assert defaults.railway_replica_id is None


def test_defaults_exporters_are_otlp_for_every_signal(defaults: Settings) -> None:
    assert dict(defaults.exporters) == {"traces": ("otlp",), "metrics": ("otlp",), "logs": ("otlp",)}
    for signal in SIGNALS:
        assert defaults.exports(signal, "otlp")
        assert not defaults.exports(signal, "console")


@pytest.mark.parametrize(
    ("signal", "endpoint"),
    [
        ("traces", "http://localhost:4318/v1/traces"),
        ("metrics", "http://localhost:4318/v1/metrics"),
        ("logs", "http://localhost:4318/v1/logs"),
    ],
)
def test_defaults_otlp_per_signal(defaults: Settings, signal: Signal, endpoint: str) -> None:
    otlp = defaults.otlp_for(signal)
    assert otlp.protocol == "http/protobuf"
    assert otlp.endpoint == endpoint
    assert dict(otlp.headers) == {}
    assert otlp.timeout_seconds == 10.0
    assert otlp.compression == "none"


def test_defaults_batches(defaults: Settings) -> None:
    expected = BatchSettings(
        max_queue_size=2048, schedule_delay_ms=5000, max_export_batch_size=512, export_timeout_ms=30000
    )
    assert defaults.span_batch == expected
    assert defaults.log_batch == expected


def test_real_os_environ_is_ignored_when_a_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-os-environ")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "definitely-not-an-exporter")
    settings = load_settings({})
    assert settings.service_name == "hybrid-router"
    assert settings.exporters["traces"] == ("otlp",)


def test_blank_values_count_as_unset() -> None:
    settings = load_settings(
        {"OTEL_SERVICE_NAME": "   ", "OTEL_TRACES_EXPORTER": "", "OTEL_EXPORTER_OTLP_ENDPOINT": " "}
    )
    assert settings.service_name == "hybrid-router"
    assert settings.exporters["traces"] == ("otlp",)
    assert settings.otlp_for("traces").endpoint == "http://localhost:4318/v1/traces"


# --------------------------------------------------------------------------------------------
# OTLP endpoint and protocol rules (OpenTelemetry specification)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    ["http://collector:4318", "http://collector:4318/"],
    ids=["no-trailing-slash", "trailing-slash"],
)
def test_http_base_endpoint_gets_signal_path(base: str) -> None:
    settings = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": base})
    assert settings.otlp_for("traces").endpoint == "http://collector:4318/v1/traces"
    assert settings.otlp_for("metrics").endpoint == "http://collector:4318/v1/metrics"
    assert settings.otlp_for("logs").endpoint == "http://collector:4318/v1/logs"


def test_http_base_endpoint_with_path_keeps_the_path() -> None:
    settings = load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gateway.example.com/otlp/"})
    assert settings.otlp_for("traces").endpoint == "https://gateway.example.com/otlp/v1/traces"


@pytest.mark.parametrize("protocol", ["grpc", "GRPC"])
def test_grpc_base_endpoint_is_used_as_is(protocol: str) -> None:
    settings = load_settings(
        {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    )
    for signal in SIGNALS:
        assert settings.otlp_for(signal).protocol == "grpc"
        assert settings.otlp_for(signal).endpoint == "http://collector:4317"


def test_grpc_default_endpoint() -> None:
    settings = load_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    for signal in SIGNALS:
        assert settings.otlp_for(signal).endpoint == "http://localhost:4317"


@pytest.mark.parametrize(
    "specific",
    ["http://tempo:4318/custom/path", "http://tempo:4318/", "http://tempo:4318"],
)
def test_signal_specific_endpoint_is_used_as_is(specific: str) -> None:
    settings = load_settings(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": specific,
        }
    )
    assert settings.otlp_for("traces").endpoint == specific
    # The other signals still derive theirs from the base endpoint.
    assert settings.otlp_for("metrics").endpoint == "http://collector:4318/v1/metrics"
    assert settings.otlp_for("logs").endpoint == "http://collector:4318/v1/logs"


def test_signal_specific_endpoint_is_used_as_is_for_grpc() -> None:
    settings = load_settings(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.example.com:443",
        }
    )
    assert settings.otlp_for("logs").endpoint == "https://logs.example.com:443"
    assert settings.otlp_for("traces").endpoint == "http://localhost:4317"


def test_per_signal_protocol_override_to_grpc() -> None:
    settings = load_settings(
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}
    )
    traces, metrics = settings.otlp_for("traces"), settings.otlp_for("metrics")
    assert (traces.protocol, traces.endpoint) == ("grpc", "http://localhost:4317")
    assert (metrics.protocol, metrics.endpoint) == ("http/protobuf", "http://localhost:4318/v1/metrics")


def test_per_signal_protocol_override_to_http() -> None:
    settings = load_settings(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        }
    )
    metrics, logs = settings.otlp_for("metrics"), settings.otlp_for("logs")
    assert (metrics.protocol, metrics.endpoint) == ("http/protobuf", "http://collector:4317/v1/metrics")
    assert (logs.protocol, logs.endpoint) == ("grpc", "http://collector:4317")


# --------------------------------------------------------------------------------------------
# Headers, resource attributes, timeouts, compression
# --------------------------------------------------------------------------------------------


def test_headers_are_percent_decoded_and_trimmed() -> None:
    settings = load_settings(
        {"OTEL_EXPORTER_OTLP_HEADERS": " authorization = Bearer%20abc ,, x-tenant=a%2Cb,x-sig=k=v"}
    )
    expected = {"authorization": "Bearer abc", "x-tenant": "a,b", "x-sig": "k=v"}
    for signal in SIGNALS:
        assert dict(settings.otlp_for(signal).headers) == expected


def test_signal_headers_merge_over_generic_headers() -> None:
    settings = load_settings(
        {
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=generic,x-team=core",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=traces-token,x-extra=1",
        }
    )
    assert dict(settings.otlp_for("traces").headers) == {
        "authorization": "traces-token",
        "x-team": "core",
        "x-extra": "1",
    }
    assert dict(settings.otlp_for("metrics").headers) == {"authorization": "generic", "x-team": "core"}
    assert dict(settings.otlp_for("logs").headers) == {"authorization": "generic", "x-team": "core"}


def test_resource_attributes_are_parsed() -> None:
    settings = load_settings(
        {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=staging, team=router%20core,region=eu"}
    )
    assert dict(settings.resource_attributes) == {
        "deployment.environment.name": "staging",
        "team": "router core",
        "region": "eu",
    }


def test_every_bad_resource_attribute_entry_is_reported_at_once() -> None:
    problems = problems_for({"OTEL_RESOURCE_ATTRIBUTES": "a=1,,novalue,=x,bad key=2,b=3,"})
    assert all(names_variable(line, "OTEL_RESOURCE_ATTRIBUTES") for line in problems), problems
    assert [line.split(":", 1)[0] for line in problems] == [
        "OTEL_RESOURCE_ATTRIBUTES entry 2 of 7 is empty (two commas in a row, or one at an end)",
        "OTEL_RESOURCE_ATTRIBUTES entry 3 of 7 'novalue' has no '='",
        "OTEL_RESOURCE_ATTRIBUTES entry 4 of 7 '=x' has no key before '='",
        "OTEL_RESOURCE_ATTRIBUTES entry 5 of 7 'bad key=2' has white space in its key",
        "OTEL_RESOURCE_ATTRIBUTES entry 7 of 7 is empty (two commas in a row, or one at an end)",
    ]
    assert all("expected key=value pairs separated by commas" in line for line in problems)


@pytest.mark.parametrize(
    "value", ["a=1", " a = 1 , b=2 ", "a=", "a==b", "team=router%20core,k8s.pod.name=x%2Cy", "a=1,b=%3D"]
)
def test_accepted_resource_attributes_are_accepted_by_the_sdk_too(
    value: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK reads OTEL_RESOURCE_ATTRIBUTES again by itself (at import, for log records): a
    value beacon-otel accepts must not make it print "Invalid key value resource attribute pair"
    at run time, and a value it rejects is one the SDK complains about."""
    from opentelemetry.sdk.resources import OTELResourceDetector

    load_settings({"OTEL_RESOURCE_ATTRIBUTES": value})
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", value)
    OTELResourceDetector().detect()
    assert not [record for record in caplog.records if "Invalid key value" in record.getMessage()]


@pytest.mark.parametrize("value", ["a=1,,b=2", "a=1,", "novalue"])
def test_values_the_sdk_would_warn_about_are_rejected_before_the_start(
    value: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.resources import OTELResourceDetector

    assert problems_for({"OTEL_RESOURCE_ATTRIBUTES": value})
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", value)
    OTELResourceDetector().detect()
    assert [record for record in caplog.records if "Invalid key value" in record.getMessage()]


def test_otel_service_name_wins() -> None:
    settings = load_settings(
        {"OTEL_SERVICE_NAME": "checkout", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes"}
    )
    assert settings.service_name == "checkout"


def test_service_name_from_resource_attributes_when_otel_service_name_unset() -> None:
    # Specification: OTEL_SERVICE_NAME takes precedence over service.name in OTEL_RESOURCE_ATTRIBUTES,
    # so the latter must apply when OTEL_SERVICE_NAME is absent; the default is only a fallback.
    settings = load_settings({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes"})
    assert settings.service_name == "from-attributes"


def test_generic_timeout_is_milliseconds() -> None:
    settings = load_settings({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"})
    for signal in SIGNALS:
        assert settings.otlp_for(signal).timeout_seconds == pytest.approx(2.5)


def test_signal_timeout_overrides_generic() -> None:
    settings = load_settings(
        {"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "500"}
    )
    assert settings.otlp_for("traces").timeout_seconds == pytest.approx(0.5)
    assert settings.otlp_for("metrics").timeout_seconds == pytest.approx(2.5)
    assert settings.otlp_for("logs").timeout_seconds == pytest.approx(2.5)


def test_compression_generic_and_signal_override() -> None:
    settings = load_settings(
        {"OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "none"}
    )
    assert settings.otlp_for("traces").compression == "gzip"
    assert settings.otlp_for("metrics").compression == "gzip"
    assert settings.otlp_for("logs").compression == "none"


# --------------------------------------------------------------------------------------------
# Exporters, sampler, propagators, instrumentations, batches, misc
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("console,otlp", ("console", "otlp")),
        (" OTLP , Console ", ("otlp", "console")),
        ("otlp,otlp", ("otlp",)),
        ("console", ("console",)),
        ("none", ()),
        ("NONE", ()),
    ],
)
@pytest.mark.parametrize("signal", SIGNALS)
def test_exporter_lists(signal: Signal, value: str, expected: tuple[str, ...]) -> None:
    settings = load_settings({f"OTEL_{signal.upper()}_EXPORTER": value})
    assert settings.exporters[signal] == expected
    for other in SIGNALS:
        if other != signal:
            assert settings.exporters[other] == ("otlp",)


def test_exports_helper() -> None:
    settings = load_settings({"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_LOGS_EXPORTER": "none"})
    assert settings.exports("traces", "console")
    assert settings.exports("traces", "otlp")
    assert not settings.exports("logs", "otlp")
    assert not settings.exports("metrics", "console")


@pytest.mark.parametrize(
    ("sampler", "arg", "expected_sampler", "expected_arg"),
    [
        ("traceidratio", "0.25", "traceidratio", 0.25),
        ("ParentBased_TraceIdRatio", "0", "parentbased_traceidratio", 0.0),
        ("always_off", None, "always_off", None),
        ("parentbased_traceidratio", "1", "parentbased_traceidratio", 1.0),
    ],
)
def test_sampler(sampler: str, arg: str | None, expected_sampler: str, expected_arg: float | None) -> None:
    environ = {"OTEL_TRACES_SAMPLER": sampler}
    if arg is not None:
        environ["OTEL_TRACES_SAMPLER_ARG"] = arg
    settings = load_settings(environ)
    assert settings.sampler == expected_sampler
    assert settings.sampler_arg == expected_arg


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tracecontext", ("tracecontext",)),
        ("baggage, TraceContext", ("baggage", "tracecontext")),
        ("none", ()),
    ],
)
def test_propagators(value: str, expected: tuple[str, ...]) -> None:
    assert load_settings({"OTEL_PROPAGATORS": value}).propagators == expected


def test_disabled_instrumentations_with_spaces_and_case() -> None:
    settings = load_settings({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": " FastAPI , httpx,, ASYNCPG "})
    assert settings.disabled_instrumentations == frozenset({"fastapi", "httpx", "asyncpg"})
    assert not settings.instrumentation_enabled("fastapi")
    assert not settings.instrumentation_enabled("asyncpg")


def test_single_disabled_instrumentation_leaves_others_enabled() -> None:
    settings = load_settings({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "asyncpg"})
    assert settings.disabled_instrumentations == frozenset({"asyncpg"})
    assert settings.instrumentation_enabled("fastapi")
    assert settings.instrumentation_enabled("httpx")


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("TRUE", True), ("1", True), ("false", False)]
)
def test_sdk_disabled(value: str, expected: bool) -> None:
    assert load_settings({"OTEL_SDK_DISABLED": value}).sdk_disabled is expected


def test_batch_settings_per_processor() -> None:
    settings = load_settings(
        {
            "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
            "OTEL_BSP_SCHEDULE_DELAY": "1000",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096",
            "OTEL_BSP_EXPORT_TIMEOUT": "5000",
            "OTEL_BLRP_MAX_QUEUE_SIZE": "100",
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "50",
        }
    )
    assert settings.span_batch == BatchSettings(4096, 1000, 4096, 5000)
    assert settings.log_batch == BatchSettings(100, 5000, 50, 30000)


def test_beacon_specific_options() -> None:
    settings = load_settings(
        {
            "BEACON_OTEL_FASTAPI_UPSTREAM": "yes",
            "BEACON_OTEL_HTTP_SERVER_METRICS": "off",
            "BEACON_OTEL_HTTPX_UPSTREAM": "true",
            "BEACON_OTEL_ASYNCPG_UPSTREAM": "on",
            "BEACON_OTEL_EXPORT_ACCESS_LOGS": "1",
            "BEACON_OTEL_EXPORT_ERROR_INTERVAL": "2.5",
            "OTEL_METRIC_EXPORT_INTERVAL": "15000",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta",
        }
    )
    assert settings.fastapi_upstream is True
    assert settings.http_server_metrics is False
    assert settings.httpx_upstream is True
    assert settings.asyncpg_upstream is True
    assert settings.export_access_logs is True
    assert settings.export_error_interval == 2.5
    assert settings.metric_export_interval_ms == 15000
    assert settings.metrics_temporality == "delta"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "x-trace-id"),
        ({"BEACON_OTEL_LEGACY_TRACE_HEADER": ""}, None),
        ({"BEACON_OTEL_LEGACY_TRACE_HEADER": "   "}, None),
        ({"BEACON_OTEL_LEGACY_TRACE_HEADER": "X-Request-Id"}, "x-request-id"),
    ],
    ids=["unset", "empty", "blank", "custom"],
)
def test_legacy_trace_header(environ: dict[str, str], expected: str | None) -> None:
    assert load_settings(environ).legacy_trace_header == expected


def test_railway_variables_land_in_settings() -> None:
    settings = load_settings(
        {
            "RAILWAY_ENVIRONMENT": "production",
            "RAILWAY_GIT_COMMIT_SHA": "0123abcd",
            "RAILWAY_SERVICE_NAME": "hybrid-router-api",
            "RAILWAY_REPLICA_ID": "replica-7",
        }
    )
    assert settings.railway_environment == "production"
    assert settings.railway_commit_sha == "0123abcd"
    assert settings.railway_service_name == "hybrid-router-api"
    assert settings.railway_replica_id == "replica-7"
    # Railway's names do not replace the OpenTelemetry service name.
    assert settings.service_name == "hybrid-router"


# --------------------------------------------------------------------------------------------
# Invalid values: exactly one problem line per variable, naming it, with the value and the rule
# --------------------------------------------------------------------------------------------

URL_RULE = "http:// or https://"
BAD_URLS = ["localhost:4317", "ftp://x", "http://", "http://host:notaport"]


def invalid(
    variable: str, value: str, allowed: str, *, extra: dict[str, str] | None = None, id: str | None = None
) -> Any:
    """One invalid case: ``variable=value`` (plus ``extra``) must yield one problem about it."""
    environ = {**(extra or {}), variable: value}
    return pytest.param(environ, variable, value, allowed, id=id or f"{variable}={value}")


INVALID_CASES = [
    # Exporters
    invalid("OTEL_TRACES_EXPORTER", "zipkin", "otlp, console, none"),
    invalid("OTEL_METRICS_EXPORTER", "prometheus", "otlp, console, none"),
    invalid("OTEL_LOGS_EXPORTER", "otlp,jaeger", "otlp, console, none"),
    invalid("OTEL_TRACES_EXPORTER", ",", "otlp, console, none"),
    invalid("OTEL_LOGS_EXPORTER", "none,otlp", "'none' cannot be combined"),
    invalid("OTEL_TRACES_EXPORTER", "console,none", "'none' cannot be combined"),
    # Protocols
    invalid("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "grpc or http/protobuf"),
    invalid("OTEL_EXPORTER_OTLP_PROTOCOL", "foo", "grpc or http/protobuf"),
    invalid("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", "grpc or http/protobuf"),
    invalid("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "foo", "grpc or http/protobuf"),
    # Sampler
    invalid("OTEL_TRACES_SAMPLER", "probabilistic", "parentbased_always_on"),
    invalid("OTEL_TRACES_SAMPLER_ARG", "abc", "between 0 and 1"),
    invalid("OTEL_TRACES_SAMPLER_ARG", "1.5", "between 0 and 1"),
    invalid("OTEL_TRACES_SAMPLER_ARG", "-0.1", "between 0 and 1"),
    invalid("OTEL_TRACES_SAMPLER_ARG", "nan", "between 0 and 1"),
    # Resource attributes
    invalid("OTEL_RESOURCE_ATTRIBUTES", "novalue", "key=value"),
    invalid("OTEL_RESOURCE_ATTRIBUTES", "=x", "key=value"),
    invalid("OTEL_RESOURCE_ATTRIBUTES", "bad key=1", "key=value"),
    # Endpoints: generic and signal-specific
    *[invalid("OTEL_EXPORTER_OTLP_ENDPOINT", url, URL_RULE) for url in BAD_URLS],
    *[invalid("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, URL_RULE) for url in BAD_URLS],
    invalid("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://host:99999", URL_RULE),
    # Booleans
    invalid("OTEL_SDK_DISABLED", "maybe", "true or false"),
    invalid("BEACON_OTEL_FASTAPI_UPSTREAM", "sometimes", "true or false"),
    invalid("BEACON_OTEL_ASGI_INTERNAL_SPANS", "sometimes", "true or false"),
    invalid("BEACON_OTEL_HTTP_SERVER_METRICS", "2", "true or false"),
    invalid("BEACON_OTEL_HTTPX_UPSTREAM", "upstream", "true or false"),
    invalid("BEACON_OTEL_ASYNCPG_UPSTREAM", "upstream", "true or false"),
    invalid("BEACON_OTEL_EXPORT_ACCESS_LOGS", "all", "true or false"),
    # Batch processors
    invalid("OTEL_BSP_MAX_QUEUE_SIZE", "0", "above 0"),
    invalid("OTEL_BSP_MAX_QUEUE_SIZE", "ten", "above 0"),
    invalid("OTEL_BSP_SCHEDULE_DELAY", "-5", "above 0"),
    invalid("OTEL_BLRP_EXPORT_TIMEOUT", "1.5", "above 0"),
    invalid(
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "200",
        "must not exceed OTEL_BSP_MAX_QUEUE_SIZE=100",
        extra={"OTEL_BSP_MAX_QUEUE_SIZE": "100"},
        id="OTEL_BSP batch > queue",
    ),
    invalid(
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
        "4096",
        "must not exceed OTEL_BLRP_MAX_QUEUE_SIZE=2048",
        id="OTEL_BLRP batch > default queue",
    ),
    invalid("OTEL_METRIC_EXPORT_INTERVAL", "0", "above 0"),
    # Timeouts
    invalid("OTEL_EXPORTER_OTLP_TIMEOUT", "abc", "milliseconds"),
    invalid("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "milliseconds"),
    invalid("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1", "milliseconds"),
    # Compression
    invalid("OTEL_EXPORTER_OTLP_COMPRESSION", "br", "none, gzip"),
    invalid("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "deflate", "none, gzip"),
    # Propagators
    invalid("OTEL_PROPAGATORS", "b3", "tracecontext, baggage, none"),
    invalid("OTEL_PROPAGATORS", "tracecontext,b3multi", "tracecontext, baggage, none"),
    # Metrics temporality
    invalid("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes", "cumulative, delta"),
    # Legacy trace header
    invalid("BEACON_OTEL_LEGACY_TRACE_HEADER", "X Trace", "HTTP header name"),
    invalid("BEACON_OTEL_LEGACY_TRACE_HEADER", "x-trace:id", "HTTP header name"),
    # Export error interval
    invalid("BEACON_OTEL_EXPORT_ERROR_INTERVAL", "0", "above 0"),
    invalid("BEACON_OTEL_EXPORT_ERROR_INTERVAL", "-3", "above 0"),
    invalid("BEACON_OTEL_EXPORT_ERROR_INTERVAL", "soon", "above 0"),
    invalid("BEACON_OTEL_EXPORT_ERROR_INTERVAL", "inf", "above 0"),
    # Logging
    invalid("BEACON_OTEL_LOG_FORMAT", "xml", "auto, json, console, none"),
    invalid("BEACON_OTEL_LOG_LEVEL", "verbose", "debug, info, warning, error, critical"),
    invalid("BEACON_OTEL_SCRUB_PATTERNS", "sk-[a-z", "not a valid regular expression"),
    # Provider telemetry
    invalid("BEACON_OTEL_HEALTH_INTERVAL", "0", "above 0"),
    invalid("BEACON_OTEL_HEALTH_INTERVAL", "often", "above 0"),
    invalid("BEACON_OTEL_PROVIDER_HOOKS", "my-router.core", "module path with an optional class"),
]


def test_provider_settings() -> None:
    settings = load_settings(
        {
            "BEACON_OTEL_HEALTH_INTERVAL": "2.5",
            "BEACON_OTEL_PROVIDER_HOOKS": "demo_router.router, app.routing:Router",
        }
    )
    assert settings.health_interval == 2.5
    assert settings.provider_hooks == (("demo_router.router", "HybridRouter"), ("app.routing", "Router"))
    assert load_settings({}).health_interval is None


def test_logging_settings() -> None:
    settings = load_settings(
        {
            "BEACON_OTEL_LOG_FORMAT": "Console",
            "BEACON_OTEL_LOG_LEVEL": "WARNING",
            "BEACON_OTEL_SCRUB_PATTERNS": " sk-[A-Za-z0-9]{20,}\n  (?i)pin=(?P<secret>\\d+) ",
        }
    )
    assert settings.log_format == "console"
    assert settings.log_level == "warning"
    assert settings.scrub_patterns == ("sk-[A-Za-z0-9]{20,}", "(?i)pin=(?P<secret>\\d+)")
    defaults = load_settings({})
    assert (defaults.log_format, defaults.log_level, defaults.scrub_patterns) == ("auto", None, ())


def test_each_bad_scrub_pattern_is_named() -> None:
    problems = problems_for({"BEACON_OTEL_SCRUB_PATTERNS": "ok-[0-9]+ (bad [worse"})
    assert len(problems) == 2
    assert all("BEACON_OTEL_SCRUB_PATTERNS" in line for line in problems)
    assert "'(bad'" in problems[0] and "'[worse'" in problems[1]


@pytest.mark.parametrize(("environ", "variable", "value", "allowed"), INVALID_CASES)
def test_invalid_value_gives_exactly_one_problem(
    environ: dict[str, str], variable: str, value: str, allowed: str
) -> None:
    problems = problems_for(environ)
    assert len(problems) == 1, f"expected one problem line, got {problems}"
    (line,) = problems
    assert names_variable(line, variable), line
    assert value in line, line
    assert allowed in line, line


SECRET = "SECRETX"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization Bearer {SECRET}"),
        ("OTEL_EXPORTER_OTLP_HEADERS", f"x-team=core,{SECRET}"),
        ("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization Bearer={SECRET}"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", f"Authorization Bearer {SECRET}"),
        ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", f"={SECRET}"),
    ],
)
def test_invalid_headers_give_one_problem_without_echoing_the_value(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    error = caught.value
    assert SECRET not in str(error)
    assert SECRET not in repr(error.args)
    assert all(SECRET not in line for line in error.problems)
    assert len(error.problems) == 1, f"expected one problem line, got {error.problems}"
    (line,) = error.problems
    assert names_variable(line, variable), line
    assert "key=value" in line, line


@pytest.mark.parametrize(
    ("option", "value", "override"),
    [
        ("ENDPOINT", "ftp://x", "http://collector:4318"),
        ("PROTOCOL", "http/json", "grpc"),
        ("TIMEOUT", "abc", "1000"),
    ],
)
def test_invalid_generic_value_is_reported_even_when_every_signal_overrides_it(
    option: str, value: str, override: str
) -> None:
    variable = f"OTEL_EXPORTER_OTLP_{option}"
    environ = {variable: value}
    for signal in SIGNALS:
        environ[f"OTEL_EXPORTER_OTLP_{signal.upper()}_{option}"] = override
    problems = problems_for(environ)
    assert len(problems) == 1, problems
    assert names_variable(problems[0], variable)
    assert value in problems[0]


def test_several_invalid_variables_are_all_reported_once_each() -> None:
    environ = {
        "OTEL_TRACES_EXPORTER": "zipkin",
        "OTEL_LOGS_EXPORTER": "none,otlp",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "localhost:4317",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS": f"Authorization Bearer {SECRET}",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "soon",
        "OTEL_TRACES_SAMPLER": "sometimes",
        "OTEL_TRACES_SAMPLER_ARG": "1.5",
        "OTEL_RESOURCE_ATTRIBUTES": "novalue",
        "OTEL_SDK_DISABLED": "maybe",
        "OTEL_BSP_MAX_QUEUE_SIZE": "ten",
        "OTEL_PROPAGATORS": "b3",
        "BEACON_OTEL_LEGACY_TRACE_HEADER": "X Trace",
        "BEACON_OTEL_EXPORT_ERROR_INTERVAL": "0",
    }
    problems = problems_for(environ)
    assert len(problems) == len(environ), problems
    for variable in environ:
        assert len(lines_about(problems, variable)) == 1, (variable, problems)
    assert all(SECRET not in line for line in problems)


def test_several_invalid_generic_otlp_variables_are_reported_once_each() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "foo",
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization Bearer {SECRET}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "abc",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "br",
    }
    problems = problems_for(environ)
    for variable in environ:
        assert len(lines_about(problems, variable)) == 1, (variable, problems)
    assert len(problems) == len(environ), problems


# --------------------------------------------------------------------------------------------
# child_environment
# --------------------------------------------------------------------------------------------

BOOT = os.path.join(os.sep, "opt", "beacon", "bootstrap")
A = os.path.join(os.sep, "srv", "app")
B = os.path.join(os.sep, "srv", "lib")


def pythonpath(*parts: str) -> str:
    return os.pathsep.join(parts)


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, pythonpath(BOOT)),
        ("", pythonpath(BOOT)),
        (pythonpath(A), pythonpath(BOOT, A)),
        (pythonpath(A, B), pythonpath(BOOT, A, B)),
        (pythonpath(A, BOOT, B), pythonpath(BOOT, A, B)),
        (pythonpath(BOOT, A), pythonpath(BOOT, A)),
        (pythonpath(BOOT, A, BOOT), pythonpath(BOOT, A)),
        (pythonpath("", A, "", B, ""), pythonpath(BOOT, A, B)),
    ],
    ids=["unset", "empty", "one", "two", "boot-in-middle", "boot-first", "boot-twice", "empty-parts"],
)
def test_child_environment_pythonpath(existing: str | None, expected: str) -> None:
    environ = {"HOME": "/home/app"}
    if existing is not None:
        environ["PYTHONPATH"] = existing
    child = child_environment(BOOT, environ)
    assert child["PYTHONPATH"] == expected
    parts = child["PYTHONPATH"].split(os.pathsep)
    assert parts[0] == BOOT
    assert parts.count(BOOT) == 1


def test_child_environment_keeps_other_variables_and_does_not_mutate_input() -> None:
    environ = {"PYTHONPATH": pythonpath(A, B), "OTEL_SERVICE_NAME": "checkout", "PATH": "/usr/bin"}
    original = dict(environ)
    child = child_environment(BOOT, environ)
    assert environ == original
    assert child is not environ
    assert child == {**original, "PYTHONPATH": pythonpath(BOOT, A, B)}
    for part in (A, B):
        assert child["PYTHONPATH"].split(os.pathsep).count(part) == 1


def test_child_environment_is_idempotent() -> None:
    once = child_environment(BOOT, {"PYTHONPATH": pythonpath(A, B)})
    assert child_environment(BOOT, once) == once


# --------------------------------------------------------------------------------------------
# The upstream HTTP instrumentations' variables, and OTEL_* variables without effect
# --------------------------------------------------------------------------------------------

URLS = [
    "http://example.com/health",
    "http://example.com/ready?x=1",
    "http://example.com/providers",
    "https://api.example.com/v1/HEALTHZ",
]


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_PYTHON_EXCLUDED_URLS": "/health,ready"},
        {"OTEL_PYTHON_EXCLUDED_URLS": "/health", "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "providers"},
        {"OTEL_PYTHON_EXCLUDED_URLS": "/health", "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": ""},
        {"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": " (?i)healthz$ "},
    ],
)
def test_excluded_urls_match_what_the_upstream_helper_excludes(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same URLs excluded as opentelemetry-util-http's get_excluded_urls("FASTAPI") would."""
    from opentelemetry.util.http import ExcludeList, get_excluded_urls

    for name in ("OTEL_PYTHON_EXCLUDED_URLS", "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    ours = ExcludeList(list(load_settings(environ).http_instrumentation.fastapi_excluded_urls))
    upstream = get_excluded_urls("FASTAPI")
    assert [ours.url_disabled(url) for url in URLS] == [upstream.url_disabled(url) for url in URLS]


def test_each_library_has_its_own_excluded_urls_over_the_generic_ones() -> None:
    http = load_settings(
        {"OTEL_PYTHON_EXCLUDED_URLS": "/health", "OTEL_PYTHON_HTTPX_EXCLUDED_URLS": "golem"}
    ).http_instrumentation
    assert http.fastapi_excluded_urls == http.starlette_excluded_urls == ("/health",)
    assert http.httpx_excluded_urls == ("golem",)


@pytest.mark.parametrize("value", ["content-type, X-.*", "a,,b", " ", ".*"])
def test_header_lists_are_split_as_the_upstream_helper_splits_them(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.util.http import get_custom_headers

    name = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"
    monkeypatch.setenv(name, value)
    assert list(
        load_settings({name: value}).http_instrumentation.server_request_headers
    ) == get_custom_headers(name)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OTEL_PYTHON_EXCLUDED_URLS", "/health,", "entry 2 of 2 is empty"),
        ("OTEL_PYTHON_HTTPX_EXCLUDED_URLS", " ", "entry 1 of 1 is empty"),
        ("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "/a(b", "'/a(b', which is not a valid regular expression"),
        ("OTEL_PYTHON_EXCLUDED_URLS", "/health,(?i)ready", "joined with '|'"),
        ("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", "x-[", "not a valid regular expression"),
        (
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS",
            "*token",
            "not a valid regular expression",
        ),
    ],
)
def test_an_unusable_pattern_list_is_one_problem_naming_its_variable(
    variable: str, value: str, expected: str
) -> None:
    (problem,) = problems_for({variable: value})
    assert names_variable(problem, variable) and expected in problem, problem


@pytest.mark.parametrize(
    ("value", "mode", "dup"),
    [
        ("", "default", False),
        ("database", "default", False),
        ("http", "http", False),
        ("http, http/dup", "http/dup", True),
    ],
)
def test_semconv_opt_in_modes(value: str, mode: str, dup: bool) -> None:
    http = load_settings({"OTEL_SEMCONV_STABILITY_OPT_IN": value}).http_instrumentation
    assert http.http_mode == mode and http.duplicate_old_names is dup


@pytest.mark.parametrize(("value", "on"), [("", False), ("true", True), ("false", True), ("1", True)])
def test_capture_all_methods_is_on_for_any_value_as_upstream(value: str, on: bool) -> None:
    variables = load_settings(
        {"OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS": value}
    ).http_instrumentation
    assert variables.capture_all_methods is on


@pytest.mark.parametrize(
    ("environ", "upstream"),
    [
        ({"BEACON_OTEL_ASGI_INTERNAL_SPANS": "true"}, True),
        ({"BEACON_OTEL_ASGI_INTERNAL_SPANS": "true", "BEACON_OTEL_FASTAPI_UPSTREAM": "yes"}, True),
        ({"BEACON_OTEL_FASTAPI_UPSTREAM": "true"}, True),
        ({"BEACON_OTEL_ASGI_INTERNAL_SPANS": "false"}, False),
    ],
)
def test_the_former_name_of_the_fastapi_switch_still_works(environ: dict[str, str], upstream: bool) -> None:
    assert load_settings(environ).fastapi_upstream is upstream


def test_the_former_and_the_new_name_must_agree() -> None:
    (problem,) = problems_for(
        {"BEACON_OTEL_ASGI_INTERNAL_SPANS": "true", "BEACON_OTEL_FASTAPI_UPSTREAM": "false"}
    )
    assert "BEACON_OTEL_ASGI_INTERNAL_SPANS" in problem and "BEACON_OTEL_FASTAPI_UPSTREAM" in problem


def _upstream_variable_names() -> set[str]:
    import opentelemetry.environment_variables as api
    import opentelemetry.sdk.environment_variables as sdk
    import opentelemetry.util.http as util_http

    return {
        value
        for module in (api, sdk, util_http)
        for key, value in vars(module).items()
        if key.lstrip("_").startswith("OTEL_") and isinstance(value, str) and value.startswith("OTEL_")
    }


def test_every_variable_of_the_sdk_and_instrumentation_packages_is_classified() -> None:
    """A new SDK release with a new variable fails here until someone decides what it does
    under beacon-otel: read by the settings, honoured by the SDK itself, or without effect."""
    from beacon_otel.config_warnings import HONOURED_UPSTREAM, NOT_HONOURED
    from beacon_otel.settings import variables_read

    known = variables_read() | HONOURED_UPSTREAM | set(NOT_HONOURED)
    assert sorted(_upstream_variable_names() - known) == []
    assert not variables_read() & set(NOT_HONOURED) and not HONOURED_UPSTREAM & set(NOT_HONOURED)


def _warnings(environ: dict[str, str]) -> dict[str, str]:
    from beacon_otel.config_warnings import configuration_warnings

    return {
        warning.topic: warning.message for warning in configuration_warnings(load_settings(environ), environ)
    }


def test_a_default_environment_has_no_warning() -> None:
    assert _warnings({"PATH": "/bin", "OTEL_SERVICE_NAME": "router"}) == {}


def test_every_supported_variable_set_at_once_has_no_otel_variables_warning() -> None:
    from beacon_otel.config_warnings import HONOURED_UPSTREAM
    from beacon_otel.settings import variables_read

    environ = {name: "" for name in (variables_read() | HONOURED_UPSTREAM) if name.startswith("OTEL_")}
    assert "otel-variables" not in _warnings(environ)


def test_unsupported_otel_variables_are_named_with_their_reason_in_one_warning() -> None:
    message = _warnings(
        {"OTEL_LOG_LEVEL": "debug", "OTEL_PYTHON_DJANGO_EXCLUDED_URLS": "/x", "OTEL_TRACES_EXPORTER": "otlp"}
    )["otel-variables"]
    assert message.startswith("2 OTEL_* variables set here have no effect")
    assert "OTEL_LOG_LEVEL (the Python SDK does not read it" in message
    assert "OTEL_PYTHON_DJANGO_EXCLUDED_URLS (read by neither" in message
    assert "OTEL_TRACES_EXPORTER" not in message


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"BEACON_OTEL_HTTPX_UPSTREAM": "true"},
            "upstream httpx instrumentation emits the old HTTP attribute",
        ),
        ({"OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup"}, "HTTP metrics keep the stable names only"),
        ({"OTEL_SEMCONV_STABILITY_OPT_IN": "http,htp"}, "htp is not an opt-in"),
        ({"OTEL_SEMCONV_STABILITY_OPT_IN": "http,database/dup"}, "asyncpg spans carry the stable database"),
    ],
)
def test_semconv_warnings_say_where_the_names_will_differ(environ: dict[str, str], expected: str) -> None:
    message = _warnings(environ)["semconv"]
    assert message.startswith("OTEL_SEMCONV_STABILITY_OPT_IN") and expected in message, message


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_SEMCONV_STABILITY_OPT_IN": "http", "BEACON_OTEL_HTTPX_UPSTREAM": "true"},
        {"BEACON_OTEL_HTTPX_UPSTREAM": "true", "BEACON_OTEL_FASTAPI_UPSTREAM": "true"},
        {"BEACON_OTEL_HTTPX_UPSTREAM": "true", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "fastapi"},
    ],
)
def test_no_semconv_warning_when_every_http_span_uses_the_same_names(environ: dict[str, str]) -> None:
    assert "semconv" not in _warnings(environ)


def test_a_false_looking_capture_all_methods_value_is_warned_about() -> None:
    message = _warnings({"OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS": "false"})["http-methods"]
    assert "turns the option ON" in message
