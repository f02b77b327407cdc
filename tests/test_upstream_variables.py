"""The upstream instrumentations' standard variables, honoured by beacon-otel's fast path as upstream.

Each test runs twice against the demo router launched by ``beacon-otel-run``: once with
beacon-otel's own server and client instrumentations, once with the upstream ones selected
(``BEACON_OTEL_FASTAPI_UPSTREAM=true BEACON_OTEL_HTTPX_UPSTREAM=true``). The same assertions on
what a real OTLP receiver gets must hold both ways. The apps are shared across tests (one per mode
and set of variables); each request carries a ``traceparent`` of its own, so a test looks only
at its own traces.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedMetric, ReceivedSpan
from tests.conftest import FakeProviders
from tests.support.processes import Launched, free_port, launch, otlp_env, run_python, uvicorn_command

SERVER, CLIENT = 2, 3  # OTLP span kinds
MODES = {
    "beacon-otel": {},
    "upstream": {"BEACON_OTEL_FASTAPI_UPSTREAM": "true", "BEACON_OTEL_HTTPX_UPSTREAM": "true"},
}
SCOPES = {
    "beacon-otel": ("beacon_otel.instrumentation.asgi", "beacon_otel.instrumentation.httpx"),
    "upstream": ("opentelemetry.instrumentation.fastapi", "opentelemetry.instrumentation.httpx"),
}
TOKEN = f"tok-SECRET-{secrets.token_hex(4)}"  # the router's provider credential
CAPTURE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS"

# The variables every shared app gets (semantic conventions and methods have apps of their own).
STANDARD = {
    # FastAPI's own variable wins over the generic one, which httpx then uses.
    "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "/health$,/ready",
    "OTEL_PYTHON_EXCLUDED_URLS": "golem-us,/providers",
    f"{CAPTURE}_SERVER_REQUEST": "x-request-source,X-Multi,authorization,cookie,x-internal-.*",
    f"{CAPTURE}_SERVER_RESPONSE": "content-.*",
    f"{CAPTURE}_CLIENT_REQUEST": "accept,authorization,traceparent",
    f"{CAPTURE}_CLIENT_RESPONSE": "content-type",
    f"{CAPTURE}_SANITIZE_FIELDS": "x-internal-.*",
    "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
}
DUPLICATE = {
    "OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup",
    "OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS": "true",
}
VARIANTS = {"standard": STANDARD, "duplicate": DUPLICATE}


class App(NamedTuple):
    launched: Launched
    receiver: OtlpReceiver


class Apps:
    """Demo routers launched on first use, one per (mode, variant), stopped with the module."""

    def __init__(self, stack: contextlib.ExitStack, providers: FakeProviders, tmp_path: Path) -> None:
        self._stack = stack
        self._providers = providers
        self._tmp_path = tmp_path
        self._running: dict[tuple[str, str], App] = {}

    def get(self, mode: str, variant: str = "standard") -> App:
        if (mode, variant) not in self._running:
            receiver = self._stack.enter_context(OtlpReceiver())
            port = free_port()
            providers = ",".join(
                self._providers.spec(name, kind, region)
                for name, kind, region in (("golem-us", "golem", "us-east"), ("modal-eu", "modal", "eu-west"))
            )
            env = otlp_env(
                receiver.http_endpoint,
                DEMO_PROVIDERS=providers,
                DEMO_PROVIDER_TOKEN=TOKEN,
                **MODES[mode],
                **VARIANTS[variant],
            )
            launched = self._stack.enter_context(launch(uvicorn_command(port), env, self._tmp_path, port))
            self._running[(mode, variant)] = App(launched, receiver)
        return self._running[(mode, variant)]


@pytest.fixture(scope="module")
def apps(fake_providers_server: FakeProviders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    fake_providers_server.reset()
    with contextlib.ExitStack() as stack:
        yield Apps(stack, fake_providers_server, tmp_path_factory.mktemp("apps"))


def traceparent() -> tuple[str, dict[str, str]]:
    """A new trace id, and the header that makes the app's server span part of it."""
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def spans_of(receiver: OtlpReceiver, trace_id: str, expected: int) -> list[ReceivedSpan]:
    """The SERVER and CLIENT spans of one trace, once ``expected`` of them have arrived."""

    def ours(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [span for span in spans if span.trace_id == trace_id and span.kind in (SERVER, CLIENT)]

    return ours(receiver.wait_for_spans(lambda got: len(ours(got)) >= expected, timeout=15))


def one(spans: list[ReceivedSpan], kind: int, **where: str) -> ReceivedSpan:
    found = [
        span
        for span in spans
        if span.kind == kind and all(str(span.attributes.get(k, "")).endswith(v) for k, v in where.items())
    ]
    assert len(found) == 1, [(span.name, span.kind, span.attributes) for span in spans]
    return found[0]


def client_url(span: ReceivedSpan) -> str:
    return str(span.attributes.get("url.full") or span.attributes.get("http.url"))


def routes(metrics: list[ReceivedMetric]) -> set[str]:
    return {
        str(attributes.get("http.route"))
        for metric in metrics
        if metric.name == "http.server.request.duration"
        for attributes, _ in metric.data_points
    }


# --- excluded URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_excluded_urls_get_no_span_no_metrics_and_no_trace_headers(
    apps: Apps, mode: str, fake_providers_server: FakeProviders
) -> None:
    app = apps.get(mode)
    excluded = {}
    for path in ("/health", "/ready"):
        trace_id, headers = traceparent()
        assert app.launched.get(path, headers=headers).status_code in (200, 503)
        excluded[path] = trace_id
    trace_id, headers = traceparent()
    assert app.launched.get("/providers", headers=headers).status_code == 200

    spans = spans_of(app.receiver, trace_id, expected=2)  # the server span, modal-eu's call
    server = one(spans, SERVER)
    assert server.attributes["http.route"] == "/providers", "FastAPI's own variable wins over the generic"
    assert server.scope == SCOPES[mode][0]
    (client,) = [span for span in spans if span.kind == CLIENT]
    assert "/p/modal-eu/" in client_url(client), "golem-us matches OTEL_PYTHON_EXCLUDED_URLS: no span"
    every = app.receiver.spans()
    assert not [span for span in every if span.trace_id in excluded.values()], "excluded: no span"
    assert not [span for span in every if "golem-us" in client_url(span) and span.trace_id == trace_id]

    received: dict[str, dict[str, str]] = {
        name: dict(state["last_headers"])  # type: ignore[call-overload]
        for name, state in fake_providers_server.state().items()
    }
    assert trace_id in received["modal-eu"]["traceparent"]
    assert "traceparent" not in received["golem-us"], "an excluded call sends no context"

    metrics = app.receiver.wait_for_metrics(lambda got: "/providers" in routes(got), timeout=15)
    assert not routes(metrics) & {"/health", "/ready"}, "an excluded request is not counted"
    assert "GET /health HTTP/1.1" in app.launched.output(), "the access log is unchanged"


# --- captured headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_captured_headers_are_attribute_lists_sanitized_and_credentials_never_kept(
    apps: Apps, mode: str
) -> None:
    app = apps.get(mode)
    trace_id, headers = traceparent()
    password = f"cookie-SECRET-{secrets.token_hex(4)}"
    sent = [
        *headers.items(),
        ("X-Request-Source", "probe"),
        ("x-multi", "a"),
        ("x-multi", "b"),
        ("authorization", f"Bearer {password}"),
        ("cookie", f"session={password}"),
        ("x-internal-note", "hush"),
        ("x-not-captured", "no"),
    ]
    response = httpx.get(f"{app.launched.base_url}/providers", headers=sent, timeout=10)
    assert response.status_code == 200

    spans = spans_of(app.receiver, trace_id, expected=2)
    server = one(spans, SERVER).attributes
    assert server["http.request.header.x_request_source"] == ["probe"]
    assert server["http.request.header.x_multi"] == ["a", "b"], "a repeated header keeps each value"
    assert server["http.request.header.x_internal_note"] == ["[REDACTED]"], "a sanitize field"
    assert server["http.request.header.authorization"] == ["[scrubbed]"], "credentials: always hidden"
    assert server["http.request.header.cookie"] == ["[scrubbed]"]
    assert "http.request.header.x_not_captured" not in server
    assert server["http.response.header.content_type"] == ["application/json"]
    assert server["http.response.header.content_length"] == [response.headers["content-length"]]

    client = next(span for span in spans if span.kind == CLIENT).attributes
    assert client["http.request.header.accept"] == ["*/*"]
    assert client["http.request.header.authorization"] == ["[scrubbed]"], "the router's provider token"
    assert "http.request.header.traceparent" not in client, "read before the trace headers are added"
    assert client["http.response.header.content_type"] == ["application/json"]
    everything = json.dumps([span.attributes for span in app.receiver.spans()])
    assert password not in everything and TOKEN not in everything


# --- semantic conventions --------------------------------------------------------------------------

OLD_SERVER = {
    "http.method": "GET",
    "http.status_code": 200,
    "http.target": "/providers",
    "http.scheme": "http",
    "http.flavor": "1.1",
    "http.user_agent": "semconv-probe",
    "net.peer.ip": "127.0.0.1",
}
STABLE_SERVER = {
    "http.request.method": "GET",
    "http.response.status_code": 200,
    "url.path": "/providers",
    "url.scheme": "http",
    "network.protocol.version": "1.1",
    "user_agent.original": "semconv-probe",
    "client.address": "127.0.0.1",
    "http.route": "/providers",
}


def _provider_call(mode: str, variant: str, apps: Apps) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes of one GET /providers server span and of its call to modal-eu."""
    app = apps.get(mode, variant)
    trace_id, headers = traceparent()
    response = app.launched.get("/providers?q=1", headers={**headers, "user-agent": "semconv-probe"})
    assert response.status_code == 200
    expected = 2 if variant == "standard" else 3  # golem-us's call is excluded in the standard apps
    spans = spans_of(app.receiver, trace_id, expected)
    client = next(span for span in spans if span.kind == CLIENT and "modal-eu" in client_url(span))
    return one(spans, SERVER).attributes, client.attributes


@pytest.mark.parametrize("mode", MODES)
def test_semconv_opt_in_http_gives_the_stable_names_only(apps: Apps, mode: str) -> None:
    server, client = _provider_call(mode, "standard", apps)
    assert server.items() >= STABLE_SERVER.items()
    assert not set(OLD_SERVER) & set(server)
    assert client["http.request.method"] == "GET" and client["http.response.status_code"] == 200
    assert client["url.full"].endswith("/p/modal-eu/health")
    assert not {"http.method", "http.url", "http.status_code"} & set(client)


@pytest.mark.parametrize("mode", MODES)
def test_semconv_opt_in_http_dup_gives_old_and_stable_names(apps: Apps, mode: str) -> None:
    server, client = _provider_call(mode, "duplicate", apps)
    assert server.items() >= {**STABLE_SERVER, **OLD_SERVER}.items()
    assert server["http.url"].endswith("/providers?q=1")
    assert f":{server['net.host.port']}" in str(apps.get(mode, "duplicate").launched.base_url)
    assert client["http.method"] == client["http.request.method"] == "GET"
    assert client["http.status_code"] == client["http.response.status_code"] == 200
    assert client["http.url"] == client["url.full"] and client["http.url"].endswith("/p/modal-eu/health")
    assert client["http.flavor"] == client["network.protocol.version"] == "1.1"
    assert client["http.host"] == "127.0.0.1" and client["net.peer.port"] == client["server.port"]


@pytest.mark.parametrize("mode", MODES)
def test_unknown_methods_are_other_unless_every_method_is_captured(apps: Apps, mode: str) -> None:
    recorded = {}
    for variant in ("standard", "duplicate"):  # the second sets ..._HTTP_CAPTURE_ALL_METHODS=true
        app = apps.get(mode, variant)
        trace_id, headers = traceparent()
        httpx.request("PURGE", f"{app.launched.base_url}/providers", headers=headers, timeout=10)
        recorded[variant] = one(spans_of(app.receiver, trace_id, expected=1), SERVER)
    other = recorded["standard"]
    assert other.attributes["http.request.method"] == "_OTHER"
    assert other.attributes["http.request.method_original"] == "PURGE"
    assert other.name.split()[0] == "HTTP"
    purge = recorded["duplicate"]
    assert purge.attributes["http.request.method"] == purge.attributes["http.method"] == "PURGE"
    assert "http.request.method_original" not in purge.attributes
    assert purge.name.split()[0] == "PURGE"


# --- what beacon-otel does not support, and the former name ----------------------------------------

UNSUPPORTED = {
    "OTEL_PYTHON_DJANGO_EXCLUDED_URLS": "/admin",  # another instrumentation's
    "OTEL_LOG_LEVEL": "debug",  # a standard variable the Python SDK never reads
    "OTEL_SERVICE_NAMES": "typo",
}


def test_unsupported_otel_variables_are_named_in_one_start_up_warning_and_by_doctor(
    receiver: OtlpReceiver,
) -> None:
    env = otlp_env(receiver.http_endpoint, **UNSUPPORTED, BEACON_OTEL_ASGI_INTERNAL_SPANS="false")
    result = run_python("print('app ran')", env)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "app ran" in output
    (warning,) = [line for line in output.splitlines() if "have no effect" in line]
    assert all(name in warning for name in UNSUPPORTED), warning
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in warning, "a variable beacon-otel reads is not named"
    (deprecated,) = [
        line for line in output.splitlines() if "BEACON_OTEL_ASGI_INTERNAL_SPANS is deprecated" in line
    ]
    assert "BEACON_OTEL_FASTAPI_UPSTREAM" in deprecated
    assert json.loads(warning)["level"] == "warning", "a line of the log pipeline, like the app's"

    doctor = subprocess.run(
        ["beacon-otel", "doctor", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    checks = {check["check"]: check for check in json.loads(doctor.stdout)}
    assert checks["otel-variables"]["status"] == "warn"
    assert all(name in checks["otel-variables"]["detail"] for name in UNSUPPORTED)
    assert (
        checks["deprecated"]["status"] == "warn"
        and "BEACON_OTEL_FASTAPI_UPSTREAM" in checks["deprecated"]["detail"]
    )
    assert checks["config"]["status"] == "ok", "warnings, not errors: the app runs"


def test_an_unsupported_value_stops_the_launch_and_fails_the_doctor(tmp_path: Path) -> None:
    env = otlp_env("http://127.0.0.1:9", OTEL_TRACES_EXPORTER="zipkin")
    result = run_python("print('app ran')", env)
    assert result.returncode == 2 and "app ran" not in result.stdout
    assert "OTEL_TRACES_EXPORTER='zipkin' is invalid" in result.stderr
    doctor = subprocess.run(
        ["beacon-otel", "doctor", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    failed = [check for check in json.loads(doctor.stdout) if check["status"] == "fail"]
    assert any("OTEL_TRACES_EXPORTER='zipkin'" in check["detail"] for check in failed)


def test_the_former_switch_name_still_selects_upstream_and_warns_once(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    port = free_port()
    env = otlp_env(receiver.http_endpoint, BEACON_OTEL_ASGI_INTERNAL_SPANS="true")
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        trace_id, headers = traceparent()
        assert app.get("/health", headers=headers).status_code == 200
        spans = receiver.wait_for_spans(
            lambda got: any(s.trace_id == trace_id and s.kind == SERVER for s in got)
        )
        output = app.output()
    (server,) = [span for span in spans if span.trace_id == trace_id and span.kind == SERVER]
    assert server.scope == "opentelemetry.instrumentation.fastapi"
    assert output.count("BEACON_OTEL_ASGI_INTERNAL_SPANS is deprecated") == 1, output[-3000:]
