"""Every environment variable beacon-otel reads, parsed and validated in one place.

Nothing else in the package looks at ``os.environ``: the rest of the code receives a frozen
:class:`Settings`. Parsing never stops at the first mistake; it collects one line per problem so
that ``beacon-otel-run`` can show them all before the app starts.

The launcher imports this module in an interpreter of its own before the app starts, so it
stays light: records are NamedTuples (dataclasses pull in ``inspect`` and generate code at
import), and ``re`` and ``urllib.parse`` are imported only by the checks that need them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple, TypeVar, overload

Signal = Literal["traces", "metrics", "logs"]
Protocol = Literal["grpc", "http/protobuf"]

SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")
EXPORTER_NAMES = ("otlp", "console", "none")
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
PROPAGATORS = ("tracecontext", "baggage", "none")
INSTRUMENTATIONS = ("fastapi", "httpx", "asyncpg", "providers")
COMPRESSIONS = ("none", "gzip")
LOG_FORMATS = ("auto", "json", "console", "none")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

DEFAULT_SERVICE_NAME = "hybrid-router"
# The router's legacy tracer: its own trace_spans INSERTs and UPDATEs are not the app's work.
DEFAULT_UNTRACED_METHODS: tuple[tuple[str, str, str], ...] = (
    ("hybrid_router.tracing", "DBTracer", "start_span"),
    ("hybrid_router.tracing", "DBTracer", "complete_span"),
)
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
_HTTP_SIGNAL_PATHS: dict[Signal, str] = {"traces": "v1/traces", "metrics": "v1/metrics", "logs": "v1/logs"}


class ConfigError(Exception):
    """The environment holds one or more invalid values; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid beacon-otel configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class OtlpSettings(NamedTuple):
    """Where and how one signal is sent over OTLP."""

    endpoint: str
    protocol: Protocol
    headers: Mapping[str, str]
    timeout_seconds: float
    compression: Literal["none", "gzip"]


class BatchSettings(NamedTuple):
    """Queue and batch limits: they bound memory when the backend is down."""

    max_queue_size: int = 2048
    schedule_delay_ms: int = 5000
    max_export_batch_size: int = 512
    export_timeout_ms: int = 30000


class HttpInstrumentationVariables(NamedTuple):
    """The standard variables of the upstream HTTP instrumentations (opentelemetry-util-http's),
    which beacon-otel's own server and client spans honour with the same meaning.

    Lists are kept as the upstream instrumentations split them (comma-separated, each entry
    stripped): regular expressions of URLs to leave untraced, of header names to capture, and of
    header names whose captured values are replaced by ``[REDACTED]``.
    """

    fastapi_excluded_urls: tuple[str, ...] = ()  # OTEL_PYTHON_FASTAPI_EXCLUDED_URLS, else the generic one
    starlette_excluded_urls: tuple[str, ...] = ()  # OTEL_PYTHON_STARLETTE_EXCLUDED_URLS, else the generic one
    httpx_excluded_urls: tuple[str, ...] = ()  # OTEL_PYTHON_HTTPX_EXCLUDED_URLS, else the generic one
    server_request_headers: tuple[str, ...] = ()
    server_response_headers: tuple[str, ...] = ()
    client_request_headers: tuple[str, ...] = ()
    client_response_headers: tuple[str, ...] = ()
    sanitize_fields: tuple[str, ...] = ()
    semconv_opt_in: tuple[str, ...] = ()  # OTEL_SEMCONV_STABILITY_OPT_IN's entries
    capture_all_methods: bool = False  # OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS

    @property
    def duplicate_old_names(self) -> bool:
        """``http/dup``: spans carry the old HTTP attribute names beside the stable ones."""
        return "http/dup" in self.semconv_opt_in

    @property
    def http_mode(self) -> str:
        """``http/dup``, ``http`` or ``default``, as the upstream instrumentations pick it
        (``http/dup`` wins when both are named)."""
        if "http/dup" in self.semconv_opt_in:
            return "http/dup"
        return "http" if "http" in self.semconv_opt_in else "default"


EXEMPLAR_FILTER_VARIABLE = "OTEL_METRICS_EXEMPLAR_FILTER"
EXEMPLAR_FILTERS = ("trace_based", "always_on", "always_off")
DEFAULT_EXEMPLAR_FILTER = "trace_based"


def exemplar_filter_named(value: str | None) -> tuple[str, str | None]:
    """The exemplar filter ``value`` names (unset or empty: the SDK's default), and a warning
    when it names none. The SDK itself would raise while building the meter provider, leaving
    the app without telemetry: here the value gets the default and one warning instead."""
    if value is None or not value.strip():
        return DEFAULT_EXEMPLAR_FILTER, None
    wanted = value.strip().lower()
    if wanted in EXEMPLAR_FILTERS:
        return wanted, None
    return DEFAULT_EXEMPLAR_FILTER, (
        f"{EXEMPLAR_FILTER_VARIABLE}={value!r} is not one of {', '.join(EXEMPLAR_FILTERS)}: metrics "
        f"keep exemplars as with the SDK's default, {DEFAULT_EXEMPLAR_FILTER} (measurements made "
        "under a sampled span)"
    )


_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
_OTLP_FOR_EVERY_SIGNAL: Mapping[Signal, tuple[str, ...]] = MappingProxyType(
    {signal: ("otlp",) for signal in SIGNALS}
)


class Settings(NamedTuple):
    """The whole validated configuration of one process."""

    sdk_disabled: bool = False
    allow_uninstrumented: bool = False  # beacon-otel-run: a command whose Python lacks beacon-otel still runs
    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: Mapping[str, str] = _NO_ATTRIBUTES
    railway_environment: str | None = None
    railway_commit_sha: str | None = None
    railway_service_name: str | None = None
    railway_replica_id: str | None = None
    exporters: Mapping[Signal, tuple[str, ...]] = _OTLP_FOR_EVERY_SIGNAL
    otlp: Mapping[Signal, OtlpSettings] = MappingProxyType({})
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None
    propagators: tuple[str, ...] = ("tracecontext", "baggage")
    disabled_instrumentations: frozenset[str] = frozenset()
    span_batch: BatchSettings = BatchSettings()
    log_batch: BatchSettings = BatchSettings()
    metric_export_interval_ms: int = 60000
    metrics_temporality: str = "cumulative"
    legacy_trace_header: str | None = "x-trace-id"
    fastapi_upstream: bool = False  # the upstream FastAPI instrumentation instead of beacon-otel's middleware
    httpx_upstream: bool = False  # the upstream httpx instrumentation instead of beacon-otel's
    asyncpg_upstream: bool = False  # the upstream asyncpg instrumentation instead of beacon-otel's
    http_server_metrics: bool = True
    metrics_exemplar_filter: str = DEFAULT_EXEMPLAR_FILTER  # one of EXEMPLAR_FILTERS
    export_error_interval: float = 60.0
    shutdown_timeout: float = 5.0  # seconds for the whole exit: flush, export, shut down
    log_format: str = "auto"
    log_level: str | None = None  # None: the levels Python and the app set, as without beacon-otel
    export_access_logs: bool = False  # the server span already records each request
    scrub_patterns: tuple[str, ...] = ()
    provider_hooks: tuple[tuple[str, str], ...] = ()  # (module, class) beyond the default
    health_interval: float | None = None  # seconds; None: no continuous monitoring
    untraced_methods: tuple[tuple[str, str, str], ...] = DEFAULT_UNTRACED_METHODS  # (module, class, method)
    http_instrumentation: HttpInstrumentationVariables = HttpInstrumentationVariables()

    def otlp_for(self, signal: Signal) -> OtlpSettings:
        return self.otlp[signal]

    def exports(self, signal: Signal, exporter: str) -> bool:
        return exporter in self.exporters[signal]

    def instrumentation_enabled(self, name: str) -> bool:
        return name not in self.disabled_instrumentations


T = TypeVar("T")


class _Reader:
    """Reads variables from one mapping, remembering every problem instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []
        self.names: set[str] = set()  # every variable asked for: the ones beacon-otel reads

    def raw(self, name: str) -> str | None:
        self.names.add(name)
        value = self.environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def problem(self, name: str, value: str, allowed: str) -> None:
        self.problems.append(f"{name}={value!r} is invalid: {allowed}")

    def parsed(self, name: str, default: T, parse: Callable[[str], T], allowed: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError:
            self.problem(name, value, allowed)
            return default

    def boolean(self, name: str, default: bool) -> bool:
        return self.parsed(name, default, _parse_bool, "expected true or false")

    def positive_int(self, name: str, default: int) -> int:
        return self.parsed(name, default, _parse_positive_int, "expected a whole number above 0")

    def seconds(self, name: str, default: float) -> float:
        return self.parsed(name, default, _parse_positive_float, "expected seconds, a number above 0")

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in allowed:
            self.problem(name, value, "expected one of " + ", ".join(allowed))
            return default
        return value.lower()


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(value)


def _parse_positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


def _parse_positive_float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(value)
    return number


def _parse_ratio(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(value)
    return number


def parse_key_value_list(text: str) -> dict[str, str]:
    """Parse the ``key=value,key2=value2`` format of OTEL_RESOURCE_ATTRIBUTES and OTLP headers.

    Keys and values are percent-decoded, as the specification asks. Raises ValueError naming
    the position of the first malformed entry, never its value: headers carry secrets.
    """
    from urllib.parse import unquote

    result: dict[str, str] = {}
    for position, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key = unquote(key.strip())
        if not sep or not key or any(char.isspace() for char in key):
            raise ValueError(f"entry {position} is not key=value")
        result[key] = unquote(value.strip())
    return result


def _validate_url(value: str) -> str:
    from urllib.parse import urlsplit

    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(value)
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(value) from None
    return value


_URL_ALLOWED = "expected an http:// or https:// URL with a host, e.g. http://localhost:4318"
_PROTOCOL_ALLOWED = "expected grpc or http/protobuf (http/json is not supported by the Python exporters)"
_TIMEOUT_ALLOWED = "expected milliseconds, a number above 0"


class _OtlpOverrides(NamedTuple):
    """The OTLP variables of one scope: generic (``OTEL_EXPORTER_OTLP_*``) or one signal's."""

    endpoint: str | None
    protocol: Protocol | None
    headers: dict[str, str]
    timeout_ms: float | None
    compression: str | None


def _otlp_overrides(reader: _Reader, prefix: str) -> _OtlpOverrides:
    """Read and validate one scope's variables once, so each problem is reported once."""
    protocol = reader.raw(f"{prefix}_PROTOCOL")
    if protocol is not None and protocol.lower() not in PROTOCOLS:
        reader.problem(f"{prefix}_PROTOCOL", protocol, _PROTOCOL_ALLOWED)
        protocol = None
    headers: dict[str, str] = {}
    raw_headers = reader.raw(f"{prefix}_HEADERS")
    if raw_headers is not None:
        try:
            headers = parse_key_value_list(raw_headers)
        except ValueError as error:
            # Never echo the value: it usually holds a token.
            reader.problems.append(
                f"{prefix}_HEADERS is invalid: {error}; expected key=value pairs separated by commas "
                "(values percent-encoded), e.g. authorization=Bearer%20abc"
            )
    compression = reader.raw(f"{prefix}_COMPRESSION")
    if compression is not None:
        compression = reader.choice(f"{prefix}_COMPRESSION", "", COMPRESSIONS) or None
    return _OtlpOverrides(
        endpoint=reader.parsed(f"{prefix}_ENDPOINT", None, _validate_url, _URL_ALLOWED),
        protocol=protocol.lower() if protocol else None,  # type: ignore[arg-type]
        headers=headers,
        timeout_ms=reader.parsed(f"{prefix}_TIMEOUT", None, _parse_positive_float, _TIMEOUT_ALLOWED),
        compression=compression,
    )


def _otlp_settings(generic: _OtlpOverrides, specific: _OtlpOverrides, signal: Signal) -> OtlpSettings:
    """Combine the generic and the signal's variables by the specification's rules.

    A signal endpoint is used as is; the generic one gets ``/v1/<signal>`` appended for
    OTLP/HTTP and is used as is for gRPC. Signal headers are merged over generic ones.
    """
    protocol: Protocol = specific.protocol or generic.protocol or "http/protobuf"
    if specific.endpoint:
        endpoint = specific.endpoint
    elif protocol == "grpc":
        endpoint = generic.endpoint or DEFAULT_GRPC_ENDPOINT
    else:
        endpoint = (generic.endpoint or DEFAULT_HTTP_ENDPOINT).rstrip("/") + "/" + _HTTP_SIGNAL_PATHS[signal]
    timeout_ms = specific.timeout_ms or generic.timeout_ms or 10000.0
    return OtlpSettings(
        endpoint=endpoint,
        protocol=protocol,
        headers={**generic.headers, **specific.headers},
        timeout_seconds=timeout_ms / 1000.0,
        compression=(specific.compression or generic.compression or "none"),  # type: ignore[arg-type]
    )


def _all_otlp_settings(reader: _Reader) -> dict[Signal, OtlpSettings]:
    generic = _otlp_overrides(reader, "OTEL_EXPORTER_OTLP")
    return {
        signal: _otlp_settings(
            generic, _otlp_overrides(reader, f"OTEL_EXPORTER_OTLP_{signal.upper()}"), signal
        )
        for signal in SIGNALS
    }


def _exporters(reader: _Reader, signal: Signal) -> tuple[str, ...]:
    name = f"OTEL_{signal.upper()}_EXPORTER"
    value = reader.raw(name)
    if value is None:
        return ("otlp",)
    names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [part for part in names if part not in EXPORTER_NAMES]
    if unknown or not names:
        reader.problem(name, value, "expected a comma-separated list of " + ", ".join(EXPORTER_NAMES))
        return ("otlp",)
    if "none" in names:
        if len(names) > 1:
            reader.problem(name, value, "'none' cannot be combined with other exporters")
        return ()
    return names


def _propagators(reader: _Reader) -> tuple[str, ...]:
    value = reader.raw("OTEL_PROPAGATORS")
    if value is None:
        return ("tracecontext", "baggage")
    names = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    unknown = [part for part in names if part not in PROPAGATORS]
    if unknown:
        reader.problem(
            "OTEL_PROPAGATORS", value, "expected a comma-separated list of " + ", ".join(PROPAGATORS)
        )
        return ("tracecontext", "baggage")
    return tuple(name for name in names if name != "none")


def _batch(reader: _Reader, prefix: str) -> BatchSettings:
    defaults = BatchSettings()
    batch = BatchSettings(
        max_queue_size=reader.positive_int(f"{prefix}_MAX_QUEUE_SIZE", defaults.max_queue_size),
        schedule_delay_ms=reader.positive_int(f"{prefix}_SCHEDULE_DELAY", defaults.schedule_delay_ms),
        max_export_batch_size=reader.positive_int(
            f"{prefix}_MAX_EXPORT_BATCH_SIZE", defaults.max_export_batch_size
        ),
        export_timeout_ms=reader.positive_int(f"{prefix}_EXPORT_TIMEOUT", defaults.export_timeout_ms),
    )
    if batch.max_export_batch_size > batch.max_queue_size:
        reader.problems.append(
            f"{prefix}_MAX_EXPORT_BATCH_SIZE={batch.max_export_batch_size} is invalid: "
            f"it must not exceed {prefix}_MAX_QUEUE_SIZE={batch.max_queue_size}"
        )
        return defaults
    return batch


def _resource_attributes(reader: _Reader) -> dict[str, str]:
    """``key=value`` pairs, comma-separated, percent-decoded; one problem per bad entry.

    Empty entries (``a=1,,b=2``, a trailing comma) are rejected like any other malformed one:
    the W3C Baggage format the specification uses has none, and the SDK, which reads this
    variable again on its own, would print a warning for each at run time.
    """
    name = "OTEL_RESOURCE_ATTRIBUTES"
    value = reader.raw(name)
    if value is None:
        return {}
    from urllib.parse import unquote

    entries = value.split(",")
    result: dict[str, str] = {}
    for position, entry in enumerate(entries, start=1):
        key, sep, item = entry.partition("=")
        key = unquote(key.strip())
        if not entry.strip():
            fault = "is empty (two commas in a row, or one at an end)"
        elif not sep:
            fault = f"{entry.strip()!r} has no '='"
        elif not key:
            fault = f"{entry.strip()!r} has no key before '='"
        elif any(char.isspace() for char in key):
            fault = f"{entry.strip()!r} has white space in its key"
        else:
            result[key] = unquote(item.strip())
            continue
        reader.problems.append(
            f"{name} entry {position} of {len(entries)} {fault}: expected key=value pairs separated "
            "by commas, e.g. deployment.environment.name=staging,team=router"
        )
    return result


def _legacy_header(reader: _Reader) -> str | None:
    name = "BEACON_OTEL_LEGACY_TRACE_HEADER"
    if name in reader.environ and not reader.environ[name].strip():
        return None  # explicitly set empty: the bridge is off
    value = reader.raw(name)
    if value is None:
        return "x-trace-id"
    import re

    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", value):
        reader.problem(name, value, "expected an HTTP header name such as X-Trace-Id, or empty to disable")
        return "x-trace-id"
    return value.lower()


def _scrub_patterns(reader: _Reader) -> tuple[str, ...]:
    """Whitespace-separated regular expressions (a space inside one is written ``\\s``)."""
    name = "BEACON_OTEL_SCRUB_PATTERNS"
    value = reader.raw(name)
    if value is None:
        return ()
    import re

    patterns = tuple(value.split())
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            reader.problems.append(
                f"{name} holds the pattern {pattern!r}, which is not a valid regular expression: {error}"
            )
    return patterns


_MODULE_PATH = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"


def _matched_entries(reader: _Reader, name: str, value: str, pattern: str, expected: str) -> list[list[str]]:
    """The groups of each comma-separated entry of ``value`` that matches ``pattern``; one
    problem naming the variable for each entry that does not."""
    import re

    matched = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        match = re.fullmatch(pattern, entry)
        if match is None:
            reader.problems.append(f"{name} holds {entry!r}, which is not {expected}")
            continue
        matched.append(list(match.groups()))
    return matched


def _provider_hooks(reader: _Reader) -> tuple[tuple[str, str], ...]:
    """``module[:Class]`` entries, comma-separated; the class defaults to HybridRouter."""
    name = "BEACON_OTEL_PROVIDER_HOOKS"
    value = reader.raw(name)
    if value is None:
        return ()
    entries = _matched_entries(
        reader,
        name,
        value,
        rf"({_MODULE_PATH})(?::([A-Za-z_]\w*))?",
        "a module path with an optional class "
        "(expected e.g. hybrid_router.core.router or demo_router.router:HybridRouter)",
    )
    return tuple((module, cls or "HybridRouter") for module, cls in entries)


def _untraced_methods(reader: _Reader) -> tuple[tuple[str, str, str], ...]:
    """``module:Class.method`` entries, comma-separated, or ``none``; unset: the legacy tracer's."""
    name = "BEACON_OTEL_UNTRACED_METHODS"
    value = reader.raw(name)
    if value is None:
        return DEFAULT_UNTRACED_METHODS
    if value.lower() == "none":
        return ()
    entries = _matched_entries(
        reader,
        name,
        value,
        rf"({_MODULE_PATH}):([A-Za-z_]\w*)\.([A-Za-z_]\w*)",
        "module:Class.method (expected e.g. hybrid_router.tracing:DBTracer.start_span, or none)",
    )
    return tuple((module, cls, method) for module, cls, method in entries)


FASTAPI_UPSTREAM = "BEACON_OTEL_FASTAPI_UPSTREAM"
DEPRECATED_FASTAPI_UPSTREAM = "BEACON_OTEL_ASGI_INTERNAL_SPANS"  # its name until 0.1


def _fastapi_upstream(reader: _Reader) -> bool:
    """BEACON_OTEL_FASTAPI_UPSTREAM, or its deprecated name when only that one is set."""
    value = reader.boolean(FASTAPI_UPSTREAM, False)
    if reader.raw(DEPRECATED_FASTAPI_UPSTREAM) is None:
        return value
    deprecated = reader.boolean(DEPRECATED_FASTAPI_UPSTREAM, False)
    if reader.raw(FASTAPI_UPSTREAM) is None:
        return deprecated
    if deprecated != value:
        reader.problems.append(
            f"{DEPRECATED_FASTAPI_UPSTREAM} (deprecated) says {str(deprecated).lower()} but "
            f"{FASTAPI_UPSTREAM} says {str(value).lower()}: unset {DEPRECATED_FASTAPI_UPSTREAM}"
        )
    return value


GENERIC_EXCLUDED_URLS = "OTEL_PYTHON_EXCLUDED_URLS"
CAPTURE_HEADERS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS"
SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
CAPTURE_ALL_METHODS = "OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS"


def _upstream_list(reader: _Reader, name: str) -> tuple[str, ...]:
    """A list variable read exactly as opentelemetry-util-http reads it (``get_custom_headers``):
    any non-empty value is split at commas and each entry stripped, empty entries included."""
    reader.names.add(name)
    value = reader.environ.get(name)
    return tuple(entry.strip() for entry in value.split(",")) if value else ()


def _report_once(reader: _Reader, problem: str) -> None:
    """OTEL_PYTHON_EXCLUDED_URLS serves three libraries: its problem is still one line."""
    if problem not in reader.problems:
        reader.problems.append(problem)


def _check_regexes(reader: _Reader, name: str, entries: tuple[str, ...], flags: int) -> bool:
    """Whether the entries compile the way the upstream instrumentations join them (one
    alternation); one problem naming the variable and the faulty entry otherwise."""
    import re

    for entry in entries:
        try:
            re.compile(entry, flags)
        except re.error as error:
            _report_once(reader, f"{name} holds {entry!r}, which is not a valid regular expression: {error}")
            return False
    try:
        re.compile("|".join(entries), flags)
    except re.error as error:  # e.g. a (?i) flag group that is not at the start of the joined pattern
        _report_once(
            reader,
            f"{name} does not compile once its entries are joined with '|', as the instrumentations "
            f"use it: {error}",
        )
        return False
    return True


def _excluded_urls(reader: _Reader, library: str) -> tuple[str, ...]:
    """The URL patterns one library's spans leave out: its own variable when it is set (even
    empty), else OTEL_PYTHON_EXCLUDED_URLS, as opentelemetry-util-http's ``get_excluded_urls``.

    An empty entry is refused: the instrumentations would read it as a pattern that matches every
    URL, so a stray comma would silently turn the library's tracing off."""
    specific = f"OTEL_PYTHON_{library}_EXCLUDED_URLS"
    reader.names.update((specific, GENERIC_EXCLUDED_URLS))
    name = specific if specific in reader.environ else GENERIC_EXCLUDED_URLS
    entries = _upstream_list(reader, name)
    for position, entry in enumerate(entries, start=1):
        if not entry:
            _report_once(
                reader,
                f"{name} entry {position} of {len(entries)} is empty (two commas in a row, one at an end, "
                "or only spaces): it would match every URL and leave nothing traced; expected "
                "comma-separated regular expressions, e.g. /health,/ready",
            )
            return ()
    return entries if _check_regexes(reader, name, entries, 0) else ()


def _header_patterns(reader: _Reader, name: str) -> tuple[str, ...]:
    import re

    entries = _upstream_list(reader, name)
    return entries if _check_regexes(reader, name, entries, re.IGNORECASE) else ()


def _http_instrumentation(reader: _Reader) -> HttpInstrumentationVariables:
    reader.names.update((SEMCONV_OPT_IN, CAPTURE_ALL_METHODS))
    return HttpInstrumentationVariables(
        fastapi_excluded_urls=_excluded_urls(reader, "FASTAPI"),
        starlette_excluded_urls=_excluded_urls(reader, "STARLETTE"),
        httpx_excluded_urls=_excluded_urls(reader, "HTTPX"),
        server_request_headers=_header_patterns(reader, f"{CAPTURE_HEADERS}_SERVER_REQUEST"),
        server_response_headers=_header_patterns(reader, f"{CAPTURE_HEADERS}_SERVER_RESPONSE"),
        client_request_headers=_header_patterns(reader, f"{CAPTURE_HEADERS}_CLIENT_REQUEST"),
        client_response_headers=_header_patterns(reader, f"{CAPTURE_HEADERS}_CLIENT_RESPONSE"),
        sanitize_fields=_header_patterns(reader, f"{CAPTURE_HEADERS}_SANITIZE_FIELDS"),
        semconv_opt_in=tuple(entry for entry in _upstream_list(reader, SEMCONV_OPT_IN) if entry),
        # Any non-empty value, "false" included, as opentelemetry-util-http's sanitize_method reads it.
        capture_all_methods=bool(reader.environ.get(CAPTURE_ALL_METHODS)),
    )


def _read(reader: _Reader) -> Settings:
    """Every setting from the reader's mapping; problems are left in ``reader.problems``."""
    disabled = reader.raw("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS") or ""
    resource_attributes = _resource_attributes(reader)
    return Settings(
        sdk_disabled=reader.boolean("OTEL_SDK_DISABLED", False),
        allow_uninstrumented=reader.boolean("BEACON_OTEL_ALLOW_UNINSTRUMENTED", False),
        # OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES (specification).
        service_name=reader.raw("OTEL_SERVICE_NAME")
        or resource_attributes.get("service.name")
        or DEFAULT_SERVICE_NAME,
        resource_attributes=resource_attributes,
        railway_environment=reader.raw("RAILWAY_ENVIRONMENT"),
        railway_commit_sha=reader.raw("RAILWAY_GIT_COMMIT_SHA"),
        railway_service_name=reader.raw("RAILWAY_SERVICE_NAME"),
        railway_replica_id=reader.raw("RAILWAY_REPLICA_ID"),
        exporters={signal: _exporters(reader, signal) for signal in SIGNALS},
        otlp=_all_otlp_settings(reader),
        sampler=reader.choice("OTEL_TRACES_SAMPLER", "parentbased_always_on", SAMPLERS),
        sampler_arg=reader.parsed(
            "OTEL_TRACES_SAMPLER_ARG", None, _parse_ratio, "expected a number between 0 and 1, e.g. 0.25"
        ),
        propagators=_propagators(reader),
        disabled_instrumentations=frozenset(
            part.strip().lower() for part in disabled.split(",") if part.strip()
        ),
        span_batch=_batch(reader, "OTEL_BSP"),
        log_batch=_batch(reader, "OTEL_BLRP"),
        metric_export_interval_ms=reader.positive_int("OTEL_METRIC_EXPORT_INTERVAL", 60000),
        metrics_temporality=reader.choice(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "cumulative",
            ("cumulative", "delta", "lowmemory"),
        ),
        legacy_trace_header=_legacy_header(reader),
        fastapi_upstream=_fastapi_upstream(reader),
        httpx_upstream=reader.boolean("BEACON_OTEL_HTTPX_UPSTREAM", False),
        asyncpg_upstream=reader.boolean("BEACON_OTEL_ASYNCPG_UPSTREAM", False),
        http_server_metrics=reader.boolean("BEACON_OTEL_HTTP_SERVER_METRICS", True),
        metrics_exemplar_filter=exemplar_filter_named(reader.raw(EXEMPLAR_FILTER_VARIABLE))[0],
        export_error_interval=reader.parsed(
            "BEACON_OTEL_EXPORT_ERROR_INTERVAL",
            60.0,
            _parse_positive_float,
            "expected seconds, a number above 0",
        ),
        shutdown_timeout=reader.parsed(
            "BEACON_OTEL_SHUTDOWN_TIMEOUT",
            5.0,
            _parse_positive_float,
            "expected seconds, a number above 0",
        ),
        log_format=reader.choice("BEACON_OTEL_LOG_FORMAT", "auto", LOG_FORMATS),
        log_level=reader.choice("BEACON_OTEL_LOG_LEVEL", "", LOG_LEVELS) or None,
        export_access_logs=reader.boolean("BEACON_OTEL_EXPORT_ACCESS_LOGS", False),
        scrub_patterns=_scrub_patterns(reader),
        provider_hooks=_provider_hooks(reader),
        health_interval=reader.parsed(
            "BEACON_OTEL_HEALTH_INTERVAL", None, _parse_positive_float, "expected seconds, a number above 0"
        ),
        untraced_methods=_untraced_methods(reader),
        http_instrumentation=_http_instrumentation(reader),
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration; raise ConfigError listing every problem."""
    reader = _Reader(os.environ if environ is None else environ)
    settings = _read(reader)
    if reader.problems:
        raise ConfigError(reader.problems)
    return settings


def variables_read() -> frozenset[str]:
    """Every variable :func:`load_settings` reads (it asks for each one whatever the environment)."""
    reader = _Reader({})
    _read(reader)
    return frozenset(reader.names)


def child_environment(bootstrap_dir: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a launched command: ours, with the bootstrap first on PYTHONPATH."""
    env = dict(os.environ if environ is None else environ)
    existing = [
        part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part and part != bootstrap_dir
    ]
    env["PYTHONPATH"] = os.pathsep.join([bootstrap_dir, *existing])
    return env


DEFAULT_SINK_SERVICE_MAP = {"hybrid-router": "router"}


class SinkSettings(NamedTuple):
    """``beacon-otel sink``: where it listens, what it accepts, where it writes."""

    database_url: str
    host: str = "127.0.0.1"
    port: int = 4320
    token: str | None = None  # None only when explicitly allowed (BEACON_OTEL_SINK_ALLOW_NO_TOKEN)
    max_body_bytes: int = 4 * 1024 * 1024
    max_decompressed_bytes: int = 32 * 1024 * 1024
    # Spans, attributes, events, links and nested values in one request, counted from the wire
    # before decoding: empty elements cost about 64 bytes each decoded, so this bounds memory
    # where the byte limits cannot (a 29 KB gzip can hold 15 million of them).
    max_elements: int = 2_000_000
    max_inflight: int = 16
    pool_size: int = 4
    service_map: Mapping[str, str] = MappingProxyType(DEFAULT_SINK_SERVICE_MAP)
    # Short: the senders' own retry budget (10 s by default) must fit several attempts.
    retry_after_seconds: int = 1
    max_header_bytes: int = 64 * 1024  # request line and headers; more is answered 431
    max_connections: int = 256  # open at once; a connection beyond it is closed at once
    header_timeout: float = 10.0  # seconds from a connection's (or request's) first byte to its last header
    body_timeout: float = 30.0  # seconds for the whole body once the headers are in; then 408
    idle_timeout: float = 15.0  # seconds a kept-alive connection may wait for its next request
    db_timeout: float = 5.0  # seconds for Postgres to hand out a connection or answer a statement
    shutdown_timeout: float = 10.0  # seconds requests in flight get to finish after SIGTERM


def _parse_address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(value)
    return host.strip("[]"), int(port)


def load_sink_settings(environ: Mapping[str, str] | None = None, *, serving: bool = True) -> SinkSettings:
    """Read and validate the sink's variables; raise ConfigError listing every problem.
    ``serving=False`` (``beacon-otel sink migrate``): the ingest token is not needed."""
    env = os.environ if environ is None else environ
    reader = _Reader(env)
    database_url = reader.raw("DATABASE_URL")
    if database_url is None:
        reader.problems.append("DATABASE_URL is not set: the sink needs the Postgres DSN to write to")
    elif _scheme(database_url) not in ("postgres", "postgresql"):
        # The value may hold a password: name the variable, not the value.
        reader.problems.append("DATABASE_URL is invalid: expected a postgresql://user:password@host/db DSN")
    host, port = reader.parsed(
        "BEACON_OTEL_SINK_ADDRESS",
        ("127.0.0.1", 4320),
        _parse_address,
        "expected host:port, e.g. 0.0.0.0:4320",
    )
    allow_no_token = reader.boolean("BEACON_OTEL_SINK_ALLOW_NO_TOKEN", False)
    token = env.get("BEACON_OTEL_SINK_TOKEN", "").strip() or None
    if token is None and not allow_no_token and serving:
        reader.problems.append(
            "BEACON_OTEL_SINK_TOKEN is not set: the sink requires a bearer token; to accept anyone, set it "
            "empty together with BEACON_OTEL_SINK_ALLOW_NO_TOKEN=true"
        )
    no_overrides: dict[str, str] = {}
    service_map = dict(DEFAULT_SINK_SERVICE_MAP)
    service_map.update(
        reader.parsed(
            "BEACON_OTEL_SINK_SERVICE_MAP",
            no_overrides,
            parse_key_value_list,
            "expected otel-name=service,... pairs",
        )
    )
    settings = SinkSettings(
        database_url=database_url or "",
        host=host,
        port=port,
        token=token,
        max_body_bytes=reader.positive_int("BEACON_OTEL_SINK_MAX_BODY_BYTES", 4 * 1024 * 1024),
        max_decompressed_bytes=reader.positive_int(
            "BEACON_OTEL_SINK_MAX_DECOMPRESSED_BYTES", 32 * 1024 * 1024
        ),
        max_elements=reader.positive_int("BEACON_OTEL_SINK_MAX_ELEMENTS", 2_000_000),
        max_inflight=reader.positive_int("BEACON_OTEL_SINK_MAX_INFLIGHT", 16),
        pool_size=reader.positive_int("BEACON_OTEL_SINK_DB_POOL", 4),
        service_map=service_map,
        max_header_bytes=reader.positive_int("BEACON_OTEL_SINK_MAX_HEADER_BYTES", 64 * 1024),
        max_connections=reader.positive_int("BEACON_OTEL_SINK_MAX_CONNECTIONS", 256),
        header_timeout=reader.seconds("BEACON_OTEL_SINK_HEADER_TIMEOUT", 10.0),
        body_timeout=reader.seconds("BEACON_OTEL_SINK_BODY_TIMEOUT", 30.0),
        idle_timeout=reader.seconds("BEACON_OTEL_SINK_IDLE_TIMEOUT", 15.0),
        db_timeout=reader.seconds("BEACON_OTEL_SINK_DB_TIMEOUT", 5.0),
        shutdown_timeout=reader.seconds("BEACON_OTEL_SINK_SHUTDOWN_TIMEOUT", 10.0),
    )
    if reader.problems:
        raise ConfigError(reader.problems)
    return settings


@overload
def load_database_url(environ: Mapping[str, str] | None = None, *, required: Literal[True] = True) -> str: ...


@overload
def load_database_url(environ: Mapping[str, str] | None = None, *, required: bool) -> str | None: ...


def load_database_url(environ: Mapping[str, str] | None = None, *, required: bool = True) -> str | None:
    """``DATABASE_URL`` for the operator tools that read Postgres (``beacon-otel traces``,
    ``doctor``); ConfigError naming the variable, never its value (it holds a password).
    Unset is an error when ``required``, else None."""
    env = os.environ if environ is None else environ
    value = (env.get("DATABASE_URL") or "").strip()
    if not value:
        if not required:
            return None
        raise ConfigError(["DATABASE_URL is not set: expected a postgresql://user:password@host/db DSN"])
    if _scheme(value) not in ("postgres", "postgresql"):
        raise ConfigError(["DATABASE_URL is invalid: expected a postgresql://user:password@host/db DSN"])
    return value


def _scheme(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).scheme
