"""Black-box tests: ``beacon-otel-run`` launching the demo router as real processes.

Every assertion is about what a real OTLP receiver got over a socket, or what the process
printed and answered; nothing here looks inside the app.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from beacon_otel.launcher import find_executable
from beacon_otel.stack.postgres import PostgresServer
from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.conftest import FakeProviders
from tests.support.processes import ROOT, clean_env, free_port, launch, otlp_env, stop, uvicorn_command

SERVER, CLIENT = 2, 3  # OTLP span kinds


def _server_span(spans: list[ReceivedSpan], route: str) -> ReceivedSpan:
    matches = [span for span in spans if span.kind == SERVER and span.attributes.get("http.route") == route]
    assert matches, f"no server span for {route}; got {[(s.name, s.kind) for s in spans]}"
    return matches[-1]


def _providers(fakes: FakeProviders) -> str:
    return ",".join([fakes.spec("golem-us", "golem", "us-east"), fakes.spec("modal-eu", "modal", "eu-west")])


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_server_and_client_spans_arrive_over_otlp(
    protocol: str, receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    port = free_port()
    env = otlp_env(
        endpoint, protocol, DEMO_PROVIDERS=_providers(fake_providers), OTEL_SERVICE_NAME="router-test"
    )
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        assert app.get("/providers").status_code == 200
        spans = receiver.wait_for_spans(
            lambda got: (
                any(s.attributes.get("http.route") == "/providers" for s in got)
                and sum(1 for s in got if s.kind == CLIENT) >= 4
            )  # start-up sweep + this request
        )
        metrics = receiver.wait_for_metrics(
            lambda got: (
                any(
                    m.name == "http.server.request.duration"
                    and any(attributes.get("http.route") == "/providers" for attributes, _ in m.data_points)
                    for m in got
                )
                and any(m.name == "http.server.active_requests" for m in got)
                and any(m.name == "http.client.request.duration" for m in got)
                and any(m.name == "http.client.active_requests" for m in got)
            )
        )

    server = _server_span(spans, "/providers")
    assert server.name == "GET /providers"
    assert server.attributes["http.request.method"] == "GET"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["url.path"] == "/providers"
    assert server.transport == ("grpc" if protocol == "grpc" else "http")

    children = [s for s in spans if s.kind == CLIENT and s.parent_span_id == server.span_id]
    assert len(children) == 2, "one httpx client span per provider, children of the server span"
    urls = sorted(str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in children)
    assert urls == sorted(f"{fake_providers.endpoint(n)}/health" for n in ("golem-us", "modal-eu"))
    assert all(s.trace_id == server.trace_id for s in children)
    assert {s.scope for s in children} == {"beacon_otel.instrumentation.httpx"}
    assert all(s.attributes["http.response.status_code"] == 200 for s in children)

    duration = next(
        m
        for m in metrics
        if m.name == "http.server.request.duration"
        and any(attributes.get("http.route") == "/providers" for attributes, _ in m.data_points)
    )
    assert duration.unit == "s" and duration.kind == "histogram"
    assert duration.scope == "beacon_otel.instrumentation.asgi"
    assert duration.resource["service.instance.id"] == server.resource["service.instance.id"]
    (providers_point,) = [
        value for attributes, value in duration.data_points if attributes.get("http.route") == "/providers"
    ]
    (providers_attributes,) = [a for a, _ in duration.data_points if a.get("http.route") == "/providers"]
    assert providers_attributes == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "http.route": "/providers",
        "http.response.status_code": 200,
    }
    assert providers_point["count"] == 1 and len(providers_point["bucket_counts"]) == 15
    assert sum(providers_point["bucket_counts"]) == 1 and 0 < providers_point["sum"] < 10
    client_duration = next(m for m in metrics if m.name == "http.client.request.duration")
    assert client_duration.scope == "beacon_otel.instrumentation.httpx"
    assert {attributes["server.address"] for attributes, _ in client_duration.data_points} == {"127.0.0.1"}
    client_active = [m for m in metrics if m.name == "http.client.active_requests"][-1]
    assert {attributes["server.address"] for attributes, _ in client_active.data_points} == {"127.0.0.1"}
    assert all(value == 0 for _, value in client_active.data_points), "no client request in flight"
    active = next(m for m in metrics if m.name == "http.server.active_requests")
    assert active.kind == "sum" and not active.is_monotonic

    resource = server.resource
    assert resource["service.name"] == "router-test"
    assert resource["telemetry.distro.name"] == "beacon-otel"
    assert resource["service.instance.id"]


def test_only_one_server_span_per_request(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """Neither FastAPI's own telemetry nor the internal ASGI send/receive spans double up."""
    port = free_port()
    with launch(uvicorn_command(port), otlp_env(receiver.http_endpoint), tmp_path, port) as app:
        for _ in range(3):
            assert app.get("/health").status_code == 200
        time.sleep(0.5)
        spans = receiver.wait_for_spans(lambda got: len([s for s in got if s.name == "GET /health"]) >= 3)
    health = [s for s in spans if s.attributes.get("http.route") == "/health"]
    assert len(health) == 3 + 1  # three requests plus the readiness probe of launch()
    assert all(s.kind == SERVER for s in spans)


def test_asgi_internal_spans_on_request(receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    env = otlp_env(receiver.http_endpoint, BEACON_OTEL_ASGI_INTERNAL_SPANS="true")
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        app.get("/health")
        spans = receiver.wait_for_spans(lambda got: any("http send" in s.name for s in got))
    assert any(s.kind == SERVER and s.attributes.get("http.route") == "/health" for s in spans)


def test_upstream_httpx_instrumentation_on_request(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    port = free_port()
    env = otlp_env(
        receiver.http_endpoint, DEMO_PROVIDERS=_providers(fake_providers), BEACON_OTEL_HTTPX_UPSTREAM="true"
    )
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        assert app.get("/providers").status_code == 200
        spans = receiver.wait_for_spans(
            lambda got: (
                any(s.attributes.get("http.route") == "/providers" for s in got)
                and sum(1 for s in got if s.kind == CLIENT) >= 4
            )
        )
    server = _server_span(spans, "/providers")
    children = [s for s in spans if s.kind == CLIENT and s.parent_span_id == server.span_id]
    assert len(children) == 2
    assert {s.scope for s in children} == {"opentelemetry.instrumentation.httpx"}


def test_legacy_x_trace_id_becomes_the_trace_id(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    legacy = uuid.UUID("6f1c2a9e-5b7d-4c1e-9a3f-0123456789ab")
    port = free_port()
    env = otlp_env(receiver.http_endpoint, DEMO_PROVIDERS=_providers(fake_providers))
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        assert app.get("/providers", headers={"X-Trace-Id": str(legacy)}).status_code == 200
        spans = receiver.wait_for_spans(
            lambda got: (
                any(s.trace_id == legacy.hex for s in got if s.kind == CLIENT)
                and any(s.attributes.get("http.route") == "/providers" for s in got)
            )
        )
        outgoing = fake_providers.state()["golem-us"]["last_headers"]

    server = _server_span(spans, "/providers")
    assert server.trace_id == legacy.hex
    assert server.parent_span_id == "", "the legacy header starts a trace; it has no parent span"
    assert isinstance(outgoing, dict)
    assert outgoing["x-trace-id"] == str(legacy)
    assert outgoing["traceparent"].split("-")[1] == legacy.hex


def test_traceparent_wins_over_x_trace_id(receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    parent_trace, parent_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    headers = {"traceparent": f"00-{parent_trace}-{parent_span}-01", "X-Trace-Id": str(uuid.uuid4())}
    with launch(uvicorn_command(port), otlp_env(receiver.http_endpoint), tmp_path, port) as app:
        app.get("/ready", headers=headers)
        spans = receiver.wait_for_spans(
            lambda got: any(s.attributes.get("http.route") == "/ready" for s in got)
        )
    server = _server_span(spans, "/ready")
    assert (server.trace_id, server.parent_span_id) == (parent_trace, parent_span)


@pytest.mark.parametrize("bad", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "x" * 500])
def test_malformed_x_trace_id_is_ignored(bad: str, receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    with launch(uvicorn_command(port), otlp_env(receiver.http_endpoint), tmp_path, port) as app:
        assert app.get("/ready", headers={"X-Trace-Id": bad}).status_code in (200, 503)
        spans = receiver.wait_for_spans(
            lambda got: any(s.attributes.get("http.route") == "/ready" for s in got)
        )
    server = _server_span(spans, "/ready")
    assert len(server.trace_id) == 32 and server.trace_id != "0" * 32


@pytest.mark.parametrize(
    ("upstream", "scope", "system_key"),
    [
        ("false", "beacon_otel.instrumentation.asyncpg", "db.system.name"),
        ("true", "opentelemetry.instrumentation.asyncpg", "db.system"),
    ],
)
def test_asyncpg_spans_without_parameters(
    receiver: OtlpReceiver,
    fake_providers: FakeProviders,
    postgres: PostgresServer,
    tmp_path: Path,
    upstream: str,
    scope: str,
    system_key: str,
) -> None:
    port = free_port()
    env = otlp_env(
        receiver.http_endpoint,
        DEMO_PROVIDERS=_providers(fake_providers),
        DATABASE_URL=postgres.dsn,
        BEACON_OTEL_ASYNCPG_UPSTREAM=upstream,
    )
    secret_model = "model-param-value-7d41"
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        response = httpx.post(
            f"{app.base_url}/inference", json={"model": secret_model, "prompt": "hello"}, timeout=10
        )
        assert response.status_code == 200 and response.json()["success"] is True
        assert app.get("/db").status_code == 200
        spans = receiver.wait_for_spans(
            lambda got: (
                any(s.attributes.get("http.route") == "/db" for s in got)
                and any(s.attributes.get("http.route") == "/inference" for s in got)
            )
        )

    inference = _server_span(spans, "/inference")
    db_spans = [s for s in spans if s.trace_id == inference.trace_id and s.scope.endswith("asyncpg")]
    assert db_spans, f"no asyncpg span in the /inference trace: {[(s.name, s.scope) for s in spans]}"
    assert {s.scope for s in db_spans} == {scope}
    insert = next(s for s in db_spans if "INSERT" in str(s.attributes))
    assert insert.kind == CLIENT and insert.name == "INSERT"
    assert insert.attributes[system_key] == "postgresql"
    assert secret_model not in repr(insert.attributes), "query parameters must never be recorded"
    count_span = _server_span(spans, "/db")
    assert any(s.trace_id == count_span.trace_id and s.scope.endswith("asyncpg") for s in spans)


def test_each_uvicorn_worker_has_its_own_instance_id(receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    with launch(
        uvicorn_command(port, "--workers", "2"), otlp_env(receiver.http_endpoint), tmp_path, port
    ) as app:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for _ in range(20):
                httpx.get(f"{app.base_url}/health", headers={"Connection": "close"}, timeout=5)
            instances = {s.resource["service.instance.id"] for s in receiver.spans() if s.kind == SERVER}
            if len(instances) >= 2:
                break
            time.sleep(0.2)
    assert len(instances) == 2, f"expected spans from 2 workers, got instances {instances}"


def test_reload_process_is_instrumented(receiver: OtlpReceiver, tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    module = app_dir / "reloadable.py"
    module.write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/health')\nasync def health():\n"
        "    return {'version': 1}\n"
    )
    port = free_port()
    env = otlp_env(receiver.http_endpoint, PYTHONPATH=str(app_dir))
    command = uvicorn_command(port, "--reload", "--reload-dir", str(app_dir), app="reloadable:app")
    with launch(command, env, tmp_path, port, cwd=app_dir) as app:
        app.get("/health")
        first = receiver.wait_for_spans(lambda got: any(s.kind == SERVER for s in got))
        first_instance = first[-1].resource["service.instance.id"]
        module.write_text(module.read_text().replace("'version': 1", "'version': 2"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if app.get("/health").json() == {"version": 2}:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the reloaded app never served version 2")
        spans = receiver.wait_for_spans(
            lambda got: any(
                s.kind == SERVER and s.resource["service.instance.id"] != first_instance for s in got
            )
        )
    assert {s.resource["service.instance.id"] for s in spans if s.kind == SERVER} >= {first_instance}


def test_gunicorn_with_uvicorn_workers(receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    command = [
        "beacon-otel-run", "gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2",
        "-b", f"127.0.0.1:{port}", "demo_router.app:app",
    ]  # fmt: skip
    with launch(command, otlp_env(receiver.http_endpoint), tmp_path, port) as app:
        deadline = time.monotonic() + 30
        instances: set[str] = set()
        while time.monotonic() < deadline and len(instances) < 2:
            for _ in range(20):
                httpx.get(f"{app.base_url}/health", headers={"Connection": "close"}, timeout=5)
            time.sleep(0.3)
            instances = {s.resource["service.instance.id"] for s in receiver.spans() if s.kind == SERVER}
        output = app.output()
    assert len(instances) == 2, f"spans from both forked workers expected, got {instances}\n{output[-2000:]}"
    assert "Traceback" not in output


SCRIPT = """
import sys, httpx
response = httpx.get(sys.argv[1], timeout=5)
print("status", response.status_code)
"""


@pytest.mark.parametrize("style", ["script", "module"])
def test_python_script_and_module(
    style: str, receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    (tmp_path / "pingprobe.py").write_text(SCRIPT)
    target = f"{fake_providers.endpoint('golem-us')}/health"
    command = ["python", str(tmp_path / "pingprobe.py"), target]
    if style == "module":
        command = ["python", "-m", "pingprobe", target]
    env = otlp_env(receiver.http_endpoint)
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(
        ["beacon-otel-run", *command], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "status 200" in result.stdout
    spans = receiver.wait_for_spans(lambda got: any(s.kind == CLIENT for s in got))
    assert any(str(s.attributes.get("url.full", s.attributes.get("http.url"))) == target for s in spans)


def test_exit_status_and_signals_are_the_commands(tmp_path: Path) -> None:
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", "import sys; sys.exit(7)"],
        env=clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none"),
        timeout=60,
    )
    assert result.returncode == 7


def test_unknown_command(tmp_path: Path) -> None:
    result = subprocess.run(
        ["beacon-otel-run", "no-such-command-xyz"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 127
    assert "command not found: no-such-command-xyz" in result.stderr


def test_the_launcher_imports_little(tmp_path: Path) -> None:
    """The launcher's interpreter runs before the command starts: what it imports is start-up
    time. Without site-packages (``-S``), as from a wheel: none of the heavier standard modules."""
    script = (
        "import sys\n"
        "import beacon_otel.launcher\n"
        "print(','.join(m for m in ('dataclasses', 'inspect', 'shutil', 'importlib.util', 'urllib.parse') "
        "if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the launcher imported {result.stdout.strip()}"


def test_an_http_exporting_app_never_imports_grpc_or_packaging(receiver: OtlpReceiver) -> None:
    """After its first exports over OTLP/HTTP, with httpx and asyncpg instrumented, a process
    has loaded neither grpc (about 10 ms) nor packaging (about 8 ms)."""
    script = (
        "import sys, asyncpg, httpx\n"
        "from opentelemetry import trace\n"
        "with trace.get_tracer('t').start_as_current_span('work'):\n"
        "    pass\n"
        "assert trace.get_tracer_provider().force_flush(10_000)\n"
        "print(','.join(m for m in ('grpc', 'packaging') if m in sys.modules))\n"
    )
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", script],
        env=otlp_env(receiver.http_endpoint, BEACON_OTEL_LOG_FORMAT="none"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert receiver.wait_for_spans(lambda got: any(span.name == "work" for span in got))
    assert result.stdout.strip() == "", f"imported {result.stdout.strip()}"


def test_commands_are_found_as_the_shell_finds_them(tmp_path: Path) -> None:
    """The launcher's own PATH search gives shutil.which's answers."""
    first, second, plain = tmp_path / "first", tmp_path / "second", tmp_path / "plain"
    for folder in (first, second):
        folder.mkdir()
    (first / "tool").write_text("#!/bin/sh\n")  # not executable: skipped
    (first / "dir-tool").mkdir()  # a folder: skipped
    (second / "tool").write_text("#!/bin/sh\n")
    (second / "tool").chmod(0o755)
    (second / "dir-tool").write_text("#!/bin/sh\n")
    (second / "dir-tool").chmod(0o755)
    plain.write_text("#!/bin/sh\n")
    path = os.pathsep.join([str(first), str(second)])
    for command in ("tool", "dir-tool", "missing", str(second / "tool"), str(plain), str(first / "dir-tool")):
        assert find_executable(command, path) == shutil.which(command, path=path), command
    assert find_executable("tool", path) == str(second / "tool")
    assert find_executable("tool", "") is None is shutil.which("tool", path=""), "an empty PATH finds nothing"


INVALID = [
    ("OTEL_TRACES_EXPORTER", "zipkin"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ("OTEL_TRACES_SAMPLER_ARG", "1.7"),
    ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "authorization"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
    ("OTEL_TRACES_SAMPLER", "sometimes"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "-5"),
]


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_invalid_variable_stops_before_the_app_starts(name: str, value: str, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", f"open({str(marker)!r}, 'w')"],
        env=clean_env(**{name: value}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert name in result.stderr
    assert not marker.exists(), "the command must not start with an invalid configuration"


def test_all_problems_are_listed_at_once(tmp_path: Path) -> None:
    env = clean_env(**dict(INVALID))
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", "pass"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == len(INVALID)
    for name, _ in INVALID:
        assert sum(name in line for line in problems) >= 1


def test_collector_down_costs_the_app_nothing(fake_providers: FakeProviders, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    port = free_port()
    env = otlp_env(dead, DEMO_PROVIDERS=_providers(fake_providers), OTEL_EXPORTER_OTLP_TIMEOUT="500")
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        statuses = [app.get("/health").status_code for _ in range(200)]
        time.sleep(1.5)  # several export rounds fail meanwhile
        output = app.output()
    assert statuses == [200] * 200
    lines = [line for line in output.splitlines() if "beacon-otel: cannot export" in line]
    failures = [line for line in lines if line.startswith("{")]  # records of the log pipeline
    assert 1 <= len(failures) <= 3, "at most one line per signal, not one per batch:\n" + "\n".join(lines)
    # ... and each also as a plain line on stderr, where operators watch the process's trouble
    assert len(lines) == 2 * len(failures), "\n".join(lines)
    assert "traces" in " ".join(failures) and dead in " ".join(failures)
    assert "Traceback" not in output
    assert "Failed to export" not in output, "the upstream per-batch errors must be folded into ours"


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_at_exit_a_refusing_collector_gets_one_attempt(protocol: str, receiver: OtlpReceiver) -> None:
    """A script that ends while the collector refuses (503 / UNAVAILABLE, both retryable) does
    not wait out the retries: its last batch is tried once."""
    receiver.set_mode("unavailable")
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    env = otlp_env(endpoint, protocol, OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    script = "from opentelemetry import trace\ntrace.get_tracer('exit').start_span('last').end()\n"
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert receiver.rejected_counts().get("traces") == 1, receiver.stats()
    assert "cannot export traces" in result.stdout + result.stderr, "the loss is still reported"


@pytest.mark.parametrize("mode", ["slow", "unavailable"])
def test_slow_or_refusing_collector_costs_the_app_nothing(
    mode: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    receiver.set_mode(mode, slow_seconds=3.0)  # type: ignore[arg-type]
    port = free_port()
    env = otlp_env(receiver.http_endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="400")
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        statuses = [app.get("/health").status_code for _ in range(200)]
        time.sleep(1.5)
        output = app.output()
    assert statuses == [200] * 200
    failures = [
        line for line in output.splitlines() if "beacon-otel: cannot export" in line and line[:1] == "{"
    ]
    assert 1 <= len(failures) <= 3, "\n".join(failures)
    if mode == "unavailable":
        assert any("traces" in line and "HTTP 503" in line for line in failures), failures
    assert "Traceback" not in output
    assert sum(receiver.request_counts().values()) >= 1, "the exporter did reach the collector"


def test_opentelemetry_instrument_uses_the_same_setup(receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    env = otlp_env(receiver.http_endpoint, OTEL_PYTHON_DISTRO="beacon", OTEL_PYTHON_CONFIGURATOR="beacon")
    command = ["opentelemetry-instrument", *uvicorn_command(port)[1:]]
    with launch(command, env, tmp_path, port) as app:
        app.get("/ready")
        spans = receiver.wait_for_spans(
            lambda got: any(s.attributes.get("http.route") == "/ready" for s in got)
        )
    server = _server_span(spans, "/ready")
    assert server.resource["telemetry.distro.name"] == "beacon-otel"
    assert len([s for s in spans if s.kind == SERVER and s.attributes.get("http.route") == "/ready"]) == 1


def test_disabled_instrumentation(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    port = free_port()
    env = otlp_env(
        receiver.http_endpoint,
        DEMO_PROVIDERS=_providers(fake_providers),
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="httpx, asyncpg",
    )
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        app.get("/providers")
        spans = receiver.wait_for_spans(
            lambda got: any(s.attributes.get("http.route") == "/providers" for s in got)
        )
        time.sleep(0.5)
    assert _server_span(spans, "/providers")
    assert not [s for s in receiver.spans() if s.kind == CLIENT], "httpx was disabled"


def test_sdk_disabled_runs_the_app_without_telemetry(receiver: OtlpReceiver, tmp_path: Path) -> None:
    port = free_port()
    env = otlp_env(receiver.http_endpoint, OTEL_SDK_DISABLED="true")
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        assert app.get("/health").status_code == 200
        time.sleep(0.5)
    assert receiver.spans() == []


def test_version_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "beacon_otel.launcher", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("beacon-otel-run ")


def test_sigterm_still_exports_the_last_spans(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """uvicorn re-raises SIGTERM after its graceful shutdown, so atexit never runs: the distro
    flushes at the end of the app's lifespan instead. A long schedule delay keeps every span
    queued until then."""
    port = free_port()
    env = otlp_env(receiver.http_endpoint)
    env["OTEL_BSP_SCHEDULE_DELAY"] = "60000"
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        for _ in range(7):
            assert app.get("/health").status_code == 200
        assert not [s for s in receiver.spans() if s.attributes.get("http.route") == "/health"]
        stop(app.process)
    spans = receiver.wait_for_spans(
        lambda got: len([s for s in got if s.attributes.get("http.route") == "/health"]) >= 8, timeout=5
    )
    assert (
        len([s for s in spans if s.attributes.get("http.route") == "/health"]) == 8
    )  # 7 + the readiness probe
