"""The asyncpg client instrumentation: the spans real statements against a real Postgres produce.

``instrument_asyncpg`` wraps asyncpg's classes in place and takes its tracer from
``trace.get_tracer`` when it is applied. So that the rest of the suite (which uses asyncpg, and
never sets the global tracer provider in this process) is left alone, the module fixture builds
its own SDK ``TracerProvider`` whose only processor is beacon-otel's ``EncodedBatchSpanProcessor``
with an exporter that keeps each payload (raw and decoded), points ``trace.get_tracer`` at it
while ``instrument_asyncpg`` runs, and puts asyncpg's own methods back afterwards.

Each test runs its statements with ``asyncio.run``, flushes the processor, and asserts on the
decoded OTLP spans: one CLIENT span per statement (connection, pool, cursor and prepared
statement methods), named after the operation, with the stable database attributes, the current
span as parent, errors recorded as their type and SQLSTATE only, and no query parameter (nor
Postgres message quoting one) anywhere in the encoded bytes. Also: suppression, a span that
cannot be built, instrumenting twice, and ``operation_name`` on its own.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from beacon_otel.export.reporting import ExportReporter
from beacon_otel.export.span_queue import EncodedBatchSpanProcessor
from beacon_otel.instrumentation import asyncpg_client
from beacon_otel.instrumentation.asyncpg_client import (
    SCOPE_NAME,
    instrument_asyncpg,
    is_instrumented,
    operation_name,
)
from beacon_otel.settings import BatchSettings
from beacon_otel.stack.postgres import PostgresServer
from tests.support.otlp import RecordingPayloadExporter

SECRET = "param-secret-91f2"
UNIQUE_SECRET = "secret-value-3c1"
CLIENT = PbSpan.SpanKind.SPAN_KIND_CLIENT


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass
class Pipeline:
    provider: TracerProvider
    processor: EncodedBatchSpanProcessor
    exporter: RecordingPayloadExporter
    tracer: trace.Tracer
    dsn: str
    port: int

    def reset(self) -> None:
        assert self.processor.force_flush(5000)
        self.exporter.payloads.clear()

    def payload(self) -> bytes:
        """Everything exported since the test started, as raw bytes."""
        assert self.processor.force_flush(5000)
        return b"".join(self.exporter.payloads)

    def spans(self) -> list[PbSpan]:
        """Every span exported since the test started (after checking their scope)."""
        assert self.processor.force_flush(5000)
        found = []
        for _, scope_spans, span in self.exporter.exported():
            if span.kind == CLIENT:
                assert (scope_spans.scope.name, scope_spans.scope.version) == (SCOPE_NAME, "test")
            found.append(span)
        return found

    def client_spans(self, query: str | None = None) -> list[PbSpan]:
        """The CLIENT spans, only those of ``query`` when given (a pool's reset query is left out)."""
        spans = [span for span in self.spans() if span.kind == CLIENT]
        if query is not None:
            spans = [span for span in spans if attributes(span).get("db.query.text") == query]
        return spans

    def only_span(self, query: str) -> PbSpan:
        spans = self.client_spans(query)
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]


def _wrapped_methods() -> dict[tuple[type, str], Any]:
    """asyncpg's own methods that ``instrument_asyncpg`` replaces, to put back afterwards."""
    originals: dict[tuple[type, str], Any] = {}
    for submodule, class_name, methods in asyncpg_client._TARGETS:
        cls = getattr(importlib.import_module(f"asyncpg.{submodule}"), class_name, None)
        if cls is None:
            continue
        for method in methods:
            if method in cls.__dict__:
                originals[cls, method] = cls.__dict__[method]
    return originals


@pytest.fixture(scope="module")
def pipeline(postgres: PostgresServer) -> Iterator[Pipeline]:
    exporter = RecordingPayloadExporter()
    processor = EncodedBatchSpanProcessor(
        exporter,
        BatchSettings(max_queue_size=1000, schedule_delay_ms=60_000, max_export_batch_size=500),
        ExportReporter(interval=60),
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "asyncpg-client-test"}))
    provider.add_span_processor(processor)
    originals = _wrapped_methods()
    assert not is_instrumented(asyncpg), "asyncpg was already instrumented in this process"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            trace, "get_tracer", lambda name, version=None, *a, **k: provider.get_tracer(name, version)
        )
        instrument_asyncpg(asyncpg, "test")
    try:
        yield Pipeline(
            provider,
            processor,
            exporter,
            provider.get_tracer("asyncpg-client-test.app"),
            postgres.dsn,
            postgres.port,
        )
    finally:
        for (cls, method), original in originals.items():
            setattr(cls, method, original)
        provider.shutdown()


@pytest.fixture
def telemetry(pipeline: Pipeline) -> Pipeline:
    pipeline.reset()
    return pipeline


def run(telemetry: Pipeline, body: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    """``body(connection)`` on a fresh connection, in a fresh event loop."""

    async def main() -> Any:
        connection = await asyncpg.connect(telemetry.dsn)
        try:
            return await body(connection)
        finally:
            await connection.close()

    return asyncio.run(main())


# -- reading spans ----------------------------------------------------------------------------------


def attributes(span: PbSpan) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}


def status(span: PbSpan) -> tuple[str, str]:
    return PbStatus.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"), span.status.message


def expected_attributes(telemetry: Pipeline, query: str, operation: str | None) -> dict[str, Any]:
    expected = {
        "db.system.name": "postgresql",
        "db.namespace": "postgres",
        "db.query.text": query,
        "server.address": "127.0.0.1",
        "server.port": telemetry.port,
    }
    if operation is not None:
        expected["db.operation.name"] = operation
    return expected


def assert_ok(telemetry: Pipeline, span: PbSpan, query: str, operation: str) -> None:
    assert span.name == operation
    assert attributes(span) == expected_attributes(telemetry, query, operation)
    assert status(span) == ("UNSET", "")
    assert list(span.events) == []


def assert_no_secret(telemetry: Pipeline, *secrets: str) -> None:
    payload = telemetry.payload()
    assert payload, "nothing was exported"
    for secret in secrets:
        assert secret.encode() not in payload


# -- 1. connection methods ----------------------------------------------------------------------------

CREATE = "CREATE TEMPORARY TABLE items (id text PRIMARY KEY, n int)"
INSERT = "INSERT INTO items (id, n) VALUES ($1, $2)"
SELECT_ONE = "SELECT id, n FROM items WHERE id = $1"
SELECT_ALL = "SELECT id, n FROM items WHERE id <> $1 ORDER BY n"
SELECT_N = "SELECT n FROM items WHERE id = $1"
COUNT = "SELECT count(*) FROM items"


def test_each_connection_method_gives_one_client_span_with_the_stable_attributes(
    telemetry: Pipeline,
) -> None:
    async def body(con: asyncpg.Connection) -> list[Any]:
        await con.execute(CREATE)
        await con.executemany(INSERT, [(SECRET, 1), ("b", 2)])
        return [
            await con.fetch(SELECT_ALL, SECRET),
            await con.fetchval(SELECT_N, SECRET),
            (await con.fetchrow(SELECT_ONE, SECRET))["n"],
            await con.fetchmany(SELECT_N, [(SECRET,), ("b",)]),
        ]

    rows, value, n, many = run(telemetry, body)
    assert ([r["id"] for r in rows], value, n, [r["n"] for r in many]) == (["b"], 1, 1, [1, 2])
    spans = telemetry.client_spans()
    assert [span.name for span in spans] == ["CREATE", "INSERT", "SELECT", "SELECT", "SELECT", "SELECT"]
    for span, query in zip(spans, [CREATE, INSERT, SELECT_ALL, SELECT_N, SELECT_ONE, SELECT_N], strict=True):
        assert_ok(telemetry, span, query, span.name)
        assert span.parent_span_id == b""
        assert span.end_time_unix_nano >= span.start_time_unix_nano > 0
    assert len({span.trace_id for span in spans}) == len(spans), "each statement is a root of its own"
    assert_no_secret(telemetry, SECRET)


def test_a_statement_passed_by_keyword_is_read_too(telemetry: Pipeline) -> None:
    async def body(con: asyncpg.Connection) -> Any:
        await con.execute(query=CREATE)
        await con.executemany(command=INSERT, args=[(SECRET, 3)])
        return await con.fetchval(query=COUNT, timeout=5)

    assert run(telemetry, body) == 1
    spans = telemetry.client_spans()
    assert [span.name for span in spans] == ["CREATE", "INSERT", "SELECT"]
    for span, query in zip(spans, [CREATE, INSERT, COUNT], strict=True):
        assert_ok(telemetry, span, query, span.name)
    assert_no_secret(telemetry, SECRET)


def test_the_statement_span_is_a_child_of_the_current_span(telemetry: Pipeline) -> None:
    async def body(con: asyncpg.Connection) -> trace.SpanContext:
        with telemetry.tracer.start_as_current_span("handler") as parent:
            await con.fetchval("SELECT 1")
            await con.execute("SELECT 2")
            assert trace.get_current_span() is parent
            return parent.get_span_context()

    parent = run(telemetry, body)
    spans = telemetry.client_spans()
    assert [span.name for span in spans] == ["SELECT", "SELECT"]
    for span in spans:
        assert span.trace_id == parent.trace_id.to_bytes(16, "big")
        assert span.parent_span_id == parent.span_id.to_bytes(8, "big")
        assert span.span_id != parent.span_id.to_bytes(8, "big")
    assert spans[0].span_id != spans[1].span_id


def test_a_leading_comment_is_skipped_for_the_operation_but_kept_in_the_text(telemetry: Pipeline) -> None:
    query = "/* app=router */ SELECT 1"
    assert run(telemetry, lambda con: con.fetchval(query)) == 1
    assert_ok(telemetry, telemetry.only_span(query), query, "SELECT")


# -- 2. the pool ---------------------------------------------------------------------------------------


def test_pool_methods_and_acquired_connections_give_spans(telemetry: Pipeline) -> None:
    async def main() -> list[Any]:
        async with asyncpg.create_pool(telemetry.dsn, min_size=1, max_size=2) as pool:
            fetched = await pool.fetch("SELECT $1::text AS v", SECRET)
            status = await pool.execute("SELECT 41")
            async with pool.acquire() as con:
                value = await con.fetchval("SELECT $1::int + 1", 41)
            return [fetched[0]["v"], status, value]

    assert asyncio.run(main()) == [SECRET, "SELECT 1", 42]
    for query in ("SELECT $1::text AS v", "SELECT 41", "SELECT $1::int + 1"):
        assert_ok(telemetry, telemetry.only_span(query), query, "SELECT")
    assert_no_secret(telemetry, SECRET)


# -- 3. cursors ----------------------------------------------------------------------------------------

SERIES = "SELECT g FROM generate_series(1, $1::int) AS g WHERE $2::text <> ''"


def count_cursor_fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the cursor's round trips that fetch rows, in order (counted, not changed)."""
    calls: list[str] = []
    for name in ("_bind_exec", "_exec"):
        original = getattr(asyncpg.cursor.BaseCursor, name)

        def counted(self: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(asyncpg.cursor.BaseCursor, name, counted)
    return calls


def test_a_cursor_iterator_ends_without_an_error(telemetry: Pipeline) -> None:
    async def body(con: asyncpg.Connection) -> list[int]:
        async with con.transaction():
            return [row["g"] async for row in con.cursor(SERIES, 9, SECRET, prefetch=3)]

    assert run(telemetry, body) == list(range(1, 10))
    spans = telemetry.client_spans(SERIES)
    assert spans, "the cursor's statements gave no span"
    for span in spans:
        assert_ok(telemetry, span, SERIES, "SELECT")
        assert "error.type" not in attributes(span)
    assert_no_secret(telemetry, SECRET)


def test_a_cursor_iterator_gives_a_span_per_batch_not_per_row(
    telemetry: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """9 rows, 3 at a time: three batches of rows and a last fetch that finds none, four round
    trips to the server. The six ``__anext__`` calls served from the prefetch buffer send nothing,
    and should give no span ("one per statement sent")."""
    fetches = count_cursor_fetches(monkeypatch)

    async def body(con: asyncpg.Connection) -> int:
        async with con.transaction():
            return len([row async for row in con.cursor(SERIES, 9, SECRET, prefetch=3)])

    assert run(telemetry, body) == 9
    assert fetches == ["_bind_exec", "_exec", "_exec", "_exec"]
    spans = telemetry.client_spans(SERIES)
    assert len(spans) == len(fetches), f"{len(spans)} spans for {len(fetches)} fetches of 9 rows"


def test_cursor_fetch_forward_and_fetchrow_give_a_span_each(telemetry: Pipeline) -> None:
    async def body(con: asyncpg.Connection) -> list[Any]:
        async with con.transaction():
            cur = await con.cursor(SERIES, 10, SECRET)
            first = [row["g"] for row in await cur.fetch(2)]
            moved = await cur.forward(1)
            row = await cur.fetchrow()
            return [first, moved, row["g"]]

    assert run(telemetry, body) == [[1, 2], 1, 4]
    spans = telemetry.client_spans(SERIES)
    assert len(spans) == 3
    for span in spans:
        assert_ok(telemetry, span, SERIES, "SELECT")
    assert_no_secret(telemetry, SECRET)


# -- 4. prepared statements ----------------------------------------------------------------------------


def test_prepared_statement_methods_give_a_span_each(telemetry: Pipeline) -> None:
    async def body(con: asyncpg.Connection) -> list[Any]:
        await con.execute(CREATE)
        insert = await con.prepare(INSERT)
        await insert.executemany([(SECRET, 1), ("b", 2), ("c", 3)])
        select = await con.prepare(SELECT_ALL)
        by_id = await con.prepare(SELECT_N)
        return [
            [row["id"] for row in await select.fetch(SECRET)],
            await by_id.fetchval(SECRET),
            (await select.fetchrow(SECRET))["id"],
            [row["n"] for row in await by_id.fetchmany([(SECRET,), ("c",)])],
        ]

    assert run(telemetry, body) == [["b", "c"], 1, "b", [1, 3]]
    [insert] = telemetry.client_spans(INSERT)
    assert_ok(telemetry, insert, INSERT, "INSERT")
    selects = telemetry.client_spans(SELECT_ALL)
    assert len(selects) == 2
    by_ids = telemetry.client_spans(SELECT_N)
    assert len(by_ids) == 2
    for span in selects:
        assert_ok(telemetry, span, SELECT_ALL, "SELECT")
    for span in by_ids:
        assert_ok(telemetry, span, SELECT_N, "SELECT")
    assert len(telemetry.client_spans()) == 6, "con.prepare itself runs no statement of the app's"
    assert_no_secret(telemetry, SECRET)


# -- 5. failures ---------------------------------------------------------------------------------------


def test_a_missing_table_propagates_and_is_recorded_as_type_and_sqlstate(telemetry: Pipeline) -> None:
    query = "SELECT * FROM no_such_table WHERE id = $1"

    async def body(con: asyncpg.Connection) -> BaseException:
        with pytest.raises(asyncpg.UndefinedTableError) as caught:
            await con.fetch(query, SECRET)
        return caught.value

    error = run(telemetry, body)
    assert type(error) is asyncpg.UndefinedTableError
    assert "does not exist" in str(error)
    span = telemetry.only_span(query)
    assert span.name == "SELECT"
    assert attributes(span) == {
        **expected_attributes(telemetry, query, "SELECT"),
        "error.type": "UndefinedTableError",
        "db.response.status_code": "42P01",
    }
    assert status(span) == ("ERROR", "UndefinedTableError")
    assert list(span.events) == [], "no exception event: its message would be Postgres's"
    assert_no_secret(telemetry, SECRET, "does not exist")


def test_a_unique_violation_leaves_the_duplicated_value_out_of_the_payload(telemetry: Pipeline) -> None:
    async def body(con: asyncpg.Connection) -> BaseException:
        await con.execute(CREATE)
        await con.execute(INSERT, UNIQUE_SECRET, 1)
        with pytest.raises(asyncpg.UniqueViolationError) as caught:
            await con.execute(INSERT, UNIQUE_SECRET, 2)
        return caught.value

    error = run(telemetry, body)
    assert UNIQUE_SECRET in f"{error} {error.detail}"  # Postgres quotes it...
    first, failed = telemetry.client_spans(INSERT)
    assert status(first) == ("UNSET", "")
    assert status(failed) == ("ERROR", "UniqueViolationError")
    assert attributes(failed)["error.type"] == "UniqueViolationError"
    assert attributes(failed)["db.response.status_code"] == "23505"
    assert_no_secret(telemetry, UNIQUE_SECRET, "already exists")  # ...the payload does not


def test_a_span_that_cannot_be_built_leaves_the_query_running_untraced(
    telemetry: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(connection: Any) -> dict[str, Any]:
        raise RuntimeError("telemetry is broken")

    monkeypatch.setattr(asyncpg_client, "_connection_attributes", broken)
    assert run(telemetry, lambda con: con.fetchval("SELECT 7")) == 7
    assert telemetry.client_spans() == []


# -- 6. suppression and instrumenting twice ------------------------------------------------------------


def test_suppressed_instrumentation_gives_no_span(telemetry: Pipeline) -> None:
    async def body(con: asyncpg.Connection) -> list[Any]:
        with suppress_instrumentation():
            suppressed = [await con.fetchval("SELECT 'suppressed'"), await con.execute("SELECT 1")]
        return [*suppressed, await con.fetchval("SELECT 'after'")]

    assert run(telemetry, body) == ["suppressed", "SELECT 1", "after"]
    [span] = telemetry.client_spans()
    assert attributes(span)["db.query.text"] == "SELECT 'after'"


def test_instrumenting_again_still_gives_one_span_per_statement(
    telemetry: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = telemetry.provider
    monkeypatch.setattr(trace, "get_tracer", lambda name, version=None, *a, **k: provider.get_tracer(name))
    before = asyncpg.Connection.fetchval
    instrument_asyncpg(asyncpg, "again")
    assert asyncpg.Connection.fetchval is before, "wrapped twice"
    assert is_instrumented(asyncpg)
    assert run(telemetry, lambda con: con.fetchval("SELECT 'once'")) == "once"
    [span] = telemetry.client_spans()
    assert attributes(span)["db.query.text"] == "SELECT 'once'"


def test_is_instrumented_tells_wrapped_asyncpg_from_plain() -> None:
    class Plain:
        class Connection:
            async def fetch(self) -> None:
                pass

    assert is_instrumented(Plain) is False  # type: ignore[arg-type]


# -- 7. operation_name ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT 1", "SELECT"),
        ("  select * from t", "SELECT"),
        ("insert into t values (1)", "INSERT"),
        ("\n\tWITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
        ("/* app=router */ SELECT 1", "SELECT"),
        ("/* a */ /* b */\n-- c\nupdate t set x = 1", "UPDATE"),
        ("-- only a comment\nDELETE FROM t", "DELETE"),
        ("/**/BEGIN", "BEGIN"),
        ("/* outer /* inner */ still comment */ SELECT 1", "SELECT"),
        ("/*/ SELECT 1 */ DELETE FROM t", "DELETE"),
        ("/*/ SELECT 1", None),
        ("", None),
        ("   ", None),
        ("/* never closed SELECT 1", None),
        ("-- no newline SELECT 1", None),
        ("(SELECT 1)", None),
        ("1", None),
        ("$1", None),
    ],
)
def test_operation_name(query: str, expected: str | None) -> None:
    assert operation_name(query) == expected


def test_methods_another_instrumentation_wrapped_are_left_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """An app that applied the upstream instrumentation itself (wrapt wrappers) gets one span per
    statement, not one from each."""
    import sys
    import types

    import wrapt

    async def fetch(self: object, query: str) -> str:
        return query

    def passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    connection_module = types.ModuleType("fakepg.connection")
    connection_module.Connection = type(  # type: ignore[attr-defined]
        "Connection", (), {"fetch": fetch, "execute": wrapt.FunctionWrapper(fetch, passthrough)}
    )
    package = types.ModuleType("fakepg")
    monkeypatch.setitem(sys.modules, "fakepg", package)
    monkeypatch.setitem(sys.modules, "fakepg.connection", connection_module)
    for name in ("cursor", "prepared_stmt"):
        monkeypatch.setitem(sys.modules, f"fakepg.{name}", types.ModuleType(f"fakepg.{name}"))

    instrument_asyncpg(package, "test")
    methods = connection_module.Connection.__dict__  # type: ignore[attr-defined]
    assert getattr(methods["fetch"], asyncpg_client._PATCHED, False), "a plain method is wrapped"
    assert isinstance(methods["execute"], wrapt.FunctionWrapper), "the other wrapper is left alone"
    assert not getattr(methods["execute"], asyncpg_client._PATCHED, False)
