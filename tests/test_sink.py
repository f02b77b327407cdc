"""``beacon-otel sink`` against a real Postgres: what arrives in trace_spans, and how it answers."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from beacon_otel.stack.postgres import PostgresServer, start_postgres
from tests.conftest import FakeProviders
from tests.support.processes import clean_env, free_port, launch, stop, uvicorn_command
from tests.support.sink import (
    AUTH,
    JSON_AUTH,
    PROTOBUF,
    TOKEN,
    Database,
    Sink,
    export_request,
    migrate_database,
    new_database,
    start_sink,
)

# --- the whole route ------------------------------------------------------------------------------


def test_demo_router_exports_straight_to_the_sink(
    database: Database, sink: Sink, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    fake_providers.set_mode("modal-eu", "fail500")
    runner_trace = str(uuid.uuid4())
    runner_span = str(uuid.uuid4())
    database.sql(
        "INSERT INTO trace_spans (trace_id, span_id, service, operation, started_at, completed_at, "
        f"duration_ms, status, execution_id) VALUES ('{runner_trace}', '{runner_span}', 'runner', "
        "'execute_job', now(), now(), 40, 'completed', 4242)"
    )
    port = free_port()
    providers = ",".join(
        [
            fake_providers.spec("golem-us", "golem", "us-east"),
            fake_providers.spec("modal-eu", "modal", "eu-west"),
        ]
    )
    env = clean_env(
        DEMO_PROVIDERS=providers,
        BEACON_OTEL_PROVIDER_HOOKS="demo_router.router",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=sink.url,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"authorization=Bearer%20{TOKEN}",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        assert app.get("/providers", headers={"X-Trace-Id": runner_trace}).status_code == 200
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if int(database.sql(f"SELECT count(*) FROM trace_spans WHERE trace_id = '{runner_trace}'")) >= 6:
                break
            time.sleep(0.2)
        stop(app.process)

    rows = [
        json.loads(line)
        for line in database.sql(
            "SELECT json_build_object('span_id', span_id, 'parent', parent_span_id, 'service', service, "
            "'operation', operation, 'status', status, 'error_type', error_type, 'region', region, "
            "'duration_ms', duration_ms, 'metadata', metadata) "
            f"FROM trace_spans WHERE trace_id = '{runner_trace}' ORDER BY started_at"
        ).splitlines()
    ]
    by_operation: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_operation.setdefault(str(row["operation"]), []).append(row)
    (runner,) = by_operation["execute_job"]
    assert runner["service"] == "runner" and runner["parent"] is None, "legacy rows share the trace"
    (server,) = by_operation["GET /providers"]
    assert server["service"] == "router" and server["status"] == "completed"
    assert str(server["span_id"]).startswith("00000000-0000-0000-")
    (sweep,) = by_operation["providers.health_check"]
    assert sweep["parent"] == server["span_id"]
    checks = {
        row["metadata"]["attributes"]["beacon.provider.name"]: row
        for row in by_operation["provider.health_check"]
    }
    assert {name: row["parent"] for name, row in checks.items()} == {
        "golem-us": sweep["span_id"],
        "modal-eu": sweep["span_id"],
    }
    assert checks["golem-us"]["status"] == "completed"
    assert checks["modal-eu"]["status"] == "failed" and checks["modal-eu"]["error_type"] == "http_500"
    assert checks["modal-eu"]["region"] == "eu-west"
    clients = [row for row in rows if (row["metadata"] or {}).get("kind") == "CLIENT"]
    assert {row["parent"] for row in clients} == {row["span_id"] for row in checks.values()}


# --- idempotency, partial success, JSON ---------------------------------------------------------------


def test_a_batch_sent_twice_is_written_once(database: Database, sink: Sink) -> None:
    request = export_request(50)
    for _ in range(2):
        response = sink.post(request.SerializeToString())
        assert response.status_code == 200, response.content
        assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert database.count() == 50
    gzipped = sink.post(gzip.compress(request.SerializeToString()), {**PROTOBUF, "content-encoding": "gzip"})
    assert gzipped.status_code == 200
    assert database.count() == 50


def test_invalid_spans_are_rejected_the_others_kept(database: Database, sink: Sink) -> None:
    request = export_request(3)
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id, bad.span_id, bad.name = b"\x01" * 15, b"\x02" * 8, "short trace id"
    zero = request.resource_spans[0].scope_spans[0].spans.add()
    zero.trace_id, zero.span_id, zero.name = b"\x01" * 16, b"\x00" * 8, "zero span id"
    response = sink.post(request.SerializeToString())
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2 and "invalid" in partial.error_message
    assert database.count() == 3


def test_otlp_json_with_hex_ids(database: Database, sink: Sink) -> None:
    trace_id = uuid.uuid4()
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "backend"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id.hex,
                                "spanId": "00f067aa0ba902b7",
                                "parentSpanId": "53995c3f42cd8ad8",
                                "name": "run job",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000002500000000",
                                "attributes": [
                                    {"key": "beacon.execution_id", "value": {"intValue": "77"}},
                                    {"key": "job_id", "value": {"stringValue": "job-9"}},
                                ],
                                "status": {"code": 2, "message": "deadline exceeded: Timeout"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = sink.post(json.dumps(body).encode(), {"content-type": "application/json", **AUTH})
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == "application/json"
    row = database.sql(
        "SELECT span_id, parent_span_id, service, status, duration_ms, execution_id, job_id "
        f"FROM trace_spans WHERE trace_id = '{trace_id}'"
    )
    assert row == (
        "00000000-0000-0000-00f0-67aa0ba902b7|00000000-0000-0000-5399-5c3f42cd8ad8|backend|timeout|2500|77|job-9"
    )


# --- bad inputs -----------------------------------------------------------------------------------


def _status_message(response: httpx.Response) -> str:
    return status_pb2.Status.FromString(response.content).message


def _deep_kvlist(depth: int) -> bytes:
    """An attribute value that is a kvlist holding a kvlist ... ``depth`` times (built as text:
    json.dumps itself would hit the recursion limit)."""
    value = (
        '{"kvlistValue": {"values": [{"key": "k", "value": ' * depth
        + '{"stringValue": "leaf"}'
        + "}]}}" * depth
    )
    ids = f'"traceId": "{"ab" * 16}", "spanId": "{"cd" * 8}"'
    span = f'{{{ids}, "name": "x", "attributes": [{{"key": "a", "value": {value}}}]}}'
    return f'{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{span}]}}]}}]}}'.encode()


def test_bad_inputs_get_the_right_4xx_and_the_sink_keeps_serving(database: Database, sink: Sink) -> None:
    good = export_request(2).SerializeToString()
    cases = {
        "truncated protobuf": (sink.post(good[:-7]), 400),
        "wrong JSON": (sink.post(b'{"resourceSpans": [', JSON_AUTH), 400),
        **{
            f"JSON of the wrong shape {shape}": (sink.post(shape.encode(), JSON_AUTH), 400)
            for shape in (
                '{"resourceSpans": ["x"]}',
                '{"resourceSpans": "abc"}',
                '{"resourceSpans": [{"scopeSpans": [1]}]}',
                '{"resourceSpans": [{"scopeSpans": [{"spans": [null]}]}]}',
                '{"resourceSpans": [{"scopeSpans": [{"spans": [{"links": ["x"]}]}]}]}',
            )
        },
        "JSON nested 100,000 deep": (sink.post(b"[" * 100_000 + b"]" * 100_000, JSON_AUTH), 400),
        "a kvlist nested 1,000 deep": (sink.post(_deep_kvlist(1000), JSON_AUTH), 400),
        "gzip with trailing garbage": (
            sink.post(gzip.compress(good) + b"garbage", {**PROTOBUF, "content-encoding": "gzip"}),
            400,
        ),
        "JSON with bad hex ids": (
            sink.post(
                json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}).encode(),
                {"content-type": "application/json", **AUTH},
            ),
            400,
        ),
        "10 MiB body": (sink.post(b"\x00" * (10 * 1024 * 1024)), 413),
        "gzip bomb": (
            sink.post(gzip.compress(b"\x00" * (200 * 1024 * 1024)), {**PROTOBUF, "content-encoding": "gzip"}),
            413,
        ),
        "not gzip": (sink.post(b"plain", {**PROTOBUF, "content-encoding": "gzip"}), 400),
        "wrong content type": (sink.post(good, {"content-type": "text/plain", **AUTH}), 415),
        "no token": (sink.post(good, {"content-type": "application/x-protobuf"}), 401),
        "wrong token": (
            sink.post(good, {"content-type": "application/x-protobuf", "authorization": "Bearer nope"}),
            401,
        ),
        "token under another scheme": (
            sink.post(good, {"content-type": "application/x-protobuf", "authorization": f"Token {TOKEN}"}),
            401,
        ),
        "GET": (httpx.get(sink.url, headers=AUTH, timeout=10), 405),
        "other path": (
            httpx.post(sink.url.replace("/v1/traces", "/v1/logs"), headers=PROTOBUF, timeout=10),
            404,
        ),
    }
    for name, (response, expected) in cases.items():
        assert response.status_code == expected, f"{name}: {response.status_code} {response.content[:200]!r}"
    assert "limit" in _status_message(cases["gzip bomb"][0])
    assert cases["no token"][0].headers["www-authenticate"] == "Bearer"
    assert database.count() == 0
    assert sink.post(good).status_code == 200, "still serving"
    assert database.count() == 2
    # Several gzip members (RFC 1952) are one body: the spans of every member are stored.
    members = gzip.compress(export_request(1, start=20).SerializeToString()) + gzip.compress(
        export_request(1, start=21).SerializeToString()
    )
    assert sink.post(members, {**PROTOBUF, "content-encoding": "gzip"}).status_code == 200
    assert database.count() == 4
    # The scheme is case-insensitive (RFC 9110): a lower-case "bearer" is the same credential.
    lower = {"content-type": "application/x-protobuf", "authorization": f"bearer {TOKEN}"}
    assert sink.post(export_request(1, start=10).SerializeToString(), lower).status_code == 200
    assert database.count() == 5
    assert sink.process.poll() is None
    assert "Traceback" not in sink.log.read_text()


def test_the_sinks_own_queries_are_never_traced(database: Database, tmp_path: Path) -> None:
    """Even under beacon-otel-run, exporting its own spans to itself, the sink adds no row about its
    own COPY and INSERT (that would feed itself forever)."""
    port = free_port()
    sink = start_sink(
        database,
        tmp_path,
        "beacon-otel-run",
        port=port,
        OTEL_SERVICE_NAME="beacon-sink",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{port}/v1/traces",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"authorization=Bearer%20{TOKEN}",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    try:
        for start in (0, 10, 20):
            assert sink.post(export_request(10, start=start).SerializeToString()).status_code == 200
        time.sleep(1.0)  # several export intervals of the sink's own spans
    finally:
        stop(sink.process)
    assert database.count() == 30
    assert database.sql("SELECT count(*) FROM trace_spans WHERE service <> 'router'") == "0"


def test_configuration_problems_stop_the_sink() -> None:
    result = subprocess.run(
        ["beacon-otel", "sink"],
        env=clean_env(DATABASE_URL="mysql://u:SECRETPW@h/db", BEACON_OTEL_SINK_ADDRESS="nowhere"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    for variable in ("DATABASE_URL", "BEACON_OTEL_SINK_ADDRESS", "BEACON_OTEL_SINK_TOKEN"):
        assert variable in result.stderr
    assert "SECRETPW" not in result.stderr


# --- Postgres goes away -------------------------------------------------------------------------------


def test_postgres_restart_loses_nothing(tmp_path: Path) -> None:
    server = start_postgres()
    try:
        database = new_database(server)
        assert migrate_database(database).returncode == 0
        sink = start_sink(database, tmp_path)
        try:
            sent = 0
            answers: list[int] = []
            stop_sending = threading.Event()

            def send_batches() -> None:
                nonlocal sent
                number = 0
                while not stop_sending.is_set():
                    body = export_request(20, start=number).SerializeToString()
                    while True:  # a sender that retries, as the Collector and the SDK exporters do
                        response = sink.post(body)
                        answers.append(response.status_code)
                        if response.status_code == 200:
                            break
                        assert response.status_code == 503, response.content
                        assert response.headers["retry-after"].isdigit()
                        time.sleep(0.2)
                    number += 20
                    sent += 20

            sender = threading.Thread(target=send_batches)
            sender.start()
            time.sleep(1.0)
            server.stop()
            time.sleep(1.5)
            server.start()
            time.sleep(1.5)
            stop_sending.set()
            sender.join(30)
            assert not sender.is_alive()
        finally:
            stop(sink.process)
        assert 503 in answers, (sorted(set(answers)), len(answers), sink.log.read_text()[-3000:])
        assert sent > 0 and database.count() == sent
    finally:
        server.destroy()


# --- sink migrate -----------------------------------------------------------------------------------


def test_migrate_creates_the_table_on_a_fresh_database(postgres: PostgresServer) -> None:
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name}")
    database = Database(postgres, name)
    try:
        first = migrate_database(database)
        assert first.returncode == 0, first.stderr
        assert "created table trace_spans" in first.stdout
        columns = database.sql(
            "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_name = 'trace_spans'"
        )
        assert columns.startswith(
            "id:bigint,trace_id:uuid,span_id:uuid,parent_span_id:uuid,service:character varying"
        )
        assert (
            database.sql(
                "SELECT indisunique FROM pg_index WHERE indexrelid = 'trace_spans_span_id_key'::regclass"
            )
            == "t"
        )
        again = migrate_database(database)
        assert again.returncode == 0 and "nothing to do" in again.stdout
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_migrate_reports_duplicate_span_ids_and_changes_nothing(postgres: PostgresServer) -> None:
    database = new_database(postgres)
    try:
        span = str(uuid.uuid4())
        for _ in range(2):
            database.sql(
                "INSERT INTO trace_spans (trace_id, span_id, service, operation, started_at, status) "
                f"VALUES (gen_random_uuid(), '{span}', 'runner', 'op', now(), 'completed')"
            )
        result = migrate_database(database)
        assert result.returncode == 1
        assert "same span_id" in result.stderr and "GROUP BY span_id" in result.stderr
        assert database.count() == 2
        assert database.sql("SELECT count(*) FROM pg_class WHERE relname = 'trace_spans_span_id_key'") == "0"
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


def test_migrate_needs_only_the_database_url(postgres: PostgresServer) -> None:
    database = new_database(postgres)
    try:
        result = subprocess.run(
            ["beacon-otel", "sink", "migrate"],
            env=clean_env(DATABASE_URL=database.dsn),  # no BEACON_OTEL_SINK_TOKEN: not needed to migrate
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "trace_spans" in result.stdout
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


def test_a_taken_port_is_one_clear_line_and_a_non_zero_exit(database: Database) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            ["beacon-otel", "sink"],
            env=clean_env(
                DATABASE_URL=database.dsn,
                BEACON_OTEL_SINK_TOKEN=TOKEN,
                BEACON_OTEL_SINK_ADDRESS=f"127.0.0.1:{port}",
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 3
    address = f"127.0.0.1:{port} (BEACON_OTEL_SINK_ADDRESS)"
    line = f"beacon-otel sink: cannot listen on {address}: Address already in use"
    assert result.stderr.strip().splitlines() == [line]


def test_a_span_id_reused_by_another_trace_is_counted_not_dropped_silently(
    database: Database, sink: Sink
) -> None:
    first = export_request(2, trace_id=uuid.uuid4().bytes).SerializeToString()
    assert sink.post(first).status_code == 200
    retried = ExportTraceServiceResponse.FromString(sink.post(first).content)
    assert retried.partial_success.rejected_spans == 0, "a retry of the same spans is no clash"
    # Span ids 1 (clash) and 3 (new), in another trace.
    other = export_request(1, trace_id=uuid.uuid4().bytes)
    other.MergeFrom(export_request(1, trace_id=uuid.uuid4().bytes, start=2))
    answer = ExportTraceServiceResponse.FromString(sink.post(other.SerializeToString()).content)
    assert answer.partial_success.rejected_spans == 1
    assert "another trace" in answer.partial_success.error_message
    assert database.count() == 3
