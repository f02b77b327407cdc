"""Spans/s committed by ``beacon-otel sink`` vs the legacy per-span INSERT+UPDATE, same Postgres, same run.

One throwaway Postgres (``beacon_otel.stack.postgres.start_postgres``: Debian's server, durability
off, on the same cores as everything else) serves every variant, each in a fresh database
created with the project's ``trace_spans`` DDL (no index on span_id):

* ``legacy INSERT+UPDATE``: the legacy tracer's pattern, one asyncpg connection, per span an
  ``INSERT ... status 'started'`` then ``UPDATE ... SET status 'completed' ... WHERE span_id = $1``
  (two round trips; with no index on span_id the UPDATE scans the table), on a table pre-filled
  with ``--legacy-rows`` rows, then with ``--legacy-rows-large`` rows;
* ``one INSERT per span``: one asyncpg connection, one complete row per INSERT;
* ``sink write path only``: ``beacon_otel.sink.database.write_rows`` (COPY into the staging
  table, ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``) called in this process by
  ``--senders`` writers with rows already mapped: the database side of the sink, no HTTP,
  decoding or mapping;
* ``beacon-otel sink``: the real ``beacon-otel sink`` process (after ``beacon-otel sink migrate``),
  default settings, driven by ``--senders`` threads (one keep-alive ``httpx.Client`` each)
  posting protobuf ``ExportTraceServiceRequest`` batches of ``--batch`` spans; first on the
  freshly migrated table, then again after ``INSERT ... SELECT generate_series`` has added
  ``--prefill`` rows (random UUIDs, every index present) and ``VACUUM ANALYZE`` + ``CHECKPOINT``.

A batch holds half server spans and half client spans (their children, same trace), about ten
attributes each, one client span in 16 failed with an ``exception`` event; every batch gets fresh
random trace and span ids. Every load is bounded in time; spans/s is rows committed (``count(*)``
before and after) divided by the elapsed time, including the requests still in flight at the
deadline. CPU per span is read from ``/proc``: the sink process's own, and Postgres's (the
postmaster, its backends and its reaped children). The ratios are against the legacy
INSERT+UPDATE on the smaller table, measured in the same run. In-process, the sink's per-span
protobuf decoding and ``map_request`` are timed on the same batches.

``--profile SECONDS`` adds an unreported sink run under ``py-spy record`` and prints where the
sink's time goes (inclusive and own samples per function).

    python -m benchmarks.sink_throughput [--seconds 5] [--sink-seconds 8] [--senders 4] [--batch 512]
        [--prefill 1000000] [--profile 0] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from beacon_otel.settings import DEFAULT_SINK_SERVICE_MAP
from beacon_otel.sink import database as sink_database
from beacon_otel.sink.mapping import map_request

# Importing the tests' helper is acceptable in this one benchmark: it is the one way the project
# starts a throwaway Postgres (as root it runs the server as the postgres user via runuser).
from beacon_otel.stack.postgres import PostgresServer, start_postgres
from benchmarks.common import BIN, ROOT, base_env, cpu_seconds, free_port, machine_line, replace_section
from tests.support.otlp import add_attributes

# trace_spans as the project's migration 0011 defines it: no unique constraint, no index on span_id.
from tests.support.sink import LEGACY_DDL

TOKEN = "sink-benchmark-token"

# Rows as the Go runner writes them: random (v4) UUIDs, a small metadata document.
PREFILL = """
INSERT INTO trace_spans (trace_id, span_id, parent_span_id, service, operation, started_at,
    completed_at, duration_ms, status, job_id, execution_id, model_id, region, metadata)
SELECT gen_random_uuid(), gen_random_uuid(), NULL, 'runner', 'execute_job',
    now() - make_interval(secs => g), now() - make_interval(secs => g) + interval '40 ms', 40,
    'completed', 'job-' || g, g, 'llama-3.1-8b', 'us-east',
    jsonb_build_object('provider', 'golem-us', 'attempt', 1, 'queue', 'default', 'worker', 'w-' || (g % 64))
FROM generate_series(1, {rows}) AS g
"""

LEGACY_INSERT = """
INSERT INTO trace_spans (trace_id, span_id, parent_span_id, service, operation, started_at, status,
    job_id, model_id, region, metadata)
VALUES ($1, $2, $3, 'router', 'provider.call', $4, 'started', $5, 'llama-3.1-8b', 'us-east', $6)
"""
LEGACY_UPDATE = (
    "UPDATE trace_spans SET status = 'completed', completed_at = $2, duration_ms = $3 WHERE span_id = $1"
)
FULL_INSERT = """
INSERT INTO trace_spans (trace_id, span_id, parent_span_id, service, operation, started_at,
    completed_at, duration_ms, status, job_id, model_id, region, metadata)
VALUES ($1, $2, $3, 'router', 'provider.call', $4, $5, $6, 'completed', $7, 'llama-3.1-8b', 'us-east', $8)
"""
LEGACY_METADATA = json.dumps({"provider": "golem-us", "attempt": 1, "queue": "default", "worker": "w-7"})

BASELINE = "legacy INSERT+UPDATE"


# --- Postgres ---------------------------------------------------------------------------------------


def database_dsn(server: PostgresServer, name: str) -> str:
    return server.dsn.rsplit("/", 1)[0] + f"/{name}"


def new_database(server: PostgresServer, prefix: str) -> str:
    """A fresh database holding the legacy trace_spans table; returns its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server.psql(f"CREATE DATABASE {name}")
    dsn = database_dsn(server, name)
    run_sql(dsn, LEGACY_DDL)
    return dsn


async def _execute(dsn: str, *statements: str) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        result = None
        for statement in statements:
            if statement.startswith("SELECT"):
                result = await connection.fetchval(statement)
            else:
                await connection.execute(statement)
        return result
    finally:
        await connection.close()


def run_sql(dsn: str, *statements: str) -> Any:
    """Run statements on one connection; returns the last SELECT's value."""
    return asyncio.run(_execute(dsn, *statements))


def count_rows(dsn: str) -> int:
    return int(run_sql(dsn, "SELECT count(*) FROM trace_spans"))


def prefill(dsn: str, rows: int) -> float:
    """Add ``rows`` runner rows in one statement, then vacuum, analyse and checkpoint; seconds."""
    started = time.perf_counter()
    if rows:
        run_sql(dsn, PREFILL.format(rows=int(rows)))
    run_sql(dsn, "VACUUM ANALYZE trace_spans", "CHECKPOINT")
    return time.perf_counter() - started


def postgres_cpu(server: PostgresServer) -> float:
    """CPU seconds of the postmaster, its live children and the children it has reaped."""
    postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(value) for value in fields[11:15])
        elif parent == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


@dataclass
class Load:
    accepted_spans: int = 0
    requests: int = 0
    retries: int = 0
    elapsed: float = 0.0
    driver_cpu_s: float = 0.0


@dataclass
class Figure:
    variant: str
    rows_before: int
    spans: int
    seconds: float
    postgres_cpu_s: float
    client_cpu_s: float | None = None  # the sink process (or this process for the write path only)
    load: Load | None = None  # the sink runs: requests, retries, the senders' CPU

    @property
    def per_second(self) -> float:
        return self.spans / self.seconds

    def us_per_span(self, cpu: float | None) -> float | None:
        return None if cpu is None else cpu / max(self.spans, 1) * 1e6


# --- the baselines --------------------------------------------------------------------------------


async def _per_span_loop(dsn: str, seconds: float, legacy: bool) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        insert = await connection.prepare(LEGACY_INSERT if legacy else FULL_INSERT)
        update = await connection.prepare(LEGACY_UPDATE)
        trace_id = uuid.uuid4()
        parent = uuid.uuid4()
        spans = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            span_id = uuid.uuid4()
            if spans % 2 == 0:
                trace_id, parent = uuid.uuid4(), uuid.uuid4()
            started = datetime.now(UTC)
            completed = started + timedelta(milliseconds=12)
            job_id = f"job-{spans}"
            if legacy:
                await insert.fetch(trace_id, span_id, parent, started, job_id, LEGACY_METADATA)
                await update.fetch(span_id, completed, 12)
            else:
                await insert.fetch(trace_id, span_id, parent, started, completed, 12, job_id, LEGACY_METADATA)
            spans += 1
        return spans
    finally:
        await connection.close()


def per_span_baseline(
    server: PostgresServer, variant: str, rows: int, seconds: float, legacy: bool
) -> Figure:
    dsn = new_database(server, "legacy" if legacy else "insert")
    prefill(dsn, rows)
    before = count_rows(dsn)
    cpu_before, started = postgres_cpu(server), time.perf_counter()
    done = asyncio.run(_per_span_loop(dsn, seconds, legacy))
    elapsed, cpu_after = time.perf_counter() - started, postgres_cpu(server)
    written = count_rows(dsn) - before
    if written != done:
        raise SystemExit(f"{variant}: {done} spans written but {written} new rows")
    return Figure(variant, before, written, elapsed, cpu_after - cpu_before)


# --- realistic OTLP batches -----------------------------------------------------------------------

RESOURCE = {
    "service.name": "hybrid-router",
    "service.version": "2.7.1",
    "service.instance.id": "router-7f9c4d-xk2lp",
    "deployment.environment.name": "production",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.language": "python",
    "telemetry.sdk.version": "1.39.1",
    "host.name": "router-7f9c4d-xk2lp",
    "process.pid": 7,
}
PROVIDERS = (("golem-us", "us-east"), ("modal-eu", "eu-west"), ("modal-ap", "asia-pacific"))
MODELS = ("llama-3.1-8b-instruct", "mistral-7b-instruct", "qwen2.5-14b")
STACKTRACE = "Traceback (most recent call last):\n" + "".join(
    f'  File "/app/.venv/lib/python3.11/site-packages/httpx/_transports/default.py", line {line}, in '
    "handle_async_request\n    resp = await self._pool.handle_async_request(req)\n"
    for line in range(60, 68)
)


def realistic_request(spans: int) -> tuple[ExportTraceServiceRequest, list[bytes], list[bytes]]:
    """A batch of ``spans`` spans (server spans and their client children); its span and trace ids."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    add_attributes(resource_spans.resource.attributes, RESOURCE)
    server_scope = resource_spans.scope_spans.add()
    server_scope.scope.name, server_scope.scope.version = "beacon_otel.instrumentation.asgi", "0.4.0"
    client_scope = resource_spans.scope_spans.add()
    client_scope.scope.name, client_scope.scope.version = "opentelemetry.instrumentation.httpx", "0.60b1"
    now = time.time_ns()
    span_ids: list[bytes] = []
    trace_ids: list[bytes] = []
    for index in range(spans // 2 + spans % 2):
        trace_id, server_id, client_id = os.urandom(16), os.urandom(8), os.urandom(8)
        provider, region = PROVIDERS[index % len(PROVIDERS)]
        model = MODELS[index % len(MODELS)]
        start = now - (spans - index) * 3_000_000
        server = server_scope.spans.add()
        server.trace_id, server.span_id, server.parent_span_id = trace_id, server_id, b"\x5a" * 8
        server.name, server.kind = "POST /v1/jobs/{job_id}/route", Span.SPAN_KIND_SERVER
        server.start_time_unix_nano, server.end_time_unix_nano = start, start + 48_000_000
        add_attributes(
            server.attributes,
            {
                "http.request.method": "POST",
                "url.scheme": "http",
                "url.path": f"/v1/jobs/job-{index:06d}/route",
                "http.route": "/v1/jobs/{job_id}/route",
                "server.address": "router.internal",
                "server.port": 8080,
                "client.address": "10.0.3.17",
                "network.protocol.version": "1.1",
                "user_agent.original": "Go-http-client/1.1",
                "http.response.status_code": 200,
                "beacon.job_id": f"job-{index:06d}",
                "beacon.execution_id": 880_000 + index,
            },
        )
        span_ids.append(server_id)
        trace_ids.append(trace_id)
        if len(span_ids) == spans:
            break
        client = client_scope.spans.add()
        client.trace_id, client.span_id, client.parent_span_id = trace_id, client_id, server_id
        client.name, client.kind = "POST", Span.SPAN_KIND_CLIENT
        client.start_time_unix_nano, client.end_time_unix_nano = start + 2_000_000, start + 45_000_000
        add_attributes(
            client.attributes,
            {
                "http.request.method": "POST",
                "url.full": f"https://{provider}.providers.internal/v1/completions",
                "server.address": f"{provider}.providers.internal",
                "server.port": 443,
                "network.protocol.version": "1.1",
                "http.response.status_code": 504 if index % 16 == 5 else 200,
                "beacon.provider.name": provider,
                "beacon.provider.region": region,
                "gen_ai.request.model": model,
                "beacon.attempt": 1,
            },
        )
        if index % 16 == 5:
            client.status.code, client.status.message = Status.STATUS_CODE_ERROR, "upstream timed out"
            event = client.events.add()
            event.name, event.time_unix_nano = "exception", start + 45_000_000
            add_attributes(
                event.attributes,
                {
                    "exception.type": "httpx.ReadTimeout",
                    "exception.message": "timed out waiting for the provider",
                    "exception.stacktrace": STACKTRACE,
                    "exception.escaped": False,
                },
            )
        span_ids.append(client_id)
    return request, span_ids, trace_ids


def _offsets(body: bytes, value: bytes, expected: int) -> list[int]:
    found, position = [], body.find(value)
    while position >= 0:
        found.append(position)
        position = body.find(value, position + 1)
    if len(found) != expected:
        raise RuntimeError(f"an id occurs {len(found)} times in the template, not {expected}")
    return found


class Batches:
    """Serialized batches of the same spans, each with fresh random trace and span ids.

    The template is serialized once; a batch is a copy with new id bytes written where the old
    ones were (ids are raw bytes in protobuf), so making one costs the senders next to nothing.
    """

    def __init__(self, spans: int) -> None:
        request, span_ids, trace_ids = realistic_request(spans)
        self.template = request.SerializeToString()
        self.spans = spans
        children = {
            span.parent_span_id for scope in request.resource_spans[0].scope_spans for span in scope.spans
        }
        self.span_offsets = [
            _offsets(self.template, span_id, 1 + (span_id in children)) for span_id in span_ids
        ]
        members = Counter(span.trace_id for span in request.resource_spans[0].scope_spans[1].spans)
        self.trace_offsets = [
            _offsets(self.template, trace_id, 1 + members[trace_id]) for trace_id in trace_ids
        ]

    def next(self) -> bytes:
        body = bytearray(self.template)
        span_ids = os.urandom(8 * len(self.span_offsets))
        for number, offsets in enumerate(self.span_offsets):
            new = span_ids[8 * number : 8 * number + 8]
            for offset in offsets:
                body[offset : offset + 8] = new
        trace_ids = os.urandom(16 * len(self.trace_offsets))
        for number, offsets in enumerate(self.trace_offsets):
            new = trace_ids[16 * number : 16 * number + 16]
            for offset in offsets:
                body[offset : offset + 16] = new
        return bytes(body)

    def check(self) -> None:
        """Two batches decode to the template's spans, with distinct ids and parents kept."""
        first, second = (ExportTraceServiceRequest.FromString(self.next()) for _ in range(2))
        ids: set[bytes] = set()
        for request in (first, second):
            scopes = request.resource_spans[0].scope_spans
            spans = [span for scope in scopes for span in scope.spans]
            if len(spans) != self.spans:
                raise RuntimeError(f"a batch decodes to {len(spans)} spans, not {self.spans}")
            servers = {span.span_id: span.trace_id for span in scopes[0].spans}
            for client in scopes[1].spans:
                if servers.get(client.parent_span_id) != client.trace_id:
                    raise RuntimeError("a client span lost its parent or its trace")
            ids.update(span.span_id for span in spans)
        if len(ids) != 2 * self.spans:
            raise RuntimeError("two batches share span ids")


# --- in-process costs -----------------------------------------------------------------------------


def in_process_costs(batches: Batches, rounds: int = 9) -> dict[str, float]:
    """µs per span: protobuf decoding and ``map_request``, median of ``rounds`` batches each."""
    decode, mapping = [], []
    service_map = DEFAULT_SINK_SERVICE_MAP
    for _ in range(rounds):
        body = batches.next()
        started = time.perf_counter()
        request = ExportTraceServiceRequest.FromString(body)
        decoded = time.perf_counter()
        mapped = map_request(request, service_map)
        done = time.perf_counter()
        if len(mapped.rows) != batches.spans or mapped.rejected:
            raise RuntimeError(f"map_request gave {len(mapped.rows)} rows, {mapped.rejected} rejected")
        decode.append((decoded - started) / batches.spans * 1e6)
        mapping.append((done - decoded) / batches.spans * 1e6)
    return {"decode": statistics.median(decode), "map": statistics.median(mapping)}


# --- the sink's write path alone ------------------------------------------------------------------


async def _write_path(dsn: str, rows: list[tuple[Any, ...]], writers: int, seconds: float) -> int:
    pool = await sink_database.create_pool(dsn, writers, 30.0)
    written = 0
    deadline = time.perf_counter() + seconds

    def fresh() -> list[tuple[Any, ...]]:  # new ids, the rest as mapped
        ids = os.urandom(24 * len(rows)).hex()
        return [
            (ids[48 * n : 48 * n + 32], "0000000000000000" + ids[48 * n + 32 : 48 * n + 48], None, *row[3:])
            for n, row in enumerate(rows)
        ]

    async def writer() -> None:
        nonlocal written
        while time.perf_counter() < deadline:
            new = (await sink_database.write_rows(pool, fresh())).new
            written += new  # not `written += await ...`: that reads `written` before awaiting

    try:
        await sink_database.write_rows(pool, fresh())  # the pool's first connection, warm
        await asyncio.gather(*(writer() for _ in range(writers)))
    finally:
        await pool.close()
    return written


def write_path_only(server: PostgresServer, batches: Batches, writers: int, seconds: float) -> Figure:
    dsn = new_database(server, "writepath")
    migrate(dsn)
    rows = map_request(ExportTraceServiceRequest.FromString(batches.next()), DEFAULT_SINK_SERVICE_MAP).rows
    before = count_rows(dsn)
    cpu_before, process_before = postgres_cpu(server), time.process_time()
    started = time.perf_counter()
    done = asyncio.run(_write_path(dsn, rows, writers, seconds))
    elapsed = time.perf_counter() - started
    cpu_after, process_after = postgres_cpu(server), time.process_time()
    written = count_rows(dsn) - before - len(rows)  # minus the warm-up batch
    if written != done:
        raise SystemExit(f"write path: {done} rows reported new but {written} new rows")
    return Figure(
        f"sink write path only (write_rows, {writers} writers)",
        before,
        written,
        elapsed,
        cpu_after - cpu_before,
        process_after - process_before,
    )


# --- the sink end to end --------------------------------------------------------------------------


def migrate(dsn: str) -> None:
    done = subprocess.run(
        [str(BIN / "beacon-otel"), "sink", "migrate"],
        env=base_env(DATABASE_URL=dsn, BEACON_OTEL_SINK_TOKEN=TOKEN),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"beacon-otel sink migrate failed:\n{done.stderr}{done.stdout}")


@contextlib.contextmanager
def running_sink(dsn: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/traces"
    env = base_env(
        DATABASE_URL=dsn, BEACON_OTEL_SINK_ADDRESS=f"127.0.0.1:{port}", BEACON_OTEL_SINK_TOKEN=TOKEN
    )
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(BIN / "beacon-otel"), "sink"], env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the sink exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=1).status_code == 405:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the sink did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield process, url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def drive(url: str, batches: Batches, senders: int, seconds: float) -> Load:
    """``senders`` threads post batches until the deadline; a 503 is retried after 50 ms."""
    load = Load()
    lock = threading.Lock()
    failures: list[str] = []
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {TOKEN}"}
    deadline = time.perf_counter() + seconds

    def send() -> None:
        accepted = requests = retries = 0
        try:
            with httpx.Client(headers=headers, timeout=60) as client:
                body = batches.next()
                while time.perf_counter() < deadline:
                    response = client.post(url, content=body)
                    requests += 1
                    if response.status_code == 200:
                        accepted += batches.spans
                        body = batches.next()
                    elif response.status_code == 503:
                        retries += 1
                        time.sleep(0.05)
                    else:
                        raise RuntimeError(
                            f"the sink answered {response.status_code}: {response.content[:300]!r}"
                        )
        except Exception as error:  # reported by the caller
            failures.append(f"{type(error).__name__}: {error}")
        with lock:
            load.accepted_spans += accepted
            load.requests += requests
            load.retries += retries

    threads = [threading.Thread(target=send, name=f"sender-{number}") for number in range(senders)]
    cpu_before, started = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.elapsed = time.perf_counter() - started
    load.driver_cpu_s = time.process_time() - cpu_before
    if failures:
        raise SystemExit("a sender failed: " + "; ".join(failures))
    return load


def sink_run(
    server: PostgresServer,
    dsn: str,
    pid: int,
    url: str,
    batches: Batches,
    senders: int,
    seconds: float,
    variant: str,
) -> Figure:
    drive(url, batches, senders, 0.5)  # warm: the pool's connections, the staging tables
    before = count_rows(dsn)
    sink_before, postgres_before = cpu_seconds(pid), postgres_cpu(server)
    load = drive(url, batches, senders, seconds)
    sink_after, postgres_after = cpu_seconds(pid), postgres_cpu(server)
    written = count_rows(dsn) - before
    if written != load.accepted_spans:
        raise SystemExit(
            f"{variant}: the sink accepted {load.accepted_spans} spans but {written} rows are new"
        )
    return Figure(
        variant,
        before,
        written,
        load.elapsed,
        postgres_after - postgres_before,
        sink_after - sink_before,
        load,
    )


# --- profiling ------------------------------------------------------------------------------------


def profile_sink(pid: int, url: str, batches: Batches, senders: int, seconds: float) -> str:
    """Load the sink under ``py-spy record`` and summarise the samples per function."""
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        return "py-spy is not installed in this environment: no profile"
    with tempfile.TemporaryDirectory() as directory:
        raw = Path(directory) / "sink.txt"
        recorder = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "-p",
                str(pid),
                "-d",
                str(round(seconds)),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
        drive(url, batches, senders, seconds)
        _, errors = recorder.communicate(timeout=seconds + 60)
        if not raw.exists():
            return f"py-spy wrote no profile: {errors.decode(errors='replace')[-500:]}"
        lines = raw.read_text().splitlines()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [
            frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for frame in stack.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    lines_out = [f"py-spy: {total} non-idle samples of the sink at 200 Hz over {seconds:.0f} s"]
    for title, counter in (("inclusive", inclusive), ("own", own)):
        lines_out.append(f"  top {title}:")
        for frame, samples in counter.most_common(25):
            lines_out.append(f"    {samples / max(total, 1) * 100:5.1f}%  {frame}")
    return "\n".join(lines_out)


# --- the report -----------------------------------------------------------------------------------


def _us(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def render(figures: list[Figure], costs: dict[str, float], args: argparse.Namespace, prefill_s: float) -> str:
    base = figures[0].per_second
    command = (
        f"python -m benchmarks.sink_throughput --seconds {args.seconds:g} "
        f"--sink-seconds {args.sink_seconds:g} --senders {args.senders} --batch {args.batch} "
        f"--prefill {args.prefill}"
    )
    lines = [
        "## Sink throughput: `beacon-otel sink` vs the legacy INSERT+UPDATE, spans committed per second",
        "",
        f"Command: `{command}` (machine: {machine_line()}). One throwaway Postgres "
        f"(fsync, synchronous_commit and full_page_writes off) on the same cores as the sink and the "
        f"load, each variant in a fresh database with the project's `trace_spans` DDL (no index on "
        f"span_id until `beacon-otel sink migrate`). Per-span baselines: one asyncpg connection for "
        f"{args.seconds:g} s. Sink: the `beacon-otel sink` process with default settings (pool 4), "
        f"{args.senders} sender threads posting protobuf batches of {args.batch} spans (server spans and "
        f"their client children, about ten attributes each, fresh random ids) over keep-alive HTTP "
        f"for {args.sink_seconds:g} s. spans/s is rows committed (`count(*)` before and after) over the "
        "elapsed time; CPU per span is the process's own, from `/proc`.",
        "",
        "| variant | table rows before | after | spans/s | ratio vs legacy INSERT+UPDATE (small table) "
        "| sink CPU µs/span | Postgres CPU µs/span |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for figure in figures:
        lines.append(
            f"| {figure.variant} | {figure.rows_before:,} | {figure.rows_before + figure.spans:,} | "
            f"{figure.per_second:,.0f} | "
            f"{figure.per_second / base:.2f}x | {_us(figure.us_per_span(figure.client_cpu_s))} | "
            f"{_us(figure.us_per_span(figure.postgres_cpu_s))} |"
        )
    sink_loads = [
        f"{figure.load.requests} requests ({figure.load.retries} answered 503 and retried), senders' CPU "
        f"{figure.us_per_span(figure.load.driver_cpu_s):.1f} µs/span"
        for figure in figures
        if figure.load is not None
    ]
    lines += [
        "",
        f"| in the sink process, per span (batch of {args.batch}, in-process, median of 9) | µs/span |",
        "|---|---:|",
        f"| protobuf decoding (`ExportTraceServiceRequest.FromString`) | {costs['decode']:.2f} |",
        f"| `beacon_otel.sink.mapping.map_request` | {costs['map']:.1f} |",
        "",
        "The sink rows' table sizes include the rows of a 0.5 s warm-up load. Before the second one, "
        f"{args.prefill:,} runner rows were added (random UUIDs, one `INSERT ... SELECT "
        "generate_series`, every index present including the unique span_id index) and "
        f"`VACUUM ANALYZE` + `CHECKPOINT` run, in {prefill_s:.0f} s. Sink loads: "
        + "; ".join(sink_loads)
        + ". The write-path-only row calls `write_rows` in the benchmark process with rows already "
        "mapped; its CPU column is that process's (asyncpg's COPY encoding). Durability is off in this "
        "Postgres, which flatters the per-span baselines most: they commit once or twice per span, the "
        f"sink once per {args.batch}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="each per-span baseline's load")
    parser.add_argument("--sink-seconds", type=float, default=8.0, help="each sink load")
    parser.add_argument("--senders", type=int, default=4, help="sender threads (and write-path writers)")
    parser.add_argument("--batch", type=int, default=512, help="spans per request")
    parser.add_argument("--legacy-rows", type=int, default=5000, help="the legacy table's rows (small)")
    parser.add_argument(
        "--legacy-rows-large", type=int, default=20000, help="the legacy table's rows (large)"
    )
    parser.add_argument(
        "--prefill", type=int, default=1_000_000, help="rows added before the second sink run"
    )
    parser.add_argument(
        "--profile", type=float, default=0.0, help="seconds of an extra py-spy-profiled sink run"
    )
    parser.add_argument("--write", type=Path, help="update this markdown file's section with the results")
    args = parser.parse_args(argv)

    batches = Batches(args.batch)
    batches.check()
    costs = in_process_costs(batches)
    print(f"in-process: decode {costs['decode']:.2f} µs/span, map_request {costs['map']:.1f} µs/span")

    server = start_postgres()
    figures: list[Figure] = []
    profile = ""
    try:
        for rows in (args.legacy_rows, args.legacy_rows_large):
            figures.append(per_span_baseline(server, BASELINE, rows, args.seconds, legacy=True))
            print(f"{figures[-1].variant} ({rows} rows): {figures[-1].per_second:,.0f} spans/s")
        figures.append(
            per_span_baseline(server, "one INSERT per span", args.legacy_rows, args.seconds, legacy=False)
        )
        print(f"{figures[-1].variant}: {figures[-1].per_second:,.0f} spans/s")
        figures.append(write_path_only(server, batches, args.senders, args.seconds))
        print(f"{figures[-1].variant}: {figures[-1].per_second:,.0f} spans/s")

        dsn = new_database(server, "sink")
        migrate(dsn)
        prefill_s = 0.0
        with (
            tempfile.TemporaryDirectory() as directory,
            running_sink(dsn, Path(directory) / "sink.log") as (
                process,
                url,
            ),
        ):
            variant = f"beacon-otel sink ({args.senders} senders x {args.batch} spans)"
            figures.append(
                sink_run(server, dsn, process.pid, url, batches, args.senders, args.sink_seconds, variant)
            )
            print(f"{variant}, fresh table: {figures[-1].per_second:,.0f} spans/s")
            prefill_s = prefill(dsn, args.prefill)
            print(f"pre-filled {args.prefill:,} rows in {prefill_s:.1f} s")
            figures.append(
                sink_run(server, dsn, process.pid, url, batches, args.senders, args.sink_seconds, variant)
            )
            print(f"{variant}, large table: {figures[-1].per_second:,.0f} spans/s")
            if args.profile > 0:
                profile = profile_sink(process.pid, url, batches, args.senders, args.profile)
            if "Traceback" in (Path(directory) / "sink.log").read_text():
                raise SystemExit(
                    "the sink logged a traceback:\n" + (Path(directory) / "sink.log").read_text()[-3000:]
                )
    finally:
        server.destroy()

    report = render(figures, costs, args, prefill_s)
    print(report)
    if profile:
        print(profile)
    if args.write:
        replace_section(args.write, "sink-throughput", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
