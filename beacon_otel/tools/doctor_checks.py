"""The checks of ``beacon-otel doctor``, each returning :class:`Check` rows.

Local checks (configuration, effective settings, instrumentations) only look at settings and
installed package metadata, so they are instant. Network checks (OTLP endpoints, the test span,
the sink, Postgres) each bound every wait by a timeout: a doctor that hangs on a dead endpoint
would be one more cryptic failure. Nothing here reads ``os.environ``: the checks get what the
loaders of :mod:`beacon_otel.settings` parsed (only the upstream OTLP exporters read their TLS
file variables, exactly as they do in the app).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import format_trace_id
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Imported here, in the main thread, rather than by the probes' threads: two threads importing the
# same packages at once can be handed a half-initialised module (see beacon_otel.export.exporters).
import beacon_otel.export.otlp_grpc  # the exporters' classes, imported on first use
import beacon_otel.export.otlp_http  # noqa: F401
from beacon_otel import __version__
from beacon_otel.config_warnings import ConfigWarning
from beacon_otel.export.exporters import describe, otlp_span_exporter
from beacon_otel.export.reporting import failure_reason
from beacon_otel.export.span_encoding import SpanBatchEncoder
from beacon_otel.providers.hooks import DEFAULT_HOOKS
from beacon_otel.sdk import build_resource
from beacon_otel.settings import (
    FASTAPI_UPSTREAM,
    INSTRUMENTATIONS,
    SEMCONV_OPT_IN,
    SIGNALS,
    Settings,
    Signal,
)


def _optional(module: str) -> Any:
    """asyncpg comes with the ``sink`` extra; without it Postgres is reported, not checked."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


asyncpg = _optional("asyncpg")
sink_database = _optional("beacon_otel.sink.database")  # needs asyncpg too

Status = Literal["ok", "info", "warn", "fail"]

DOCTOR_SPAN_NAME = "beacon-otel doctor"
DOCTOR_ATTRIBUTE = "beacon.doctor"
_CONFIG_DOCS = "see the Configuration table in the README; `beacon-otel config` shows the result"
_MIGRATE = "run `beacon-otel sink migrate` with this DATABASE_URL"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: ``info`` is a fact, only ``fail`` makes the exit status 1."""

    check: str
    status: Status
    detail: str
    remedy: str | None = None


# --- configuration and effective settings -------------------------------------------------------


def config_problems(problems: list[str]) -> list[Check]:
    """One row per problem, so that every invalid variable is listed, not just the first."""
    return [
        Check("config", "fail", problem, f"fix or unset that variable ({_CONFIG_DOCS})")
        for problem in problems
    ]


def settings_summary(settings: Settings, masked: Mapping[str, Any]) -> list[Check]:
    """What the app will do with this environment; ``masked`` is ``mask_settings(settings)``,
    so header values that carry credentials never reach the report."""
    rows = [_service_row(settings)]
    rows += [_exporter_row(settings, masked, signal) for signal in SIGNALS]
    rows += _doubled_path_rows(settings)
    rows.append(_sampler_row(settings))
    return rows


_SIGNAL_PATH = re.compile(r"/v1/(traces|metrics|logs)/?$")


def _doubled_path_rows(settings: Settings) -> list[Check]:
    """A warning when OTEL_EXPORTER_OTLP_ENDPOINT already ends in ``/v1/<signal>``: over HTTP
    the exporters append the signal's path to it, so traces would go to ``.../v1/traces/v1/traces``
    (a 404 from most backends, silence from some)."""
    rows = []
    for signal in SIGNALS:
        otlp = settings.otlp_for(signal)
        if not settings.exports(signal, "otlp") or otlp.protocol == "grpc":
            continue
        suffix = f"/v1/{signal}"
        base = otlp.endpoint[: -len(suffix)] if otlp.endpoint.endswith(suffix) else ""
        doubled = _SIGNAL_PATH.search(base)
        if doubled is None:
            continue
        rows.append(
            Check(
                f"endpoint:{signal}",
                "warn",
                f"OTEL_EXPORTER_OTLP_ENDPOINT ends in /v1/{doubled.group(1)}, and {signal} get /v1/{signal} "
                f"appended: they go to {otlp.endpoint}",
                f"set OTEL_EXPORTER_OTLP_ENDPOINT to the base URL ({base[: doubled.start()] or base}), "
                f"or give the full URL in OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT, which is used as is",
            )
        )
    return rows


def _service_row(settings: Settings) -> Check:
    if settings.sdk_disabled:
        return Check(
            "service",
            "warn",
            f"{settings.service_name}: OTEL_SDK_DISABLED=true, the app will run without any telemetry",
            "unset OTEL_SDK_DISABLED (or set it to false) to get traces, metrics and logs",
        )
    extras = [f"{key}={value}" for key, value in sorted(settings.resource_attributes.items())]
    if settings.railway_environment:
        extras.append(f"deployment.environment.name={settings.railway_environment}")
    suffix = f" ({', '.join(extras)})" if extras else ""
    return Check("service", "info", f"service.name={settings.service_name}{suffix}")


def _exporter_row(settings: Settings, masked: Mapping[str, Any], signal: Signal) -> Check:
    names = settings.exporters[signal]
    if not names:
        return Check(f"export:{signal}", "info", f"none (OTEL_{signal.upper()}_EXPORTER=none)")
    parts = []
    for name in names:
        if name != "otlp":
            parts.append(name)
            continue
        otlp = settings.otlp_for(signal)
        options = [otlp.protocol, f"timeout {otlp.timeout_seconds:g} s"]
        if otlp.compression != "none":
            options.append(otlp.compression)
        headers = masked["otlp"][signal]["headers"]
        if headers:
            options.append("headers " + ", ".join(f"{key}={value}" for key, value in sorted(headers.items())))
        parts.append(f"otlp to {otlp.endpoint} ({', '.join(options)})")
    return Check(f"export:{signal}", "info", "; ".join(parts))


def _sampler_row(settings: Settings) -> Check:
    ratio = "" if settings.sampler_arg is None else f" {settings.sampler_arg:g}"
    detail = (
        f"{settings.sampler}{ratio}; propagators {', '.join(settings.propagators) or 'none'}; "
        f"runner header {settings.legacy_trace_header or 'off'}"
    )
    never = settings.sampler in ("always_off", "parentbased_always_off") or (
        "traceidratio" in settings.sampler and settings.sampler_arg == 0
    )
    if never:
        return Check(
            "sampler",
            "warn",
            detail + ": the app's own traces will not be recorded",
            "set OTEL_TRACES_SAMPLER=parentbased_always_on (or a ratio above 0)",
        )
    return Check("sampler", "info", detail)


# --- instrumentations ------------------------------------------------------------------------------

# instrumentation name -> (library it instruments, distribution of the upstream instrumentation,
# the setting that selects the upstream one, its variable, what beacon-otel uses otherwise)
_LIBRARIES = {
    "httpx": (
        "httpx",
        "opentelemetry-instrumentation-httpx",
        "httpx_upstream",
        "BEACON_OTEL_HTTPX_UPSTREAM",
        "beacon-otel's transport wrappers",
    ),
    "asyncpg": (
        "asyncpg",
        "opentelemetry-instrumentation-asyncpg",
        "asyncpg_upstream",
        "BEACON_OTEL_ASYNCPG_UPSTREAM",
        "beacon-otel's statement wrappers",
    ),
}
_DISABLED = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


def instrumentations(settings: Settings) -> list[Check]:
    """Which instrumentations will load in the app, which are disabled, and which cannot load."""
    rows = []
    for name in INSTRUMENTATIONS:
        if not settings.instrumentation_enabled(name):
            rows.append(Check(f"instr:{name}", "info", f"disabled by {_DISABLED}"))
        elif name == "fastapi":
            rows.append(_fastapi_row(settings))
        elif name == "providers":
            rows.append(_providers_row(settings))
        else:
            rows.append(_client_row(settings, name))
    unknown = sorted(settings.disabled_instrumentations - set(INSTRUMENTATIONS))
    if unknown:
        rows.append(
            Check(
                "instr:disabled",
                "warn",
                f"{_DISABLED} names {', '.join(unknown)}, which beacon-otel does not know",
                f"use names among {', '.join(INSTRUMENTATIONS)}",
            )
        )
    return rows


def _installed_version(distribution: str) -> str | None:
    """The installed version, read from package metadata: nothing of the library is imported."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirement_on(instrumentation: str, library: str) -> Requirement | None:
    """The upstream instrumentation's declared requirement on its library (its ``instruments``
    extra), e.g. ``httpx>=0.18.0``; None when it declares none."""
    for text in importlib.metadata.requires(instrumentation) or ():
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == canonicalize_name(library) and "instruments" in str(
            requirement.marker or ""
        ):
            return requirement
    return None


def _library_row(check: str, library: str, instrumentation: str, suffix: str = "") -> Check:
    """Installed, importable, and within the version range the pinned instrumentation supports."""
    version = _installed_version(library)
    if version is None and importlib.util.find_spec(library) is None:
        return Check(check, "info", f"{library} is not installed here: nothing to instrument")
    pinned = _installed_version(instrumentation)
    if pinned is None:
        return Check(
            check,
            "warn",
            f"{instrumentation} is not installed: {library} calls will not be traced",
            "reinstall beacon-otel (it depends on the pinned instrumentations)",
        )
    requirement = _requirement_on(instrumentation, library)
    if version and requirement is not None and not requirement.specifier.contains(version, prereleases=True):
        return Check(
            check,
            "warn",
            f"{library} {version} is outside what {instrumentation} {pinned} supports "
            f"({requirement.name}{requirement.specifier}): it will not be instrumented",
            f"install a {library} version matching {requirement.specifier}",
        )
    return Check(check, "ok", f"will load: {library} {version or '(version unknown)'}{suffix}")


def _client_row(settings: Settings, name: str) -> Check:
    """httpx and asyncpg get beacon-otel's own wrappers, or the upstream instrumentation when
    its variable asks for it (which has its own version requirement)."""
    library, distribution, attribute, variable, own = _LIBRARIES[name]
    if getattr(settings, attribute):
        return _library_row(
            f"instr:{name}", library, distribution, f" (upstream instrumentation, {variable}=true)"
        )
    version = _installed_version(library)
    if version is None and importlib.util.find_spec(library) is None:
        return Check(f"instr:{name}", "info", f"{library} is not installed here: nothing to instrument")
    return Check(f"instr:{name}", "ok", f"will load: {library} {version or '(version unknown)'} ({own})")


def _fastapi_row(settings: Settings) -> Check:
    """FastAPI/Starlette apps get beacon-otel's middleware, or the upstream instrumentation
    with BEACON_OTEL_FASTAPI_UPSTREAM=true (which has its own version requirement)."""
    if settings.fastapi_upstream:
        return _library_row(
            "instr:fastapi",
            "fastapi",
            "opentelemetry-instrumentation-fastapi",
            f" (upstream FastAPI instrumentation, {FASTAPI_UPSTREAM}=true)",
        )
    found = [
        f"{library} {_installed_version(library) or '(version unknown)'}"
        for library in ("fastapi", "starlette")
        if importlib.util.find_spec(library) is not None
    ]
    if not found:
        return Check(
            "instr:fastapi", "info", "neither fastapi nor starlette is installed here: no server spans"
        )
    return Check(
        "instr:fastapi", "ok", f"will load: {', '.join(found)} (beacon-otel's server-span middleware)"
    )


def configuration_warnings(warnings: list[ConfigWarning]) -> list[Check]:
    """The start-up warnings (OTEL_* variables without effect, a deprecated name, semantic
    conventions that differ), one row each, as the app's first log lines will say them."""
    return [Check(warning.topic, "warn", warning.message, warning.remedy) for warning in warnings]


def fast_path(settings: Settings, environ: Mapping[str, str]) -> Check:
    """Whether spans will skip the SDK's span object (about half the CPU per span), and what in
    the configuration turns that off; the app says the same at start, and names a processor it
    adds itself when the next span starts."""
    reasons = []
    if settings.exports("traces", "console"):
        reasons.append("the console exporter (OTEL_TRACES_EXPORTER=console) takes the SDK's span processor")
    if environ.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "").strip().lower() == "true":
        reasons.append("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true: the SDK counts spans it makes itself")
    elif not _sdk_fields_known():
        reasons.append("this SDK version's tracer lacks a field direct spans read (beacon_otel/_upstream.py)")
    if reasons:
        return Check("fast-path", "info", "spans take the SDK's slower path: " + "; ".join(reasons))
    if not settings.exporters.get("traces"):
        return Check("fast-path", "info", "no span is exported (OTEL_TRACES_EXPORTER=none)")
    return Check(
        "fast-path",
        "ok",
        "spans skip the SDK's span object (beacon-otel's encoded processor is the only one); a span "
        "processor the app adds itself turns that off, and the app says so once",
    )


def _sdk_fields_known() -> bool:
    """Whether the installed SDK's tracer has what direct spans read (a bare provider's tracer)."""
    from opentelemetry.sdk.trace import TracerProvider

    from beacon_otel import _upstream

    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("beacon_otel.doctor")
    return _upstream.tracer_internals(tracer) is not None


def http_conventions(settings: Settings) -> Check:
    """Which HTTP attribute names the spans will carry: a fact worth one line, since the upstream
    instrumentations and beacon-otel's differ when OTEL_SEMCONV_STABILITY_OPT_IN is unset."""
    mode = settings.http_instrumentation.http_mode
    if mode == "http/dup":
        return Check(
            "http-semconv", "info", f"{SEMCONV_OPT_IN}=http/dup: old and stable HTTP attribute names"
        )
    if mode == "http":
        return Check("http-semconv", "info", f"{SEMCONV_OPT_IN}=http: stable HTTP attribute names everywhere")
    return Check(
        "http-semconv",
        "info",
        f"{SEMCONV_OPT_IN} has no http entry: beacon-otel's HTTP spans use the stable attribute names "
        "(http.request.method, ...); an upstream instrumentation selected with BEACON_OTEL_<LIB>_UPSTREAM "
        "would use the old ones (http.method, ...)",
    )


def _locate(module_name: str) -> bool:
    """Whether a dotted module can be imported, found without importing it or its parents:
    the doctor must not run the app's package code."""
    parts = module_name.split(".")
    try:
        spec = importlib.machinery.PathFinder.find_spec(parts[0])
        for depth in range(1, len(parts)):
            if spec is None or spec.submodule_search_locations is None:
                return False
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join(parts[: depth + 1]), list(spec.submodule_search_locations)
            )
    except (ImportError, ValueError):
        return False
    return spec is not None


def _providers_row(settings: Settings) -> Check:
    """The router hooks: the default class may well be absent, a configured one should not be."""
    found = [
        f"{module}:{cls}" for module, cls in (*DEFAULT_HOOKS, *settings.provider_hooks) if _locate(module)
    ]
    missing = [f"{module}:{cls}" for module, cls in settings.provider_hooks if not _locate(module)]
    if missing:
        return Check(
            "instr:providers",
            "warn",
            f"BEACON_OTEL_PROVIDER_HOOKS names {', '.join(missing)}, which cannot be found here",
            "check the module path and PYTHONPATH (run the doctor with the app's environment)",
        )
    if not found:
        default = ", ".join(f"{module}:{cls}" for module, cls in DEFAULT_HOOKS)
        return Check("instr:providers", "info", f"{default} is not installed here: nothing to hook")
    return Check("instr:providers", "ok", f"will hook {', '.join(found)}")


# --- network causes ---------------------------------------------------------------------------------


# (cause, pattern) in order: the first match names the cause. Patterns cover both exceptions
# (``Type: message``) and the upstream exporters' log messages, for HTTP and gRPC.
_CAUSES = (
    ("refused", r"ConnectionRefusedError|[Cc]onnection refused|Errno 111\b|ECONNREFUSED"),
    ("timeout", r"TimeoutError|timed? ?out|DEADLINE_EXCEEDED|no successful answer"),
    ("dns", r"gaierror|Name or service not known|name resolution|nodename nor servname|DNS resolution"),
    ("tls", r"SSL|Ssl|CERTIFICATE_VERIFY|WRONG_VERSION_NUMBER|handshake"),
    ("auth", r"HTTP 40[13]\b|UNAUTHENTICATED|PERMISSION_DENIED"),
    ("path", r"HTTP 40[45]\b|UNIMPLEMENTED"),
    ("protocol", r"BadStatusLine|Failed parsing HTTP/2|RemoteDisconnected|Connection aborted|HTTP/2"),
    ("unavailable", r"HTTP 50[234]\b|HTTP 429\b|Service Unavailable|UNAVAILABLE|RESOURCE_EXHAUSTED"),
)


def _cause(error: BaseException | str) -> str:
    """A short name for why a connection or an export failed: it picks the phrase and remedy."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return next((cause for cause, pattern in _CAUSES if re.search(pattern, text)), "other")


_PHRASES = {
    "refused": "refused the connection",
    "timeout": "did not answer in time",
    "dns": "has a host name that does not resolve",
    "tls": "failed the TLS handshake",
    "auth": "refused the credentials",
    "path": "has no OTLP traces service at that path",
    "protocol": "does not speak this protocol",
    "unavailable": "is up but unavailable",
    "other": "did not accept it",
}


def _unreachable(where: str, error: BaseException | str, timeout: float) -> str:
    """``<where> refused the connection`` and the like; the raw error only when it says more."""
    cause = _cause(error)
    if cause == "refused":
        return f"{where} refused the connection"
    if cause == "timeout":
        return f"{where} did not answer within {timeout:g} s"
    if cause == "dns":
        return f"{where} has a host name that does not resolve"
    return f"{where} cannot be reached ({_short(str(error))})"


def _short(text: str, limit: int = 240) -> str:
    """Exporter errors can quote a whole binary answer; a report line needs the start only."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _target(endpoint: str) -> tuple[str, int]:
    """Host and port of an http(s) URL (settings validated it), with the scheme's default port."""
    parts = urllib.parse.urlsplit(endpoint)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


# --- OTLP: TCP reachability ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One host:port the app's OTLP exporters connect to, and which signals go there."""

    host: str
    port: int
    signals: tuple[str, ...]
    protocols: tuple[str, ...]


def otlp_endpoints(settings: Settings) -> list[Endpoint]:
    """Distinct OTLP destinations, so that one Collector is probed once, not once per signal."""
    grouped: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for signal in SIGNALS:
        if settings.exports(signal, "otlp"):
            otlp = settings.otlp_for(signal)
            grouped.setdefault(_target(otlp.endpoint), []).append((signal, otlp.protocol))
    return [
        Endpoint(host, port, tuple(s for s, _ in pairs), tuple(dict.fromkeys(p for _, p in pairs)))
        for (host, port), pairs in grouped.items()
    ]


def reach_check_name(endpoint: Endpoint, endpoints: list[Endpoint]) -> str:
    return "otlp-reach" if len(endpoints) == 1 else "otlp-reach:" + "+".join(endpoint.signals)


def probe_tcp(endpoint: Endpoint, name: str, timeout: float) -> list[Check]:
    """A plain TCP connect: tells 'nothing listens there' apart from 'it listens but refuses data'."""
    signals, protocols = ", ".join(endpoint.signals), ", ".join(endpoint.protocols)
    where = f"{endpoint.host}:{endpoint.port} ({signals} over {protocols})"
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout):
            pass
    except OSError as error:
        return [
            Check(
                name,
                "fail",
                _unreachable(where, error, timeout),
                "is the Collector (or backend) running and listening there? check "
                "OTEL_EXPORTER_OTLP_ENDPOINT and the protocol's port (4317 grpc, 4318 http/protobuf)",
            )
        ]
    return [Check(name, "ok", f"{where} accepts TCP connections")]


# --- OTLP: the test span ----------------------------------------------------------------------------


class _Collect(logging.Handler):
    """Keeps the upstream exporters' warnings: they carry the only description of a failure."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _exporter_logs() -> Iterator[list[str]]:
    """Capture the ``opentelemetry`` loggers' records instead of printing them into the report."""
    target = logging.getLogger("opentelemetry")
    handler = _Collect()
    propagate = target.propagate
    target.addHandler(handler)
    target.propagate = False
    try:
        yield handler.messages
    finally:
        target.removeHandler(handler)
        target.propagate = propagate


def _failure_reason(messages: list[str]) -> str:
    """The most telling of the captured messages (a status or an errno beats 'ran out of time')."""
    reasons = [failure_reason(message) for message in messages]
    vague = failure_reason("timeout, max retries or shutdown")
    precise = [reason for reason in reasons if reason != vague]
    return (precise or reasons or ["the exporter gave no reason"])[0]


def doctor_span_request(settings: Settings) -> tuple[bytes, str]:
    """One finished span, ``beacon-otel doctor`` with ``beacon.doctor=true``, encoded as the app
    encodes its spans; made by a TracerProvider of its own so that no global state is touched."""
    provider = TracerProvider(resource=build_resource(settings), sampler=ALWAYS_ON, shutdown_on_exit=False)
    span = provider.get_tracer("beacon_otel.doctor", __version__).start_span(
        DOCTOR_SPAN_NAME, attributes={DOCTOR_ATTRIBUTE: True}
    )
    span.end()
    provider.shutdown()
    if not isinstance(span, ReadableSpan):
        raise RuntimeError("the SDK did not record the test span")
    return SpanBatchEncoder().encode([span]), format_trace_id(span.context.trace_id)


_EXPORT_REMEDIES = {
    "refused": "is the Collector running? check OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT)",
    "timeout": "check the host and port, and that the protocol matches the port "
    "(4317 grpc, 4318 http/protobuf)",
    "dns": "check the host name in OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT)",
    "auth": "check the token in OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_TRACES_HEADERS "
    "(authorization=Bearer%20<token>)",
    "path": "for http/protobuf give the base URL in OTEL_EXPORTER_OTLP_ENDPOINT (/v1/traces is appended) "
    "or the full URL in ..._TRACES_ENDPOINT; for gRPC set OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
    "tls": "use http:// or https:// as the backend expects; a private CA goes in "
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "protocol": "the port speaks another protocol: OTEL_EXPORTER_OTLP_PROTOCOL=grpc for 4317, "
    "http/protobuf for 4318",
    "unavailable": "the backend is overloaded, starting or failing: read its log, then run the doctor again",
    "other": "check the endpoint, OTEL_EXPORTER_OTLP_PROTOCOL and the headers against what the backend "
    "expects",
}


def probe_export(settings: Settings, timeout: float) -> list[Check]:
    """Send the test span with the app's own exporter (protocol, headers, TLS, compression), only
    with a shorter timeout, and say why it was not accepted."""
    if not settings.exports("traces", "otlp"):
        return [
            Check(
                "otlp-export",
                "warn",
                "no test span sent: OTEL_TRACES_EXPORTER does not include otlp",
                "set OTEL_TRACES_EXPORTER=otlp to send traces to a Collector or backend",
            )
        ]
    if settings.sdk_disabled:
        return [
            Check(
                "otlp-export", "warn", "no test span sent: OTEL_SDK_DISABLED=true", "unset OTEL_SDK_DISABLED"
            )
        ]
    otlp = settings.otlp_for("traces")._replace(
        timeout_seconds=min(settings.otlp_for("traces").timeout_seconds, timeout)
    )
    payload, trace_id = doctor_span_request(settings)
    started = time.monotonic()
    with _exporter_logs() as messages:
        exporter = otlp_span_exporter(otlp)
        try:
            result = exporter.export_payload(payload, 1)
        finally:
            exporter.shutdown()
    if result is SpanExportResult.SUCCESS:
        took = (time.monotonic() - started) * 1000
        return [
            Check(
                "otlp-export",
                "ok",
                f"{describe(otlp)} accepted the test span '{DOCTOR_SPAN_NAME}' (trace {trace_id}, "
                f"{DOCTOR_ATTRIBUTE}=true) in {took:.0f} ms",
            )
        ]
    reason = _failure_reason(messages)
    cause = _cause(reason)
    detail = f"{describe(otlp)} {_PHRASES[cause]}: {_short(reason)}"
    if cause == "timeout":
        detail = f"{describe(otlp)} did not accept the test span within {otlp.timeout_seconds:g} s"
    return [Check("otlp-export", "fail", detail, _EXPORT_REMEDIES[cause])]


# --- the sink ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SinkTarget:
    """Where the sink is, and the token to present (``source`` says where it came from)."""

    url: str
    token: str | None
    source: str


def same_url(left: str, right: str) -> bool:
    """Whether two URLs name the same endpoint (host case, default port and trailing slash aside)."""
    a, b = urllib.parse.urlsplit(left), urllib.parse.urlsplit(right)
    return (a.scheme, _target(left), a.path.rstrip("/")) == (b.scheme, _target(right), b.path.rstrip("/"))


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header, whatever the header name's case."""
    for name, value in headers.items():
        if name.lower() == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip()
    return None


_SINK_TOKEN_REMEDY = (
    "use the sink's BEACON_OTEL_SINK_TOKEN: --sink-token, or authorization=Bearer%20<token> in "
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS when the app exports straight to the sink"
)


def probe_sink(target: SinkTarget, timeout: float) -> list[Check]:
    """POST an empty (zero-span) export with the token: it reaches the sink's authorisation and
    decoding but writes nothing, so it is safe against a production sink."""
    headers = {"Content-Type": "application/x-protobuf"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    request = urllib.request.Request(
        target.url, data=ExportTraceServiceRequest().SerializeToString(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return [
            Check(
                "sink",
                "fail",
                _unreachable(
                    target.url, reason if isinstance(reason, BaseException) else str(reason), timeout
                ),
                "is `beacon-otel sink` running there, listening on that address (BEACON_OTEL_SINK_ADDRESS)?",
            )
        ]
    return [_sink_answer(target, status)]


def _sink_answer(target: SinkTarget, status: int) -> Check:
    if status == 200:
        return Check("sink", "ok", f"{target.url} accepted an empty export with the token ({target.source})")
    if status in (401, 403):
        detail = "wrong token" if target.token else "the sink wants a bearer token and none was given"
        return Check(
            "sink",
            "fail",
            f"{target.url} answered HTTP {status}: {detail} ({target.source})",
            _SINK_TOKEN_REMEDY,
        )
    if status in (404, 405, 415):
        return Check(
            "sink",
            "fail",
            f"{target.url} answered HTTP {status}: not a beacon-otel sink's /v1/traces",
            "give the sink's URL, e.g. --sink http://sink:4320 (/v1/traces is appended)",
        )
    return Check(
        "sink",
        "fail",
        f"{target.url} answered HTTP {status}",
        "read the sink's log; 503 means it is saturated (BEACON_OTEL_SINK_MAX_INFLIGHT)",
    )


# --- Postgres ----------------------------------------------------------------------------------------

# trace_spans as the project's migration 0011 defines it (../shared/DESIGN.md), as format_type() names types.
EXPECTED_COLUMNS = {
    "id": "bigint",
    "trace_id": "uuid",
    "span_id": "uuid",
    "parent_span_id": "uuid",
    "service": "character varying(50)",
    "operation": "character varying(100)",
    "started_at": "timestamp with time zone",
    "completed_at": "timestamp with time zone",
    "duration_ms": "integer",
    "status": "character varying(20)",
    "job_id": "character varying(255)",
    "execution_id": "bigint",
    "model_id": "character varying(100)",
    "region": "character varying(50)",
    "metadata": "jsonb",
    "error_message": "text",
    "error_type": "character varying(100)",
    "created_at": "timestamp with time zone",
}
_COLUMNS_SQL = (
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass('trace_spans') AND a.attnum > 0 AND NOT a.attisdropped"
)
_INDEX_EXISTS_SQL = "SELECT count(*) FROM pg_class WHERE relname = $1 AND relkind = 'i'"


def dsn_location(dsn: str) -> str:
    """``host:port/database`` of a DSN: the DSN itself may hold a password and is never shown."""
    parts = urllib.parse.urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def probe_postgres(dsn: str, timeout: float) -> list[Check]:
    """Connect, then check the table and the sink's index; runs its own event loop (in a thread)."""
    if asyncpg is None or sink_database is None:
        return [
            Check(
                "postgres",
                "warn",
                "DATABASE_URL is set but asyncpg is not installed: Postgres not checked",
                "pip install 'beacon-otel[sink]'",
            )
        ]
    return asyncio.run(_postgres(dsn, timeout))


async def _postgres(dsn: str, timeout: float) -> list[Check]:
    where = dsn_location(dsn)
    try:
        connection = await asyncio.wait_for(asyncpg.connect(dsn, timeout=timeout), timeout + 0.5)
    except Exception as error:  # refused, timed out, bad password, no such database, TLS...: one line
        return [_postgres_failure(where, error, timeout)]
    try:
        version = ".".join(str(part) for part in connection.get_server_version()[:2])
        rows = [Check("postgres", "ok", f"{where} reachable (PostgreSQL {version})")]
        columns = {name: kind for name, kind in await connection.fetch(_COLUMNS_SQL, timeout=timeout)}
        rows.append(_table_check(where, columns))
        if columns:
            rows.append(await _index_check(connection, timeout))
        return rows
    finally:
        with contextlib.suppress(Exception):
            await connection.close(timeout=timeout)


def _postgres_failure(where: str, error: BaseException, timeout: float) -> Check:
    """Unreachable, or reachable but refusing: the remedies differ (host/port or credentials)."""
    if isinstance(error, OSError | TimeoutError) and _cause(error) in ("refused", "timeout", "dns"):
        return Check(
            "postgres",
            "fail",
            _unreachable(where, error, timeout),
            "is Postgres running, and are DATABASE_URL's host and port right?",
        )
    return Check(
        "postgres",
        "fail",
        f"{where} refused the session: {type(error).__name__}: {_short(str(error))}",
        "check the user, password and database name in DATABASE_URL",
    )


def _type_problem(name: str, expected: str, actual: str) -> str | None:
    """A column type the sink cannot write; a wider varchar than migration 0011's is fine."""
    if expected == actual:
        return None
    wanted = re.fullmatch(r"character varying\((\d+)\)", expected)
    found = re.fullmatch(r"character varying(?:\((\d+)\))?", actual)
    if wanted and found and (found.group(1) is None or int(found.group(1)) >= int(wanted.group(1))):
        return None
    return f"{name} is {actual}, expected {expected}"


def _table_check(where: str, columns: Mapping[str, str]) -> Check:
    if not columns:
        return Check(
            "trace_spans",
            "fail",
            f"no table trace_spans in {where} (or not on the search_path)",
            f"{_MIGRATE} (it creates the table on a fresh database), or point DATABASE_URL at the "
            "right database",
        )
    missing = [name for name in EXPECTED_COLUMNS if name not in columns]
    wrong = [
        problem
        for name, expected in EXPECTED_COLUMNS.items()
        if name in columns and (problem := _type_problem(name, expected, columns[name]))
    ]
    if missing or wrong:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + wrong
        return Check(
            "trace_spans",
            "fail",
            f"trace_spans does not match migration 0011: {'; '.join(problems)}",
            "bring the table to migration 0011's columns (the sink writes all of them)",
        )
    return Check("trace_spans", "ok", f"present with the {len(EXPECTED_COLUMNS)} expected columns")


async def _index_check(connection: Any, timeout: float) -> Check:
    index = sink_database.UNIQUE_INDEX
    if await asyncio.wait_for(sink_database.has_unique_index(connection), timeout):
        return Check("span-index", "ok", f"{index} present and valid: sink writes are idempotent")
    exists = await connection.fetchval(_INDEX_EXISTS_SQL, index, timeout=timeout)
    state = "left invalid by an interrupted build" if exists else "missing"
    return Check(
        "span-index",
        "fail",
        f"the unique index {index} on trace_spans (span_id) is {state}: the sink answers 503",
        _MIGRATE,
    )


def postgres_not_configured() -> Check:
    """DATABASE_URL unset is normal for an app that does not write trace_spans."""
    return Check("postgres", "info", "DATABASE_URL is not set: Postgres not checked")


def postgres_invalid(problem: str) -> Check:
    return Check("postgres", "fail", problem, "set DATABASE_URL=postgresql://user:password@host:5432/db")
