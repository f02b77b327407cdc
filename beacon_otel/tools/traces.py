"""``beacon-otel traces``: the latest traces, or one trace as a waterfall, from Postgres trace_spans.

Read-only (one read-only, repeatable-read transaction), every value a bind parameter, and every
query shaped to use the table's indexes, because trace_spans holds millions of rows:

- the list walks ``started_at`` backwards (its index) in pages with LIMIT until it has seen N
  traces, then aggregates only those traces by ``trace_id`` (its index);
- one trace is read by ``trace_id``; ``--execution`` / ``--job`` first find their trace ids by
  ``execution_id`` / ``job_id`` (their indexes);
- the averages behind the "3x slower" rule are computed only for the (service, operation) pairs
  present in the trace, one index lookup per pair (LATERAL), never over the whole table.

The tree, the anomaly rules and the rendering live in :mod:`beacon_otel.tools.waterfall`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from beacon_otel.settings import ConfigError, load_database_url
from beacon_otel.tools.waterfall import (
    ERROR_STATUSES,
    MIN_WIDTH,
    Average,
    Span,
    Trace,
    TraceSummary,
    build_trace,
    render_summaries,
    render_trace,
    trace_json,
    worst_status,
)

T = TypeVar("T")

PROG = "beacon-otel traces"
CONNECT_TIMEOUT = 10.0
PAGE_ROWS = 1000
BIGINT_MAX = (1 << 63) - 1
_SINCE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SINCE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

_SPAN_COLUMNS = (
    "id, trace_id, span_id, parent_span_id, service, operation, started_at, completed_at, duration_ms, "
    "status, job_id, execution_id, model_id, region, error_type, error_message, "
    # What an HTTP span called, from the sink's metadata (NULL for rows of another shape).
    "COALESCE(metadata #>> '{attributes,url.full}', metadata #>> '{attributes,server.address}') AS url"
)
# One or more whole traces, by the trace_id index.
TRACE_ROWS = (
    f"SELECT {_SPAN_COLUMNS} FROM trace_spans WHERE trace_id = ANY($1::uuid[]) ORDER BY started_at, id"
)
# The traces an execution or a job took part in, newest first, by their own indexes.
TRACES_BY_EXECUTION = (
    "SELECT trace_id FROM trace_spans WHERE execution_id = $1 "
    "GROUP BY trace_id ORDER BY min(started_at) DESC, trace_id LIMIT $2"
)
TRACES_BY_JOB = (
    "SELECT trace_id FROM trace_spans WHERE job_id = $1 "
    "GROUP BY trace_id ORDER BY min(started_at) DESC, trace_id LIMIT $2"
)
# Mean duration per (service, operation), only for the pairs given: each LATERAL subquery is an
# index lookup on (service, operation). float8 before avg: the same figure Python computes.
AVERAGES = """
SELECT pair.service, pair.operation, history.mean_ms, history.samples
FROM unnest($1::text[], $2::text[]) AS pair(service, operation)
CROSS JOIN LATERAL (
    SELECT avg(t.duration_ms::float8) AS mean_ms, count(t.duration_ms) AS samples
    FROM trace_spans t WHERE t.service = pair.service AND t.operation = pair.operation
) AS history
"""
# The list's summaries, for the trace ids found by the walk below.
SUMMARIES = """
SELECT trace_id, min(started_at) AS started_at,
       max(COALESCE(completed_at, started_at + duration_ms * interval '1 millisecond', started_at))
           AS ended_at,
       count(*) AS span_count,
       array_agg(DISTINCT service ORDER BY service) AS services,
       array_agg(DISTINCT status ORDER BY status) AS statuses
FROM trace_spans WHERE trace_id = ANY($1::uuid[]) GROUP BY trace_id
"""


class Failure(Exception):
    """A failure already worded for the operator, with its exit status: 1 for "not found" and
    Postgres failures, 2 for configuration problems."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class NotFound(Failure):
    """Nothing matched ``--trace``/``--execution``/``--job``; ``output`` is what stdout still gets."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 1)
        self.output = ""


@dataclass(frozen=True)
class ListFilters:
    """What the list keeps; each filter is a fixed SQL fragment with a bind parameter."""

    last: int
    service: str | None = None
    failed: bool = False
    since: timedelta | None = None


# --- arguments ------------------------------------------------------------------------------------


def parse_since(text: str) -> timedelta:
    """``30m``, ``1h``, ``2d``: how far back the list looks (s, m, h, d, w)."""
    match = _SINCE.match(text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"expected an age such as 30m, 1h, 2d (s/m/h/d/w), not {text!r}")
    return timedelta(**{_SINCE_UNITS[match.group(2)]: int(match.group(1))})


_HEX_TRACE_ID = re.compile(r"0[xX]([0-9a-fA-F]{1,32})")


def parse_trace_id(text: str) -> uuid.UUID:
    """A trace id as each tool prints it: a UUID (the table, the runner), 32 hex digits (log
    lines, Jaeger) or ``0x``-prefixed hex (the SDK's console exporter). The 16 bytes are the
    same in all three, so any of them finds the same rows."""
    value = text.strip()
    hexadecimal = _HEX_TRACE_ID.fullmatch(value)
    if hexadecimal:
        return uuid.UUID(int=int(hexadecimal.group(1), 16))
    try:
        return uuid.UUID(value)  # also takes 32 hex digits without dashes
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a trace id (a UUID, 32 hex digits, or 0x-prefixed hex), not {text!r}"
        ) from None


def _execution_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= BIGINT_MAX:
        raise argparse.ArgumentTypeError(f"expected a whole number (execution_id), not {text!r}")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return int(text)


def _width(text: str) -> int:
    if not text.isdigit() or int(text) < MIN_WIDTH:
        raise argparse.ArgumentTypeError(f"expected a width of at least {MIN_WIDTH} columns, not {text!r}")
    return int(text)


def add_parser(subcommands: Any) -> None:
    """Register ``beacon-otel traces``."""
    parser = subcommands.add_parser(
        "traces",
        help="the latest traces, or one trace as a waterfall, from Postgres trace_spans (DATABASE_URL)",
        description=(
            "Without --trace/--execution/--job: the latest traces, one line each. With one of them: "
            "the trace as a waterfall tree, anomalies flagged (S: over 3x the average duration of its "
            "service+operation, G: gap over 5 s before the next span, E: status failed/timeout)."
        ),
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--trace",
        type=parse_trace_id,
        metavar="ID",
        help="show this trace: a UUID, 32 hex digits, or 0x-prefixed hex",
    )
    target.add_argument("--execution", type=_execution_id, metavar="ID", help="traces with this execution_id")
    target.add_argument("--job", metavar="ID", help="traces with this job_id")
    parser.add_argument(
        "--last",
        type=_positive,
        default=20,
        metavar="N",
        help="how many traces: the list, or the newest of --execution/--job (default 20)",
    )
    parser.add_argument("--service", metavar="NAME", help="list: traces with a span of this service")
    parser.add_argument("--status", choices=("failed",), help="list: traces with a span failed or timed out")
    parser.add_argument(
        "--since", type=parse_since, metavar="AGE", help="list: spans started within AGE (1h)"
    )
    parser.add_argument(
        "--width", type=_width, metavar="COLUMNS", help="waterfall width (default: the terminal's)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


# --- the command ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 shown, 1 not found or Postgres failed, 2 configuration or usage problem."""
    try:
        dsn = load_database_url()
    except ConfigError as error:
        for problem in error.problems:
            _complain(problem)
        return 2
    single = args.trace is not None or args.execution is not None or args.job is not None
    if single and (args.service or args.status or args.since):
        _complain("--service, --status and --since filter the list; they do not apply to one trace")
        return 2
    try:
        output = asyncio.run(_single(dsn, args) if single else _list(dsn, args))
    except Failure as failure:
        if isinstance(failure, NotFound):
            _write(failure.output)
        _complain(str(failure))
        return failure.status
    _write(output)
    return 0


async def _single(dsn: str, args: argparse.Namespace) -> str:
    try:
        traces = await _with_connection(dsn, lambda connection: _fetch_traces(connection, args))
    except NotFound as missing:
        # A script reading --json gets a list it can iterate, empty; the exit status still says 1.
        missing.output = json.dumps({"traces": []}, indent=2) + "\n" if args.json else ""
        raise
    if args.json:
        return json.dumps({"traces": [trace_json(trace) for trace in traces]}, indent=2) + "\n"
    width = args.width or max(shutil.get_terminal_size().columns, MIN_WIDTH)
    return "\n\n".join("\n".join(render_trace(trace, width)) for trace in traces) + "\n"


async def _list(dsn: str, args: argparse.Namespace) -> str:
    filters = ListFilters(last=args.last, service=args.service, failed=bool(args.status), since=args.since)
    summaries = await _with_connection(dsn, lambda connection: fetch_summaries(connection, filters))
    if args.json:
        return json.dumps({"traces": [summary.as_json() for summary in summaries]}, indent=2) + "\n"
    if not summaries:
        return "no traces match\n"
    return "\n".join(render_summaries(summaries)) + "\n"


def _complain(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _write(output: str) -> None:
    """Print; a reader that stops early (``| head``) is not an error."""
    try:
        sys.stdout.write(output)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# --- Postgres -----------------------------------------------------------------------------------


async def _with_connection(dsn: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(connection)`` in a read-only snapshot; turn every database failure into one
    line for the operator. Messages never include the DSN: it carries the password."""
    try:
        import asyncpg
    except ImportError:
        raise Failure("needs asyncpg: pip install 'beacon-otel[sink]'", 2) from None
    try:
        connection = await asyncpg.connect(
            dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": PROG}
        )
    except (ValueError, asyncpg.ClientConfigurationError):
        raise Failure(
            "DATABASE_URL is invalid: expected a postgresql://user:password@host/db DSN", 2
        ) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise Failure(f"cannot reach Postgres (DATABASE_URL): {_one_line(error)}", 1) from None
    try:
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            return await work(connection)
    except asyncpg.UndefinedTableError:
        raise Failure("no table trace_spans in this database (DATABASE_URL)", 1) from None
    except asyncpg.PostgresError as error:
        raise Failure(f"Postgres: {_one_line(error)}", 1) from None
    except (OSError, asyncpg.InterfaceError) as error:
        raise Failure(f"lost the connection to Postgres: {_one_line(error)}", 1) from None
    finally:
        await _close(connection)


async def _close(connection: Any) -> None:
    """Close, or abort when the server is already gone: closing must not mask the real error."""
    try:
        await asyncio.wait_for(connection.close(), timeout=2)
    except Exception:
        connection.terminate()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


async def _fetch_traces(connection: Any, args: argparse.Namespace) -> list[Trace]:
    """The trace(s) asked for, oldest first, each with its tree and anomalies."""
    if args.trace is not None:
        trace_ids = [args.trace]
        missing = f"no trace {args.trace} in trace_spans"
    elif args.execution is not None:
        trace_ids = [row[0] for row in await connection.fetch(TRACES_BY_EXECUTION, args.execution, args.last)]
        missing = f"no trace_spans row with execution_id {args.execution}"
    else:
        trace_ids = [row[0] for row in await connection.fetch(TRACES_BY_JOB, args.job, args.last)]
        missing = f"no trace_spans row with job_id {args.job!r}"
    spans = [_span(row) for row in await connection.fetch(TRACE_ROWS, trace_ids)] if trace_ids else []
    if not spans:
        raise NotFound(missing)
    averages = await fetch_averages(connection, {(span.service, span.operation) for span in spans})
    by_trace: dict[uuid.UUID, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    traces = [build_trace(trace_id, rows, averages) for trace_id, rows in by_trace.items()]
    return sorted(traces, key=lambda trace: (trace.started_at, str(trace.trace_id)))


def _span(row: Any) -> Span:
    return Span(
        row_id=row["id"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        service=row["service"],
        operation=row["operation"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        duration_ms=row["duration_ms"],
        status=row["status"],
        job_id=row["job_id"],
        execution_id=row["execution_id"],
        model_id=row["model_id"],
        region=row["region"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        url=row["url"],
    )


async def fetch_averages(connection: Any, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], Average]:
    """Mean duration of each (service, operation) present, over the whole table's history."""
    ordered = sorted(pairs)
    rows = await connection.fetch(AVERAGES, [pair[0] for pair in ordered], [pair[1] for pair in ordered])
    return {
        (row["service"], row["operation"]): Average(float(row["mean_ms"]), row["samples"])
        for row in rows
        if row["samples"]
    }


def list_walk_query(filters: ListFilters, after_cursor: bool) -> tuple[str, list[str]]:
    """One page of the walk down the started_at index, newest first, and the names of its bind
    parameters in order. Only fixed fragments enter the SQL text; values are all parameters.

    The cursor is (started_at, id) of the last row of the previous page, so that rows sharing
    one timestamp are neither skipped nor read twice.
    """
    conditions: list[str] = []
    names: list[str] = []

    def parameter(name: str) -> str:
        names.append(name)
        return f"${len(names)}"

    if after_cursor:
        at, row_id = parameter("cursor_at"), parameter("cursor_id")
        conditions.append(f"started_at <= {at} AND (started_at < {at} OR id < {row_id})")
    if filters.since is not None:
        conditions.append(f"started_at >= now() - {parameter('since')}::interval")
    if filters.service is not None:
        conditions.append(f"service = {parameter('service')}")
    if filters.failed:
        conditions.append("status IN (" + ", ".join(f"'{status}'" for status in ERROR_STATUSES) + ")")
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    sql = (
        f"SELECT id, trace_id, started_at FROM trace_spans {where}"
        f"ORDER BY started_at DESC, id DESC LIMIT {parameter('limit')}"
    )
    return sql, names


async def recent_trace_ids(
    connection: Any, filters: ListFilters, page_rows: int = PAGE_ROWS
) -> list[uuid.UUID]:
    """The trace ids of the newest matching spans, newest first, until ``filters.last`` distinct
    traces are found or the rows run out: a LIMITed index walk, never a scan of the whole table
    (unless the filters match almost nothing: combine --status with --since on a big table)."""
    found: dict[uuid.UUID, None] = {}
    cursor: tuple[Any, int] | None = None
    values = {"since": filters.since, "service": filters.service, "limit": page_rows}
    while len(found) < filters.last:
        sql, names = list_walk_query(filters, after_cursor=cursor is not None)
        if cursor is not None:
            values["cursor_at"], values["cursor_id"] = cursor
        rows = await connection.fetch(sql, *(values[name] for name in names))
        for row in rows:
            found.setdefault(row["trace_id"], None)
            if len(found) == filters.last:
                break
        if len(rows) < page_rows:
            break
        cursor = (rows[-1]["started_at"], rows[-1]["id"])
    return list(found)


async def fetch_summaries(connection: Any, filters: ListFilters) -> list[TraceSummary]:
    """The list: the traces with the newest matching spans, shown newest trace start first."""
    trace_ids = await recent_trace_ids(connection, filters)
    if not trace_ids:
        return []
    rows = await connection.fetch(SUMMARIES, trace_ids)
    summaries = [
        TraceSummary(
            trace_id=row["trace_id"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            span_count=row["span_count"],
            services=tuple(row["services"]),
            status=worst_status(list(row["statuses"])),
        )
        for row in rows
    ]
    return sorted(summaries, key=lambda summary: (summary.started_at, str(summary.trace_id)), reverse=True)
