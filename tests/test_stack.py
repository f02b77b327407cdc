"""The whole route on the real programs: the demo router under ``beacon-otel-run`` -> the built
OpenTelemetry Collector (collector/otelcol.yaml) -> the built Jaeger v2, the sink and Postgres,
started by ``beacon-otel stack``. Assertions are on what Jaeger's query API, the Collector's
Prometheus endpoint, ``trace_spans`` and a test OTLP backend hold."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from beacon_otel.stack import addresses
from beacon_otel.stack.build import go_is_new_enough, go_version_key
from beacon_otel.stack.up import Stack
from beacon_otel.testing.otlp_receiver import OtlpReceiver
from tests.conftest import FakeProviders
from tests.support.processes import BIN, clean_env, free_port, launch, uvicorn_command
from tests.support.stack import (
    eventually,
    free_addresses,
    jaeger_parent,
    jaeger_tags,
    jaeger_trace,
    otlp_http_endpoint,
    prometheus_samples,
    require_binaries,
    running_stack,
)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ROUTER_PORT = free_port()  # the uptime checks need the router's address before the stack starts
BACKEND_HEADERS = '{x-api-key: backend-key-7f2a, authorization: "Bearer backend-token"}'


def _database_rows(stack: Stack, sql: str) -> list[tuple[Any, ...]]:
    import asyncio

    import asyncpg

    async def fetch() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(stack.database_url)
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _table_span_ids(stack: Stack, trace_id: str) -> list[str]:
    """The 16-hex span ids of ``trace_id``'s rows, one entry per row (duplicates would repeat)."""
    rows = _database_rows(
        stack,
        "SELECT right(replace(span_id::text, '-', ''), 16) FROM trace_spans "
        f"WHERE trace_id = '{uuid.UUID(trace_id)}'",
    )
    return sorted(row[0] for row in rows)


def _router_env(stack: Stack, fake_providers: FakeProviders, **extra: str) -> dict[str, str]:
    """The demo router with the defaults a user gets, pointed at the stack's Collector."""
    return clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http_endpoint(stack),
        OTEL_SERVICE_NAME="hybrid-router",
        BEACON_OTEL_PROVIDER_HOOKS="demo_router.router",
        DEMO_PROVIDERS=",".join(
            [
                fake_providers.spec("golem-us", "golem", "us-east"),
                fake_providers.spec("modal-eu", "modal", "eu-west"),
            ]
        ),
        **extra,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Jaeger and the sink (the default destination), uptime checks of the router every second."""
    with running_stack(
        tmp_path_factory.mktemp("stack"),
        BEACON_COLLECTOR_CHECK_INTERVAL="1s",
        BEACON_COLLECTOR_METRIC_EXPIRATION="3s",
        BEACON_COLLECTOR_HEALTH_URL=f"http://127.0.0.1:{ROUTER_PORT}/health",
        BEACON_COLLECTOR_READY_URL=f"http://127.0.0.1:{ROUTER_PORT}/ready",
    ) as running:
        yield running


def _whole_provider_trace(spans: list[dict[str, Any]]) -> bool:
    names = [span["operationName"] for span in spans]
    kinds = [jaeger_tags(span).get("span.kind") for span in spans]
    return names.count("provider.health_check") >= 2 and kinds.count("client") >= 2 and "server" in kinds


def test_a_router_trace_arrives_whole_in_jaeger_and_in_trace_spans(
    stack: Stack, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    legacy = uuid.uuid4()
    env = _router_env(stack, fake_providers)
    with launch(uvicorn_command(ROUTER_PORT), env, tmp_path, ROUTER_PORT) as app:
        assert app.get("/providers", headers={"X-Trace-Id": str(legacy)}).status_code == 200
        spans = eventually(
            lambda: (got := jaeger_trace(stack, legacy.hex)) and _whole_provider_trace(got) and got,
            30,
            "the /providers trace complete in Jaeger",
        )

    by_id = {span["spanID"]: span for span in spans}
    server = next(
        s
        for s in spans
        if jaeger_tags(s).get("span.kind") == "server" and jaeger_tags(s).get("http.route") == "/providers"
    )
    assert jaeger_parent(server) is None, "X-Trace-Id starts the trace: the server span is its root"
    for span in spans:
        if span is not server:
            parent = jaeger_parent(span)
            assert parent in by_id, f"{span['operationName']}: parent {parent} is not in the trace"
    checks = [s for s in spans if s["operationName"] == "provider.health_check"]
    assert {jaeger_tags(c)["beacon.provider.name"] for c in checks} == {"golem-us", "modal-eu"}
    for check in checks:  # each check's HTTP call is its child
        assert any(
            jaeger_parent(s) == check["spanID"] and jaeger_tags(s).get("span.kind") == "client" for s in spans
        )
    processes = {p["serviceName"] for p in jaeger_trace_processes(stack, legacy.hex)}
    assert processes == {"hybrid-router"}

    # The same spans, once each, in trace_spans through the sink.
    expected = sorted(by_id)
    rows = eventually(
        lambda: (ids := _table_span_ids(stack, legacy.hex)) and len(ids) >= len(expected) and ids,
        30,
        "the trace's rows in trace_spans",
    )
    assert rows == expected


def jaeger_trace_processes(stack: Stack, trace_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.url(addresses.JAEGER_QUERY)}/api/traces/{trace_id}", timeout=5)
    return [process for trace in response.json()["data"] for process in trace["processes"].values()]


def _uptime(stack: Stack) -> dict[tuple[str, str], float]:
    """(url path, status class) -> value of the Collector's uptime-check status series."""
    return {
        (labels["http_url"].rsplit("/", 1)[-1], labels["http_status_class"]): value
        for name, labels, value in prometheus_samples(stack)
        if name == "httpcheck_status" and str(ROUTER_PORT) in labels.get("http_url", "")
    }


def test_uptime_checks_and_router_metrics_on_the_prometheus_endpoint(
    stack: Stack, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    fake_providers.set_mode("modal-eu", "unhealthy")
    env = _router_env(
        stack, fake_providers, BEACON_OTEL_HEALTH_INTERVAL="1", OTEL_METRIC_EXPORT_INTERVAL="500"
    )
    with launch(uvicorn_command(ROUTER_PORT), env, tmp_path, ROUTER_PORT):
        serving = eventually(
            lambda: (
                (got := _uptime(stack)).get(("health", "2xx")) == 1 and got.get(("ready", "2xx")) == 1 and got
            ),
            20,
            "httpcheck_status 1 for /health and /ready",
        )
        assert serving[("health", "5xx")] == 0
        # An earlier router's series may linger for BEACON_COLLECTOR_METRIC_EXPIRATION (3 s here).
        eventually(
            lambda: _provider_up(stack) == {"golem-us": 1, "modal-eu": 0},
            20,
            "beacon_provider_up_ratio 1 for golem-us, 0 for the unhealthy modal-eu",
        )
    stopped = eventually(
        lambda: (
            (got := _uptime(stack)).get(("health", "2xx")) == 0 and got.get(("ready", "2xx")) == 0 and got
        ),
        20,
        "httpcheck_status 0 once the router stopped",
    )
    assert not any(stopped.values()), stopped


def _provider_up(stack: Stack) -> dict[str | None, float]:
    return {
        labels.get("beacon_provider_name"): value
        for name, labels, value in prometheus_samples(stack)
        if name == "beacon_provider_up_ratio"  # unit "1": the exporter adds _ratio
    }


def _sweep_traces(stack: Stack, app_url: str, count: int) -> list[str]:
    """``count`` /providers requests, each with its own X-Trace-Id; their trace ids (hex)."""
    traces = []
    for _ in range(count):
        trace = uuid.uuid4()
        assert (
            httpx.get(f"{app_url}/providers", headers={"X-Trace-Id": str(trace)}, timeout=10).status_code
            == 200
        )
        traces.append(trace.hex)
    return traces


def test_sink_down_30_s_and_jaeger_restarted_lose_nothing_and_duplicate_nothing(
    stack: Stack, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    env = _router_env(stack, fake_providers)
    with launch(uvicorn_command(ROUTER_PORT), env, tmp_path, ROUTER_PORT) as app:
        assert app.base_url is not None
        before = _sweep_traces(stack, app.base_url, 2)
        eventually(lambda: all(_table_span_ids(stack, t) for t in before), 30, "the first traces stored")

        sink = stack.children["sink"]
        sink.stop()
        during_sink_outage = _sweep_traces(stack, app.base_url, 3)
        time.sleep(30)
        sink.start()

        jaeger = stack.children["jaeger"]
        jaeger.stop()
        during_jaeger_outage = _sweep_traces(stack, app.base_url, 3)
        time.sleep(3)
        jaeger.start()

        sent = before + during_sink_outage + during_jaeger_outage
        for trace in during_jaeger_outage:
            eventually(
                lambda trace=trace: _whole_provider_trace(jaeger_trace(stack, trace)),
                90,
                f"trace {trace} in Jaeger after its restart",
            )
        eventually(
            lambda: all(len(_table_span_ids(stack, t)) >= 5 for t in sent),
            90,
            "every trace in trace_spans after the sink came back",
        )
    for trace in sent:
        ids = _table_span_ids(stack, trace)
        assert len(ids) == len(set(ids)), f"trace {trace} has duplicate rows: {ids}"
    (duplicates,) = _database_rows(stack, "SELECT count(*) - count(DISTINCT span_id) FROM trace_spans")
    assert duplicates == (0,)


def test_the_backend_destination_forwards_every_signal_with_the_configured_headers(
    fake_providers: FakeProviders, tmp_path: Path
) -> None:
    with (
        OtlpReceiver() as backend,
        running_stack(
            tmp_path,
            destination="backend",
            BEACON_COLLECTOR_BACKEND_ENDPOINT=backend.http_endpoint,
            BEACON_COLLECTOR_BACKEND_HEADERS=BACKEND_HEADERS,
        ) as stack,
    ):
        env = _router_env(
            stack, fake_providers, OTEL_METRIC_EXPORT_INTERVAL="500", BEACON_OTEL_HEALTH_INTERVAL="1"
        )
        port = free_port()
        with launch(uvicorn_command(port), env, tmp_path, port) as app:
            app.get("/providers")
            backend.wait_for_spans(
                lambda got: any(s.name == "provider.health_check" for s in got), timeout=30
            )
            backend.wait_for_metrics(lambda got: any(m.name == "beacon.provider.up" for m in got), timeout=30)
            logs = backend.wait_for_logs(
                lambda got: any("healthy providers" in str(r.body) for r in got), timeout=30
            )
        assert "jaeger" not in stack.children and "sink" not in stack.children
    assert any(record.trace_id for record in logs) or logs
    headers = backend.headers()
    assert headers, "the backend got no request"
    for request_headers in headers:
        assert request_headers["x-api-key"] == "backend-key-7f2a"
        assert request_headers["authorization"] == "Bearer backend-token"


def _trace_request(
    trace_id: bytes, *, error: bool = False, seconds: float = 0.01
) -> ExportTraceServiceRequest:
    """One two-span trace as an app would send it."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "hybrid-router"
    spans = resource_spans.scope_spans.add()
    end = time.time_ns()
    start = end - int(seconds * 1e9)
    root = spans.spans.add()
    root.trace_id, root.span_id, root.name, root.kind = trace_id, os.urandom(8), "GET /providers", 2
    root.start_time_unix_nano, root.end_time_unix_nano = start, end
    child = spans.spans.add()
    child.trace_id, child.span_id, child.parent_span_id = trace_id, os.urandom(8), root.span_id
    child.name, child.kind = "GET", 3
    child.start_time_unix_nano, child.end_time_unix_nano = start + 1000, end - 1000
    if error:
        child.status.code = 2
    return request


def test_tail_sampling_keeps_every_error_and_slow_trace_and_a_share_of_the_rest(tmp_path: Path) -> None:
    with running_stack(
        tmp_path,
        destination="sink",
        sampling="on",
        BEACON_COLLECTOR_DECISION_WAIT="2s",
        BEACON_COLLECTOR_SLOW_TRACE_MS="500",
        BEACON_COLLECTOR_SAMPLING_PERCENTAGE="10",
    ) as stack:
        kinds = {"error": 20, "slow": 20, "fast": 300}
        sent: dict[str, list[bytes]] = {kind: [os.urandom(16) for _ in range(n)] for kind, n in kinds.items()}
        url = f"{otlp_http_endpoint(stack)}/v1/traces"
        with httpx.Client(timeout=10) as client:
            for kind, trace_ids in sent.items():
                for trace_id in trace_ids:
                    request = _trace_request(
                        trace_id, error=kind == "error", seconds=1.0 if kind == "slow" else 0.01
                    )
                    body = gzip.compress(request.SerializeToString())
                    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip"}
                    assert client.post(url, content=body, headers=headers).status_code == 200

        def stored() -> dict[str, int]:
            rows = set(
                _database_rows(stack, "SELECT DISTINCT replace(trace_id::text, '-', '') FROM trace_spans")
            )
            return {kind: sum((t.hex(),) in rows for t in ids) for kind, ids in sent.items()}

        kept = eventually(
            lambda: (got := stored())["error"] == 20 and got["slow"] == 20 and got,
            30,
            "every error and slow trace stored",
        )
        time.sleep(3)  # a decision cycle more: any fast trace still to come arrives
        kept = stored()
    assert kept["error"] == 20 and kept["slow"] == 20
    # 10 % of 300: a binomial draw, 1..75 holds with overwhelming probability (p < 1e-9 outside).
    assert 1 <= kept["fast"] <= 75, kept


# --- the command itself --------------------------------------------------------------------------------


def _listening(hostport: str) -> bool:
    host, port = addresses.split(hostport, "test")
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_stack_up_prints_each_component_and_sigterm_stops_every_child(tmp_path: Path) -> None:
    require_binaries(alerting=True)
    ports = free_addresses()
    env = clean_env(
        **ports,
        BEACON_OTEL_STACK_CACHE=os.environ.get("BEACON_OTEL_STACK_CACHE", ""),
        BEACON_OTEL_STACK_DATA=str(tmp_path / "data"),
    )
    if not env["BEACON_OTEL_STACK_CACHE"]:
        del env["BEACON_OTEL_STACK_CACHE"]
    output = tmp_path / "stack.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "beacon-otel"), "stack", "up"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        eventually(
            lambda: "stack up:" in output.read_text() or process.poll() is not None, 90, "stack up ready"
        )
        text = output.read_text()
        assert process.poll() is None, text
        for component in ("postgres", "sink", "jaeger", "collector", "alertmanager", "prometheus"):
            assert any(line.startswith(component) for line in text.splitlines()), text
        assert f"http://{ports['BEACON_JAEGER_QUERY_ENDPOINT']}" in text
        assert ports["BEACON_COLLECTOR_OTLP_GRPC_ENDPOINT"] in text
        assert all(_listening(address) for address in ports.values()), text
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "stack stopped" in output.read_text()
    still = [variable for variable, address in ports.items() if _listening(address)]
    assert not still, f"still listening after SIGTERM: {still}"


def test_stack_up_names_the_address_in_use_and_starts_nothing(tmp_path: Path) -> None:
    require_binaries(alerting=True)
    ports = free_addresses()
    host, port = addresses.split(ports["BEACON_COLLECTOR_OTLP_GRPC_ENDPOINT"], "test")
    with socket.socket() as taken:
        taken.bind((host, port))
        taken.listen()
        result = subprocess.run(
            [str(BIN / "beacon-otel"), "stack", "up"],
            env=clean_env(**ports, BEACON_OTEL_STACK_DATA=str(tmp_path / "data")),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "BEACON_COLLECTOR_OTLP_GRPC_ENDPOINT" in result.stderr and str(port) in result.stderr
    assert not any(
        _listening(address)
        for variable, address in ports.items()
        if variable != "BEACON_COLLECTOR_OTLP_GRPC_ENDPOINT"
    )


def test_stack_build_without_go_says_what_to_install(tmp_path: Path) -> None:
    env = clean_env()
    env["PATH"] = f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin"
    if any((Path(folder) / "go").exists() for folder in env["PATH"].split(os.pathsep)):
        env["PATH"] = str(BIN)
    result = _stack_build(env)
    assert result.returncode == 1
    assert "Go is not installed" in result.stderr and "Go 1.26" in result.stderr


def _stack_build(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "beacon_otel.cli", "stack", "build"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_stack_build_with_a_go_below_the_patch_level_names_both_versions(tmp_path: Path) -> None:
    """A `go` that answers go1.26.6 (Prometheus needs 1.26.7): refused before anything is built."""
    fake_go = tmp_path / "go"
    fake_go.write_text('#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go1.26.6 && exit 0\nexit 3\n')
    fake_go.chmod(0o755)
    env = clean_env(BEACON_OTEL_STACK_CACHE=str(tmp_path / "cache"))
    env["PATH"] = f"{tmp_path}{os.pathsep}{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin"
    result = _stack_build(env)
    assert result.returncode == 1
    assert f"{fake_go} is go1.26.6, older than the Go 1.26.7 the stack needs" in result.stderr, result.stderr
    assert not (tmp_path / "cache" / "bin").exists(), "nothing is built with a Go that is too old"


@pytest.mark.parametrize(
    ("version", "new_enough"),
    [
        ("go1.26.7", True),
        ("go1.26.8", True),
        ("go1.26.10", True),
        ("go1.27rc1", True),
        ("go1.27beta2", True),
        ("go1.27.0 X:fieldtrack", True),
        ("devel go1.27-0a1b2c3 Tue Jan 6 2026", True),
        ("go2.0.0", True),
        ("go1.26.6", False),
        ("go1.26", False),
        ("go1.26rc2", False),
        ("go1.25.12", False),
        ("go1.9.9", False),
        ("", False),
        ("gccgo", False),
    ],
)
def test_go_versions_compare_like_go_releases(version: str, new_enough: bool) -> None:
    assert go_is_new_enough(version, (1, 26, 7)) is new_enough


def test_pre_releases_come_before_their_release() -> None:
    order = ["go1.26", "go1.26.6", "go1.27beta1", "go1.27rc1", "go1.27rc2", "go1.27", "go1.27.1", "go1.100.0"]
    keys = [key for key in map(go_version_key, order) if key is not None]
    assert len(keys) == len(order) and keys == sorted(set(keys))


def test_a_part_that_fails_to_start_stops_the_others_and_says_why(tmp_path: Path) -> None:
    require_binaries(alerting=True)
    ports = free_addresses()
    env = clean_env(  # the Collector refuses the interval
        **ports, BEACON_COLLECTOR_CHECK_INTERVAL="soon", BEACON_OTEL_STACK_DATA=str(tmp_path / "data")
    )
    result = subprocess.run(
        [str(BIN / "beacon-otel"), "stack", "up"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "collector exited with code 1 while starting" in result.stderr, result.stderr
    assert "collection_interval" in result.stderr
    assert "jaeger " in result.stdout and "sink " in result.stdout, "started before the Collector"
    assert "stack stopped" in result.stdout
    still = [variable for variable, address in ports.items() if _listening(address)]
    assert not still, f"still listening after the failed start: {still}"
