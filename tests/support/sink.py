"""A real ``beacon-otel sink`` on a real Postgres, for every test that needs one: the legacy
table, a fresh database per test, the sink as a subprocess, and OTLP requests to send it."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from beacon_otel.stack.postgres import PostgresServer
from tests.support.processes import clean_env, free_port, stop

TOKEN = "sink-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
PROTOBUF = {"content-type": "application/x-protobuf", **AUTH}
JSON_AUTH = {"content-type": "application/json", **AUTH}

# trace_spans as the project's migration 0011 defines it (../shared/DESIGN.md), written here
# independently of the sink's own DDL: no unique constraint, no index on span_id.
LEGACY_DDL = """
CREATE TABLE trace_spans (
    id BIGSERIAL PRIMARY KEY, trace_id UUID NOT NULL, span_id UUID NOT NULL, parent_span_id UUID,
    service VARCHAR(50) NOT NULL, operation VARCHAR(100) NOT NULL, started_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ, duration_ms INTEGER, status VARCHAR(20) NOT NULL, job_id VARCHAR(255),
    execution_id BIGINT, model_id VARCHAR(100), region VARCHAR(50), metadata JSONB, error_message TEXT,
    error_type VARCHAR(100), created_at TIMESTAMPTZ DEFAULT NOW());
CREATE INDEX idx_trace_spans_trace_id ON trace_spans (trace_id);
CREATE INDEX idx_trace_spans_job_id ON trace_spans (job_id);
CREATE INDEX idx_trace_spans_execution_id ON trace_spans (execution_id);
CREATE INDEX idx_trace_spans_started_at ON trace_spans (started_at);
CREATE INDEX idx_trace_spans_service_operation ON trace_spans (service, operation);
CREATE INDEX idx_trace_spans_created_at ON trace_spans (created_at);
"""


class Database:
    def __init__(self, server: PostgresServer, name: str) -> None:
        self.server = server
        self.name = name
        self.dsn = server.dsn.rsplit("/", 1)[0] + f"/{name}"

    def sql(self, statement: str) -> str:
        result = subprocess.run(
            [str(self.server.bindir / "psql"), self.dsn, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def count(self) -> int:
        return int(self.sql("SELECT count(*) FROM trace_spans"))


def new_database(server: PostgresServer) -> Database:
    name = f"sink_{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {name}")
    database = Database(server, name)
    database.sql(LEGACY_DDL)
    return database


def migrate_database(database: Database) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["beacon-otel", "sink", "migrate"],
        env=clean_env(DATABASE_URL=database.dsn, BEACON_OTEL_SINK_TOKEN=TOKEN),
        capture_output=True,
        text=True,
        timeout=60,
    )


class Sink:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/v1/traces"
        self.log = log

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            self.url, content=body, headers=PROTOBUF if headers is None else headers, timeout=10
        )


def start_sink(database: Database, tmp_path: Path, *launcher: str, port: int = 0, **extra: str) -> Sink:
    port = port or free_port()
    log = tmp_path / f"sink-{port}.log"
    env = clean_env(
        DATABASE_URL=database.dsn,
        BEACON_OTEL_SINK_ADDRESS=f"127.0.0.1:{port}",
        BEACON_OTEL_SINK_TOKEN=TOKEN,
        **extra,
    )
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*launcher, "beacon-otel", "sink"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sink = Sink(process, port, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(sink.url, timeout=1).status_code == 405:
                return sink
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"the sink did not start:\n{log.read_text()}")


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[Database]:
    database = new_database(postgres)
    assert migrate_database(database).returncode == 0
    yield database
    postgres.psql(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


@pytest.fixture
def sink(database: Database, tmp_path: Path) -> Iterator[Sink]:
    sink = start_sink(database, tmp_path)
    yield sink
    stop(sink.process)


def export_request(spans: int, trace_id: bytes | None = None, start: int = 0) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "hybrid-router"
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "test"
    now = time.time_ns()
    for number in range(start, start + spans):
        span = scope_spans.spans.add()
        span.trace_id = trace_id or uuid.uuid4().bytes
        span.span_id = (number + 1).to_bytes(8, "big")
        span.name = f"op-{number}"
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now + 12_000_000
    return request
