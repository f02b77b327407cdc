"""``beacon-otel doctor`` as operators run it: a real OTLP receiver, a real sink, a real Postgres.

A healthy setup passes and its test span arrives; then each part is broken in turn, and the
doctor must fail exactly that check, with its remedy, in the text and in ``--json``. With
everything down (refusing, or accepting connections and never answering) it must still finish
in seconds.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from beacon_otel.stack.postgres import PostgresServer
from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import clean_env, free_port, stop
from tests.support.sink import LEGACY_DDL, TOKEN, Database, Sink, migrate_database, new_database, start_sink

HANG_GUARD = 10.0  # seconds; the doctor's own budget is a few seconds, this only catches a hang


@dataclass
class Outcome:
    """One doctor run, in text and in JSON (run side by side, same environment)."""

    returncode: int
    text: str
    checks: list[dict[str, Any]]
    seconds: float

    def failed(self) -> set[str]:
        return {check["check"] for check in self.checks if check["status"] == "fail"}

    def one(self, name: str) -> dict[str, Any]:
        (check,) = [check for check in self.checks if check["check"] == name]
        return check

    def line(self, name: str) -> str:
        (line,) = [line for line in self.text.splitlines() if line.split()[1:2] == [name]]
        return line


def run_doctor(env: dict[str, str], *args: str) -> Outcome:
    """Run the text and the JSON variants at once; both must agree on every check's status."""
    started = time.monotonic()
    command = ["beacon-otel", "doctor", *args]
    text = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    as_json = subprocess.Popen(
        [*command, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    text_out, text_err = text.communicate(timeout=HANG_GUARD)
    json_out, json_err = as_json.communicate(timeout=HANG_GUARD)
    seconds = time.monotonic() - started
    assert text_err == json_err == "", f"nothing goes to stderr:\n{text_err}\n{json_err}"
    assert text.returncode == as_json.returncode, (text_out, json_out)
    checks = json.loads(json_out)
    assert all(set(check) == {"check", "status", "detail", "remedy"} for check in checks)
    statuses = [(line.split()[1], line.split()[0]) for line in text_out.splitlines()[: len(checks)]]
    assert statuses == [(check["check"], check["status"]) for check in checks], text_out
    return Outcome(text.returncode, text_out, checks, seconds)


# --- the setup: a receiver, a migrated database, a sink -------------------------------------------------


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def migrated(postgres: PostgresServer) -> Iterator[Database]:
    database = new_database(postgres)
    assert migrate_database(database).returncode == 0
    yield database
    postgres.psql(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


@pytest.fixture(scope="module")
def sink(migrated: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    sink = start_sink(migrated, tmp_path_factory.mktemp("sink"))
    yield sink
    stop(sink.process)


@dataclass
class Setup:
    """Everything a healthy doctor run needs; each broken case changes one part of it."""

    otlp: OtlpReceiver
    sink: Sink
    database: Database

    def env(self, **overrides: str) -> dict[str, str]:
        healthy = {"OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp.http_endpoint, "DATABASE_URL": self.database.dsn}
        return clean_env(**{**healthy, **overrides})

    def args(self, token: str = TOKEN) -> list[str]:
        return ["--sink", self.sink.url.removesuffix("/v1/traces"), "--sink-token", token]


@pytest.fixture
def setup(otlp: OtlpReceiver, sink: Sink, migrated: Database) -> Setup:
    otlp.clear()
    return Setup(otlp, sink, migrated)


def _doctor_spans(trace_id: str) -> Callable[[list[ReceivedSpan]], bool]:
    def arrived(spans: list[ReceivedSpan]) -> bool:
        return any(
            span.name == "beacon-otel doctor"
            and span.attributes == {"beacon.doctor": True}
            and span.trace_id == trace_id
            for span in spans
        )

    return arrived


def _trace_id(detail: str) -> str:
    return detail.split("(trace ", 1)[1].split(",", 1)[0]


# --- healthy --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_healthy_setup_passes_and_the_test_span_arrives(setup: Setup, protocol: str) -> None:
    endpoint = setup.otlp.http_endpoint if protocol == "http/protobuf" else setup.otlp.grpc_endpoint
    env = setup.env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20collector-secret",
    )
    outcome = run_doctor(env, *setup.args())

    assert outcome.returncode == 0, outcome.text
    assert outcome.failed() == set()
    for name in ("config", "otlp-reach", "otlp-export", "sink", "postgres", "trace_spans", "span-index"):
        assert outcome.one(name)["status"] == "ok", outcome.text
    assert outcome.one("export:traces")["status"] == "info"
    assert outcome.one("instr:httpx")["detail"] == (
        f"will load: httpx {importlib.metadata.version('httpx')} (beacon-otel's transport wrappers)"
    )
    assert outcome.one("instr:asyncpg")["detail"] == (
        f"will load: asyncpg {importlib.metadata.version('asyncpg')} (beacon-otel's statement wrappers)"
    )
    assert "collector-secret" not in outcome.text and "[scrubbed]" in outcome.line("export:traces")
    assert outcome.text.rstrip().endswith("nothing failed, 0 warnings")
    for detail in (outcome.one("otlp-export")["detail"], outcome.line("otlp-export")):
        spans = setup.otlp.wait_for_spans(_doctor_spans(_trace_id(detail)), timeout=5)
    doctor_span = next(span for span in spans if span.name == "beacon-otel doctor")
    assert doctor_span.transport == ("grpc" if protocol == "grpc" else "http")
    assert doctor_span.resource["service.name"] == "hybrid-router"
    # aligned columns: every detail starts at the same offset
    lines = outcome.text.splitlines()[: len(outcome.checks)]
    assert len({len(line) - len(re.sub(r"^\S+\s+\S+\s+", "", line)) for line in lines}) == 1, outcome.text


def test_an_app_exporting_straight_to_the_sink_lends_it_its_token(setup: Setup) -> None:
    """No --sink-token: the traces headers hold it, and the test span lands in trace_spans."""
    env = setup.env(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=setup.sink.url,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"authorization=Bearer%20{TOKEN}",
    )
    outcome = run_doctor(env, "--sink", setup.sink.url)

    assert outcome.returncode == 0, outcome.text
    assert "traces exporter's headers" in outcome.one("sink")["detail"]
    assert {
        name for name in (check["check"] for check in outcome.checks) if name.startswith("otlp-reach")
    } == {
        "otlp-reach:traces",
        "otlp-reach:metrics+logs",
    }
    trace_ids = {
        uuid.UUID(_trace_id(outcome.one("otlp-export")["detail"])),
        uuid.UUID(_trace_id(outcome.line("otlp-export"))),
    }
    rows = setup.database.sql(
        "SELECT trace_id, service, metadata->'attributes'->>'beacon.doctor' FROM trace_spans "
        "WHERE operation = 'beacon-otel doctor'"
    )
    assert {line.split("|")[0] for line in rows.splitlines()} == {str(trace_id) for trace_id in trace_ids}
    assert all(line.endswith("|router|true") for line in rows.splitlines()), rows


def test_in_the_sinks_own_environment_the_sink_is_checked_without_options(setup: Setup) -> None:
    address = setup.sink.url.removeprefix("http://").removesuffix("/v1/traces")
    env = setup.env(
        BEACON_OTEL_SINK_ADDRESS=address,
        BEACON_OTEL_SINK_TOKEN=TOKEN,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="asyncpg,fastpi",
        BEACON_OTEL_HTTPX_UPSTREAM="true",
    )
    outcome = run_doctor(env)

    assert outcome.returncode == 0, "warnings do not fail the run:\n" + outcome.text
    assert outcome.one("instr:asyncpg") == {
        "check": "instr:asyncpg",
        "status": "info",
        "detail": "disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
        "remedy": None,
    }
    assert outcome.one("instr:disabled")["status"] == "warn" and "fastpi" in outcome.line("instr:disabled")
    assert outcome.one("instr:httpx")["detail"] == (
        f"will load: httpx {importlib.metadata.version('httpx')} "
        "(upstream instrumentation, BEACON_OTEL_HTTPX_UPSTREAM=true)"
    )
    assert outcome.one("sink")["detail"] == (
        f"{setup.sink.url} accepted an empty export with the token (token from BEACON_OTEL_SINK_TOKEN)"
    )
    assert TOKEN not in outcome.text


# --- each part broken in turn ---------------------------------------------------------------------------


def _database(postgres: PostgresServer, *statements: str) -> Database:
    name = f"doctor_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {name}")
    database = Database(postgres, name)
    for statement in statements:
        database.sql(statement)
    return database


@dataclass
class Broken:
    """How to break one part, and what the doctor must then say."""

    env: dict[str, str]
    args: list[str]
    failed: set[str]
    words: list[str]  # in the failing check's detail or remedy
    remedy: str  # in the failing check's remedy


def _endpoint_down(setup: Setup, postgres: PostgresServer) -> Broken:
    env = setup.env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    return Broken(env, setup.args(), {"otlp-reach", "otlp-export"}, ["refused the connection"], "Collector")


def _backend_refuses_the_token(setup: Setup, postgres: PostgresServer) -> Broken:
    env = setup.env(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=setup.sink.url,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="authorization=Bearer%20not-the-token",
    )
    return Broken(env, setup.args(), {"otlp-export"}, ["HTTP 401"], "OTEL_EXPORTER_OTLP_TRACES_HEADERS")


def _wrong_sink_token(setup: Setup, postgres: PostgresServer) -> Broken:
    return Broken(
        setup.env(), setup.args("not-the-token"), {"sink"}, ["wrong token"], "BEACON_OTEL_SINK_TOKEN"
    )


def _missing_table(setup: Setup, postgres: PostgresServer) -> Broken:
    env = setup.env(DATABASE_URL=_database(postgres).dsn)
    return Broken(env, setup.args(), {"trace_spans"}, ["no table trace_spans"], "beacon-otel sink migrate")


def _missing_index(setup: Setup, postgres: PostgresServer) -> Broken:
    env = setup.env(DATABASE_URL=_database(postgres, LEGACY_DDL).dsn)
    return Broken(
        env, setup.args(), {"span-index"}, ["trace_spans_span_id_key", "missing"], "beacon-otel sink migrate"
    )


def _narrow_column(setup: Setup, postgres: PostgresServer) -> Broken:
    database = _database(
        postgres, LEGACY_DDL, "ALTER TABLE trace_spans ALTER COLUMN service TYPE varchar(20)"
    )
    assert migrate_database(database).returncode == 0
    env = setup.env(DATABASE_URL=database.dsn)
    return Broken(env, setup.args(), {"trace_spans"}, ["service is character varying(20)"], "migration 0011")


def _invalid_variables(setup: Setup, postgres: PostgresServer) -> Broken:
    env = setup.env(OTEL_TRACES_SAMPLER="sometimes", OTEL_BSP_MAX_QUEUE_SIZE="lots")
    return Broken(
        env, setup.args(), {"config"}, ["OTEL_TRACES_SAMPLER", "OTEL_BSP_MAX_QUEUE_SIZE"], "Configuration"
    )


@pytest.mark.parametrize(
    "breakage",
    [
        _endpoint_down,
        _backend_refuses_the_token,
        _wrong_sink_token,
        _missing_table,
        _missing_index,
        _narrow_column,
        _invalid_variables,
    ],
    ids=lambda breakage: breakage.__name__.strip("_"),
)
def test_each_broken_part_fails_its_check_with_a_remedy(
    setup: Setup, postgres: PostgresServer, breakage: Callable[[Setup, PostgresServer], Broken]
) -> None:
    broken = breakage(setup, postgres)
    outcome = run_doctor(broken.env, *broken.args)

    assert outcome.returncode == 1, outcome.text
    assert outcome.failed() == broken.failed, outcome.text
    failing = [check for check in outcome.checks if check["status"] == "fail"]
    said = " ".join(f"{check['detail']} {check['remedy']}" for check in failing)
    for word in broken.words:
        assert word in said, outcome.text
    for check in failing:
        assert broken.remedy in check["remedy"], outcome.text
        assert f" — {check['remedy']}" in outcome.text
    assert "1 failed" in outcome.text or f"{len(failing)} failed" in outcome.text


# --- everything down ---------------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("how", ["refused", "silent"])
def test_everything_down_still_finishes_in_seconds(how: str, silent_port: int) -> None:
    port = free_port() if how == "refused" else silent_port
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        DATABASE_URL=f"postgresql://postgres:secret-password@127.0.0.1:{port}/beacon",
    )
    outcome = run_doctor(env, "--sink", f"http://127.0.0.1:{port}", "--sink-token", "t", "--timeout", "1")

    assert outcome.seconds < HANG_GUARD
    assert "no result within" not in outcome.text, "each check keeps to its own timeout"
    assert outcome.returncode == 1
    assert {"otlp-export", "sink", "postgres"} <= outcome.failed(), outcome.text
    assert "secret-password" not in outcome.text, "the DSN's password is never shown"
    expected = "refused the connection" if how == "refused" else "within 1 s"
    for name in ("sink", "postgres"):
        assert expected in outcome.one(name)["detail"], outcome.text


# --- an endpoint that already holds the signal's path ------------------------------------------------


def test_a_generic_endpoint_ending_in_v1_traces_is_warned_about(otlp: OtlpReceiver) -> None:
    """Over HTTP the exporters append /v1/<signal> to OTEL_EXPORTER_OTLP_ENDPOINT: one ending in
    /v1/traces sends traces to .../v1/traces/v1/traces, which the receiver answers 404."""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"{otlp.http_endpoint}/v1/traces", OTEL_LOGS_EXPORTER="none")
    outcome = run_doctor(env)

    rows = {check["check"]: check for check in outcome.checks if check["check"].startswith("endpoint:")}
    assert set(rows) == {"endpoint:traces", "endpoint:metrics"}, outcome.text
    traces = rows["endpoint:traces"]
    assert traces["status"] == "warn"
    assert traces["detail"] == (
        "OTEL_EXPORTER_OTLP_ENDPOINT ends in /v1/traces, and traces get /v1/traces appended: "
        f"they go to {otlp.http_endpoint}/v1/traces/v1/traces"
    )
    assert traces["remedy"].startswith(
        f"set OTEL_EXPORTER_OTLP_ENDPOINT to the base URL ({otlp.http_endpoint})"
    )
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in traces["remedy"]
    assert f"go to {otlp.http_endpoint}/v1/traces/v1/metrics" in rows["endpoint:metrics"]["detail"]
    assert outcome.one("otlp-export")["status"] == "fail" and "404" in outcome.one("otlp-export")["detail"]


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{http}/v1/traces"},  # a signal's endpoint is used as is
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "{http}"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "{grpc}/v1/traces", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
    ids=["signal endpoint", "base URL", "grpc"],
)
def test_no_endpoint_warning_when_the_url_is_right(otlp: OtlpReceiver, variables: dict[str, str]) -> None:
    values = {
        name: value.format(http=otlp.http_endpoint, grpc=otlp.grpc_endpoint)
        for name, value in variables.items()
    }
    outcome = run_doctor(clean_env(OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **values))
    assert not [check for check in outcome.checks if check["check"].startswith("endpoint:")], outcome.text
    assert outcome.one("otlp-export")["status"] == "ok", outcome.text


@pytest.mark.parametrize(
    ("variables", "status", "says"),
    [
        ({}, "ok", "spans skip the SDK's span object"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "info", "the console exporter"),
        ({"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true"}, "info", "the SDK counts spans"),
    ],
    ids=["on", "console exporter", "SDK span metrics"],
)
def test_the_doctor_says_whether_spans_take_the_fast_path(
    otlp: OtlpReceiver, variables: dict[str, str], status: str, says: str
) -> None:
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.http_endpoint, OTEL_LOGS_EXPORTER="none", **variables)
    row = run_doctor(env).one("fast-path")
    assert row["status"] == status and says in row["detail"], row
