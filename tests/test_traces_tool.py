"""``beacon-otel traces`` against a real Postgres: runner rows and sink rows of one trace, the tree,
the team's anomaly rules, the fixed-width waterfall, the list and its filters, the errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from beacon_otel.sink.mapping import span_uuid
from beacon_otel.stack.postgres import PostgresServer
from beacon_otel.tools import traces
from beacon_otel.tools.waterfall import Span, build_trace, error_text, render_trace
from tests.support.processes import clean_env, free_port
from tests.support.sink import Database, new_database

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TRACE = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
RUNNER_JOB = uuid.UUID("3b241101-e2bb-4255-8caf-4136c566a962")
RUNNER_UPLOAD = uuid.UUID("9d5ed678-fe57-4cca-b8e1-3c5f8a8c2c19")
COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "service", "operation", "started_at", "completed_at",
    "duration_ms", "status", "job_id", "execution_id", "model_id", "region", "error_type", "error_message",
)  # fmt: skip


def otel(number: int) -> uuid.UUID:
    """The UUID the sink writes for an 8-byte OTel span id."""
    return uuid.UUID(span_uuid(number.to_bytes(8, "big")))


def row(
    span_id: uuid.UUID,
    parent: uuid.UUID | None,
    service: str,
    operation: str,
    start_ms: int,
    duration_ms: int | None,
    status: str = "completed",
    trace_id: uuid.UUID = TRACE,
    start: datetime = T0,
    **extra: Any,
) -> dict[str, Any]:
    """A trace_spans row ``start_ms`` after ``start``; ``duration_ms`` None leaves it unfinished."""
    optional = ("job_id", "execution_id", "model_id", "region", "error_type", "error_message")
    assert set(extra) <= set(optional), set(extra) - set(optional)
    started = start + timedelta(milliseconds=start_ms)
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "service": service,
        "operation": operation,
        "started_at": started,
        "completed_at": None if duration_ms is None else started + timedelta(milliseconds=duration_ms),
        "duration_ms": duration_ms,
        "status": status,
        **{name: extra.get(name) for name in optional},
    }


# One trace as the runner and the sink write it: the runner's rows have random UUIDs and no parent;
# the router's OTel spans (00000000-0000-0000-...) link to each other, and the topmost names a
# parent that is not in the table (it lives in the caller). Inserted in this order: ids 1..7.
MAIN = {
    "job": row(RUNNER_JOB, None, "runner", "execute_job", 0, 3000, job_id="job-7", execution_id=4242),
    "inference": row(
        otel(1), otel(0xAA), "router", "POST /inference", 100, 2000, job_id="job-7", execution_id=4242,
        model_id="llama3-8b", region="eu-west",
    ),
    "sweep": row(otel(2), otel(1), "router", "providers.health_check", 200, 1000),
    "check_ok": row(otel(3), otel(2), "router", "provider.health_check", 250, 900, region="us-east"),
    "check_500": row(
        otel(4), otel(2), "router", "provider.health_check", 300, 500, "failed", region="eu-west",
        error_type="http_500", error_message="server error",
    ),
    "modal": row(
        otel(5), otel(1), "modal", "inference", 1300, 700, "timeout", job_id="job-7", execution_id=4242,
        error_type="TimeoutError", error_message="deadline exceeded",
    ),
    # starts 6 s after "modal" ended: a gap flagged on "modal"
    "upload": row(
        RUNNER_UPLOAD, None, "runner", "upload_results", 8000, 600, job_id="job-7", execution_id=4242
    ),
}  # fmt: skip
ROW_IDS = {name: number for number, name in enumerate(MAIN, start=1)}
TREE: list[tuple[str, list[Any]]] = [
    ("job", []),
    ("inference", [("sweep", [("check_ok", []), ("check_500", [])]), ("modal", [])]),
    ("upload", []),
]
HISTORY_START = datetime(2024, 4, 30, 10, 0, tzinfo=UTC)
# Other traces, earlier: 9 health checks of 100 ms make the 900 ms one over 3x the average
# (100 * 9 + 900 + 500) / 11; two uploads of 0 ms put "upload" at exactly 3x (600 / 200): not over.
HISTORY = [
    row(uuid.uuid4(), None, "router", "provider.health_check", minute * 60_000, 100, trace_id=uuid.uuid4(),
        start=HISTORY_START)
    for minute in range(9)
] + [
    row(uuid.uuid4(), None, "runner", "upload_results", minute * 60_000, 0, trace_id=uuid.uuid4(),
        start=HISTORY_START)
    for minute in range(2)
]  # fmt: skip
HEALTH_AVERAGE = (100 * 9 + 900 + 500) / 11


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    return "'" + str(value).replace("'", "''") + "'"


def insert(database: Database, rows: list[dict[str, Any]]) -> None:
    values = ",\n".join("(" + ", ".join(_literal(item[name]) for name in COLUMNS) + ")" for item in rows)
    database.sql(f"INSERT INTO trace_spans ({', '.join(COLUMNS)}) VALUES {values}")


def beacon_traces(*args: str, dsn: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    return subprocess.run(
        ["beacon-otel", "traces", *args], env=clean_env(**env), capture_output=True, text=True, timeout=30
    )


def traces_json(*args: str, dsn: str) -> list[dict[str, Any]]:
    result = beacon_traces(*args, "--json", dsn=dsn)
    assert result.returncode == 0, result.stderr
    output: list[dict[str, Any]] = json.loads(result.stdout)["traces"]
    return output


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[Database]:
    """A fresh database with trace_spans as migration 0011 made it (no sink index needed)."""
    database = new_database(postgres)
    yield database
    postgres.psql(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)")


@pytest.fixture
def main_trace(database: Database) -> Database:
    insert(database, list(MAIN.values()))
    insert(database, HISTORY)
    return database


# --- one trace: tree, anomalies, JSON --------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _expected_node(name: str, children: list[Any]) -> dict[str, Any]:
    span = MAIN[name]
    return {
        "id": ROW_IDS[name],
        "span_id": str(span["span_id"]),
        "parent_span_id": None if span["parent_span_id"] is None else str(span["parent_span_id"]),
        "service": span["service"],
        "operation": span["operation"],
        "started_at": _iso(span["started_at"]),
        "completed_at": _iso(span["completed_at"]),
        "offset_ms": (span["started_at"] - T0) // timedelta(milliseconds=1),
        "duration_ms": span["duration_ms"],
        "status": span["status"],
        "job_id": span["job_id"],
        "execution_id": span["execution_id"],
        "model_id": span["model_id"],
        "region": span["region"],
        "error_type": span["error_type"],
        "error_message": span["error_message"],
        "url": None,
        "anomalies": {"check_ok": ["slow"], "check_500": ["error"], "modal": ["gap", "error"]}.get(name, []),
        "children": [_expected_node(*child) for child in children],
    }


EXPECTED_ANOMALIES = [
    {
        "kind": "slow",
        "span_id": str(otel(3)),
        "service": "router",
        "operation": "provider.health_check",
        "duration_ms": 900,
        "average_ms": HEALTH_AVERAGE,
        "samples": 11,
        "ratio": 900 / HEALTH_AVERAGE,
    },
    {
        "kind": "error",
        "span_id": str(otel(4)),
        "service": "router",
        "operation": "provider.health_check",
        "status": "failed",
        "error_type": "http_500",
        "error_message": "server error",
    },
    {
        "kind": "gap",
        "span_id": str(otel(5)),
        "service": "modal",
        "operation": "inference",
        "gap_ms": 6000,
        "next_span_id": str(RUNNER_UPLOAD),
    },
    {
        "kind": "error",
        "span_id": str(otel(5)),
        "service": "modal",
        "operation": "inference",
        "status": "timeout",
        "error_type": "TimeoutError",
        "error_message": "deadline exceeded",
    },
]
EXPECTED_TRACE = {
    "trace_id": str(TRACE),
    "started_at": "2024-05-01T12:00:00+00:00",
    "ended_at": "2024-05-01T12:00:08.600000+00:00",
    "duration_ms": 8600,
    "span_count": 7,
    "services": ["modal", "router", "runner"],
    "status": "failed",
    "spans": [_expected_node(*root) for root in TREE],
    "anomalies": EXPECTED_ANOMALIES,
}


def test_one_trace_as_json_matches_the_rows_exactly(main_trace: Database) -> None:
    assert traces_json("--trace", str(TRACE), dsn=main_trace.dsn) == [EXPECTED_TRACE]


@pytest.mark.parametrize(
    "form",
    [
        str(TRACE).upper(),
        TRACE.hex,  # as the log lines and Jaeger print it
        f"0x{TRACE.hex}",  # as the SDK's console exporter prints it
        f"0X{TRACE.hex.upper()}",
    ],
)
def test_a_trace_id_in_any_printed_form_finds_the_trace(main_trace: Database, form: str) -> None:
    assert traces_json("--trace", form, dsn=main_trace.dsn) == [EXPECTED_TRACE]


def test_short_hex_is_the_same_number() -> None:
    assert traces.parse_trace_id("0x2a") == uuid.UUID(int=42)


def test_nothing_found_with_json_prints_an_empty_list(database: Database) -> None:
    insert(database, [MAIN["job"]])
    for args in (("--job", "nope"), ("--execution", "99"), ("--trace", f"0x{uuid.uuid4().hex}")):
        result = beacon_traces(*args, "--json", dsn=database.dsn)
        assert result.returncode == 1, (args, result.stderr)
        assert json.loads(result.stdout) == {"traces": []}, args
        assert result.stderr.startswith("beacon-otel traces: no trace"), result.stderr


def test_execution_and_job_find_the_traces_that_hold_their_rows(main_trace: Database) -> None:
    retry_trace = uuid.uuid4()
    retry_start = T0 + timedelta(minutes=5)
    insert(
        main_trace,
        [
            row(uuid.uuid4(), None, "runner", "execute_job", 0, 1200, trace_id=retry_trace, start=retry_start,
                job_id="job-7", execution_id=4243),
            row(otel(0x10), None, "router", "POST /inference", 50, 1000, trace_id=retry_trace,
                start=retry_start),
        ],
    )  # fmt: skip
    assert traces_json("--execution", "4242", dsn=main_trace.dsn) == [EXPECTED_TRACE]
    by_job = traces_json("--job", "job-7", dsn=main_trace.dsn)
    assert [trace["trace_id"] for trace in by_job] == [str(TRACE), str(retry_trace)], "oldest first"
    assert by_job[0] == EXPECTED_TRACE
    assert [span["operation"] for span in by_job[1]["spans"]] == ["execute_job", "POST /inference"]
    assert by_job[1]["anomalies"] == []
    assert [
        trace["trace_id"] for trace in traces_json("--job", "job-7", "--last", "1", dsn=main_trace.dsn)
    ] == [str(retry_trace)], "--last keeps the newest"
    text = beacon_traces("--job", "job-7", "--width", "100", dsn=main_trace.dsn)
    assert text.returncode == 0, text.stderr
    assert [line for line in text.stdout.splitlines() if line.startswith("trace ")] == [
        f"trace {TRACE}  2024-05-01 12:00:00.000 UTC  8.60 s  7 spans  failed",
        f"trace {retry_trace}  2024-05-01 12:05:00.000 UTC  1.20 s  2 spans  completed",
    ]


# --- the waterfall, drawn at a fixed width --------------------------------------------------------------

WATERFALL_100 = f"""\
trace {TRACE}  2024-05-01 12:00:00.000 UTC  8.60 s  7 spans  failed
services: modal, router, runner
span                              duration status        |0                                  8.60 s|
runner execute_job                  3.00 s completed     |===============                          |
router POST /inference              2.00 s completed     |===========                              |
  router providers.health_check     1.00 s completed     |======                                   |
    router provider.health_check    900 ms completed S   | =====                                   |
    router provider.health_check    500 ms failed      E | ###                                     |
      ! http_500: server error
  modal inference                   700 ms timeout    GE |      ####                               |
    ! TimeoutError: deadline exceeded
runner upload_results               600 ms completed     |                                      ===|
anomalies: 4
  S router provider.health_check: 900 ms, 4.3x the average 209 ms of 11 spans
  E router provider.health_check: failed (http_500: server error)
  G modal inference: gap of 6.00 s before the next span (runner upload_results)
  E modal inference: timeout (TimeoutError: deadline exceeded)
legend: S = over 3x the average duration of its service+operation
        G = gap over 5 s before the next span
        E = status failed or timeout
"""


def test_waterfall_at_width_100(main_trace: Database) -> None:
    result = beacon_traces("--trace", str(TRACE), "--width", "100", dsn=main_trace.dsn)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == WATERFALL_100.splitlines()
    assert all(len(line) <= 100 for line in result.stdout.splitlines())
    narrow = beacon_traces("--trace", str(TRACE), "--width", "60", dsn=main_trace.dsn)
    assert narrow.returncode == 0
    assert max(len(line) for line in narrow.stdout.splitlines()) == 60


# --- the list ---------------------------------------------------------------------------------------


@pytest.fixture
def recent(main_trace: Database) -> dict[str, dict[str, Any]]:
    """Traces of the last hours beside the 2024 one; their summaries as --json gives them."""
    now = datetime.now(UTC)
    a, b, c, e = (uuid.uuid4() for _ in range(4))
    start = {"a": now - timedelta(minutes=10), "b": now - timedelta(minutes=20),
             "e": now - timedelta(minutes=30), "c": now - timedelta(hours=3)}  # fmt: skip
    rows = [
        (a, row(otel(0x21), None, "router", "GET /providers", 0, 120)),
        (a, row(otel(0x22), otel(0x21), "router", "provider.health_check", 10, 50)),
        (b, row(uuid.uuid4(), None, "runner", "execute_job", 0, 2000)),
        (b, row(otel(0x31), None, "router", "POST /inference", 100, 1500, "timeout")),
        (c, row(otel(0x41), None, "modal", "inference", 0, 500, "failed")),
        (e, row(uuid.uuid4(), None, "backend", "sync", 0, None, "started")),
    ]
    key = {a: "a", b: "b", c: "c", e: "e"}
    insert(main_trace, [_moved(data, trace_id, start[key[trace_id]]) for trace_id, data in rows])

    def summary(trace_id: uuid.UUID, key: str, ms: int, spans: int, services: list[str], status: str) -> Any:
        return {
            "trace_id": str(trace_id),
            "started_at": start[key].isoformat(),
            "ended_at": (start[key] + timedelta(milliseconds=ms)).isoformat(),
            "duration_ms": ms,
            "span_count": spans,
            "services": services,
            "status": status,
        }

    main = {key: EXPECTED_TRACE[key] for key in ("trace_id", "started_at", "ended_at", "duration_ms")}
    return {
        "a": summary(a, "a", 120, 2, ["router"], "completed"),
        "b": summary(b, "b", 2000, 2, ["router", "runner"], "timeout"),
        "c": summary(c, "c", 500, 1, ["modal"], "failed"),
        "e": summary(e, "e", 0, 1, ["backend"], "started"),
        "main": {**main, "span_count": 7, "services": ["modal", "router", "runner"], "status": "failed"},
    }


def _moved(data: dict[str, Any], trace_id: uuid.UUID, start: datetime) -> dict[str, Any]:
    """The row in another trace, its times shifted from T0 to ``start``."""
    shift = start - T0
    completed = data["completed_at"]
    return {
        **data,
        "trace_id": trace_id,
        "started_at": data["started_at"] + shift,
        "completed_at": None if completed is None else completed + shift,
    }


def test_list_shows_the_latest_traces_and_filters_them(main_trace: Database, recent: dict[str, Any]) -> None:
    names = {summary["trace_id"]: name for name, summary in recent.items()}
    names.update({str(span["trace_id"]): "history" for span in HISTORY})

    def listed(*args: str) -> list[str]:
        output = traces_json(*args, dsn=main_trace.dsn)
        for summary in output:
            if names[summary["trace_id"]] != "history":
                assert summary == recent[names[summary["trace_id"]]]
        return [names[summary["trace_id"]] for summary in output]

    history = traces_json("--last", "100", dsn=main_trace.dsn)[5:]
    assert len(history) == len(HISTORY), "each history row is a trace of its own"
    assert listed("--last", "5") == ["a", "b", "e", "c", "main"]
    assert listed("--last", "2") == ["a", "b"]
    assert listed("--service", "runner") == ["b", "main", "history", "history"]
    assert listed("--status", "failed") == ["b", "c", "main"]
    assert listed("--since", "1h") == ["a", "b", "e"]
    assert listed("--since", "90m", "--status", "failed") == ["b"]
    assert listed("--service", "modal", "--status", "failed") == ["c", "main"]
    assert listed("--service", "nobody") == []

    text = beacon_traces("--since", "1h", "--status", "failed", dsn=main_trace.dsn)
    assert text.returncode == 0, text.stderr
    started = datetime.fromisoformat(recent["b"]["started_at"]).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    assert text.stdout.splitlines() == [
        "trace_id                              start (UTC)               duration  spans  status     "
        "services",
        f"{recent['b']['trace_id']}  {started}     2.00 s      2  timeout    router,runner",
    ]
    empty = beacon_traces("--service", "nobody", dsn=main_trace.dsn)
    assert (empty.returncode, empty.stdout) == (0, "no traces match\n")


def _fetch(dsn: str, work: Any) -> Any:
    async def go() -> Any:
        connection = await asyncpg.connect(dsn)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(go())


def test_the_list_walk_pages_through_equal_timestamps(database: Database) -> None:
    """Rows sharing one started_at across a page boundary are neither skipped nor read twice."""
    trace_ids = [uuid.uuid4() for _ in range(7)]
    seconds = [0, 1, 2, 3, 3, 3, 4]  # traces 3, 4 and 5 start at the same instant
    rows = [
        row(uuid.uuid4(), None, service, "op", seconds[number] * 1000, 10, trace_id=trace_id)
        for number, trace_id in enumerate(trace_ids)
        for service in ("runner", "router", "router")
    ]
    insert(database, rows)
    ordered = sorted(
        enumerate(rows, start=1), key=lambda item: (item[1]["started_at"], item[0]), reverse=True
    )
    expected = list(dict.fromkeys(item["trace_id"] for _, item in ordered))
    for last in (5, 100):
        for page_rows in (1, 2, 3, 1000):
            filters = traces.ListFilters(last=last)
            found = _fetch(database.dsn, lambda c, f=filters, p=page_rows: traces.recent_trace_ids(c, f, p))
            assert found == expected[:last], (last, page_rows)
    filters = traces.ListFilters(last=3, service="runner")
    assert _fetch(database.dsn, lambda c: traces.recent_trace_ids(c, filters, 1)) == expected[:3]


def test_every_query_uses_an_index(database: Database) -> None:
    """On a table big enough for the planner to care, no query reads the whole table."""
    database.sql(
        "INSERT INTO trace_spans (trace_id, span_id, service, operation, started_at, completed_at, "
        "duration_ms, status, execution_id, job_id) "
        "SELECT md5((n / 5)::text)::uuid, gen_random_uuid(), (ARRAY['router','runner','modal'])[n % 3 + 1], "
        "'op-' || (n % 50), timestamptz '2024-01-01' + n * interval '1 s', "
        "timestamptz '2024-01-01' + n * interval '1 s' + interval '40 ms', 40, "
        "(ARRAY['completed','completed','failed'])[n % 3 + 1], n / 5, 'job-' || (n / 5) "
        "FROM generate_series(1, 30000) n; ANALYZE trace_spans"
    )
    some_trace = uuid.UUID(database.sql("SELECT trace_id FROM trace_spans WHERE id = 777"))
    walk_all = traces.ListFilters(last=20, service="router", failed=True, since=timedelta(days=9999))
    walk_sql, names = traces.list_walk_query(walk_all, after_cursor=True)
    first_page_sql, _ = traces.list_walk_query(traces.ListFilters(last=5), after_cursor=False)
    values = {"cursor_at": T0, "cursor_id": 10**6, **vars(walk_all), "limit": 1000}
    queries: dict[str, tuple[str, list[Any], str]] = {
        "trace": (traces.TRACE_ROWS, [[some_trace]], "idx_trace_spans_trace_id"),
        "execution": (traces.TRACES_BY_EXECUTION, [155, 20], "idx_trace_spans_execution_id"),
        "job": (traces.TRACES_BY_JOB, ["job-155", 20], "idx_trace_spans_job_id"),
        "averages": (traces.AVERAGES, [["router", "modal"], ["op-1", "op-2"]],
                     "idx_trace_spans_service_operation"),
        "summaries": (traces.SUMMARIES, [[some_trace]], "idx_trace_spans_trace_id"),
        "walk": (first_page_sql, [1000], "idx_trace_spans_started_at"),
        "walk, filtered": (walk_sql, [values[name] for name in names], "idx_trace_spans_started_at"),
    }  # fmt: skip

    async def plans(connection: Any) -> dict[str, str]:
        found = {}
        for name, (sql, args, _) in queries.items():
            found[name] = "\n".join(line[0] for line in await connection.fetch(f"EXPLAIN {sql}", *args))
        return found

    for name, plan in _fetch(database.dsn, plans).items():
        assert "Seq Scan" not in plan, (name, plan)
        assert queries[name][2] in plan, (name, plan)


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"DATABASE_URL": "mysql://u:SECRETPW@db/beacon"},
        {"DATABASE_URL": "postgresql://u:SECRETPW@db:port/x"},
    ],
    ids=["missing", "not postgres", "bad port"],
)
def test_an_unusable_database_url_exits_2_naming_the_variable(env: dict[str, str]) -> None:
    result = beacon_traces("--last", "3", **env)
    assert result.returncode == 2, result.stderr
    assert "DATABASE_URL" in result.stderr and result.stdout == ""
    assert "SECRETPW" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_postgres_unreachable_exits_1_in_one_line() -> None:
    dsn = f"postgresql://beacon:SECRETPW@127.0.0.1:{free_port()}/beacon"
    for args in (("--last", "3"), ("--trace", str(TRACE))):
        result = beacon_traces(*args, dsn=dsn)
        assert result.returncode == 1
        assert result.stderr.startswith("beacon-otel traces: cannot reach Postgres")
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        assert "SECRETPW" not in result.stderr


def test_not_found_missing_table_and_usage_errors(database: Database, postgres: PostgresServer) -> None:
    insert(database, [MAIN["job"]])
    missing = uuid.uuid4()
    cases = {
        ("--trace", str(missing)): (1, f"no trace {missing} in trace_spans"),
        ("--execution", "99"): (1, "no trace_spans row with execution_id 99"),
        ("--job", "nope"): (1, "no trace_spans row with job_id 'nope'"),
        ("--trace", str(TRACE), "--status", "failed"): (2, "do not apply to one trace"),
        ("--trace", "not-a-uuid"): (2, "expected a trace id (a UUID, 32 hex digits, or 0x-prefixed hex)"),
        ("--trace", "0x" + "f" * 33): (2, "expected a trace id"),
        ("--since", "yesterday"): (2, "expected an age"),
        ("--width", "20"): (2, "at least"),
    }
    for args, (status, message) in cases.items():
        result = beacon_traces(*args, dsn=database.dsn)
        assert (result.returncode, result.stdout) == (status, ""), (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    bare = f"bare_{uuid.uuid4().hex[:12]}"
    postgres.psql(f"CREATE DATABASE {bare}")
    try:
        result = beacon_traces("--last", "3", dsn=database.dsn.rsplit("/", 1)[0] + f"/{bare}")
        assert result.returncode == 1
        assert result.stderr == "beacon-otel traces: no table trace_spans in this database (DATABASE_URL)\n"
    finally:
        postgres.psql(f"DROP DATABASE IF EXISTS {bare} WITH (FORCE)")


# --- the rules on plain rows (no database) ---------------------------------------------------------------


def _span(row_id: int, data: dict[str, Any]) -> Span:
    return Span(row_id=row_id, **{key: value for key, value in data.items()})


def test_cycles_self_parents_and_unfinished_spans_are_all_shown() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    spans = [
        _span(1, row(a, b, "router", "a", 0, 100)),  # a and b point at each other
        _span(2, row(b, a, "router", "b", 10, 100)),
        _span(3, row(c, c, "router", "c", 20, 100)),  # its own parent
        _span(4, row(d, None, "backend", "d", 30, None, "started")),  # still running, no timing
    ]
    trace = build_trace(TRACE, spans, {})
    assert [span.operation for span in trace.roots] == ["a", "c", "d"]
    assert [child.operation for child in trace.roots[0].children] == ["b"]
    lines = render_trace(trace, 60)
    assert lines[2:7] == [
        "span          duration status        |0              120 ms|",
        "router a        100 ms completed     |==================   |",
        "  router b      100 ms completed     | =================== |",
        "router c        100 ms completed     |   ==================|",
        "backend d            ? started       |     .               |",
    ]


def test_gap_and_slow_thresholds_are_strict() -> None:
    """Exactly 5 s of gap, or exactly 3x the average, is not an anomaly; a millisecond more is."""
    first, second, third = (uuid.uuid4() for _ in range(3))
    spans = [
        _span(1, row(first, None, "runner", "step", 0, 1000)),
        _span(2, row(second, None, "runner", "step", 6000, 1000)),  # 5 s after the first ended
        _span(3, row(third, None, "runner", "step", 12_001, 1000)),  # 5.001 s after the second ended
    ]
    from beacon_otel.tools.waterfall import Average

    trace = build_trace(TRACE, spans, {("runner", "step"): Average(1000 / 3, 3)})
    assert [(anomaly.kind, anomaly.span.span_id) for anomaly in trace.anomalies] == [("gap", second)]
    trace = build_trace(TRACE, spans, {("runner", "step"): Average(999.999 / 3, 3)})
    assert {anomaly.kind for anomaly in trace.anomalies} == {"slow", "gap"}


# --- how errors read ------------------------------------------------------------------------------------


def _failed(error_type: str | None, error_message: str | None, url: str | None = None) -> Span:
    data = row(
        uuid.uuid4(),
        None,
        "router",
        "GET",
        0,
        5,
        "failed",
        error_type=error_type,
        error_message=error_message,
    )
    return Span(row_id=1, url=url, **data)


@pytest.mark.parametrize(
    ("error_type", "error_message", "url", "expected"),
    [
        ("http_500", "http_500: HTTP 500", None, "http_500: HTTP 500"),  # the provider spans' status text
        ("http_500", "http_500", None, "http_500"),
        ("http_500", "server error", None, "http_500: server error"),
        ("500", None, "http://p:9001/p/modal-eu/health", "HTTP 500 (http://p:9001/p/modal-eu/health)"),
        ("503", None, None, "HTTP 503"),
        ("ConnectError", "All connection attempts failed", "http://p/x",
         "ConnectError: All connection attempts failed (http://p/x)"),
        ("5000", None, None, "5000"),
        (None, None, None, "(no error recorded)"),
    ],
)  # fmt: skip
def test_error_lines_say_each_thing_once(
    error_type: str | None, error_message: str | None, url: str | None, expected: str
) -> None:
    assert error_text(_failed(error_type, error_message, url)) == expected


def test_a_failed_client_row_shows_the_status_and_the_url_it_called(database: Database) -> None:
    """Rows as the sink writes them: the URL comes from metadata, which other writers may fill
    with anything (a string, a list) or nothing."""
    parent, client, health = otel(0x10), otel(0x11), otel(0x12)
    metadata = {
        parent: None,
        client: json.dumps(
            {"attributes": {"url.full": "http://127.0.0.1:9001/p/modal-eu/health", "server.address": "x"}}
        ),
        health: json.dumps({"attributes": {"server.address": "127.0.0.1"}}),
    }
    rows = [
        row(parent, None, "router", "GET /providers", 0, 50),
        row(client, parent, "router", "GET", 5, 20, "failed", error_type="500"),
        row(health, parent, "router", "provider.health_check", 5, 30, "failed", error_type="http_500",
            error_message="http_500: HTTP 500"),
    ]  # fmt: skip
    insert(database, rows)
    for span_id, value in metadata.items():
        database.sql(
            f"UPDATE trace_spans SET metadata = {_literal(value)}::jsonb WHERE span_id = '{span_id}'"
        )
    other = row(uuid.uuid4(), None, "runner", "odd", 0, 5, "failed", trace_id=uuid.uuid4(), error_type="x")
    insert(database, [other])
    database.sql(
        f"UPDATE trace_spans SET metadata = '\"just text\"'::jsonb WHERE span_id = '{other['span_id']}'"
    )

    result = beacon_traces("--trace", str(TRACE), "--width", "100", dsn=database.dsn)
    assert result.returncode == 0, result.stderr
    errors = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("!")]
    assert errors == [
        "! HTTP 500 (http://127.0.0.1:9001/p/modal-eu/health)",
        "! http_500: HTTP 500 (127.0.0.1)",
    ]
    odd = beacon_traces("--trace", str(other["trace_id"]), "--json", dsn=database.dsn)
    assert odd.returncode == 0, odd.stderr
    assert json.loads(odd.stdout)["traces"][0]["spans"][0]["url"] is None
