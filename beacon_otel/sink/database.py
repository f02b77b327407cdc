"""The sink's side of Postgres: the migration, and batched idempotent writes.

A batch is COPYed into a per-connection temporary table, then moved with one
``INSERT ... SELECT ... ON CONFLICT (span_id) DO NOTHING``, in one transaction: a Collector that
retries a batch the sink already committed adds no row. That needs a unique index on span_id,
which ``beacon-otel sink migrate`` builds (concurrently, so the table stays writable).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg

from beacon_otel.sink.mapping import COLUMNS

logger = logging.getLogger("beacon_otel.sink")

UNIQUE_INDEX = "trace_spans_span_id_key"
_STAGING = "beacon_sink_staging"
_COLUMN_LIST = ", ".join(COLUMNS)

# The table as the project's migration 0011 defines it, for fresh databases only.
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS trace_spans (
    id BIGSERIAL PRIMARY KEY,
    trace_id UUID NOT NULL,
    span_id UUID NOT NULL,
    parent_span_id UUID,
    service VARCHAR(50) NOT NULL,
    operation VARCHAR(100) NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    duration_ms INTEGER,
    status VARCHAR(20) NOT NULL,
    job_id VARCHAR(255),
    execution_id BIGINT,
    model_id VARCHAR(100),
    region VARCHAR(50),
    metadata JSONB,
    error_message TEXT,
    error_type VARCHAR(100),
    created_at TIMESTAMPTZ DEFAULT NOW()
)
"""
TABLE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_trace_spans_trace_id ON trace_spans (trace_id)",
    "CREATE INDEX IF NOT EXISTS idx_trace_spans_job_id ON trace_spans (job_id)",
    "CREATE INDEX IF NOT EXISTS idx_trace_spans_execution_id ON trace_spans (execution_id)",
    "CREATE INDEX IF NOT EXISTS idx_trace_spans_started_at ON trace_spans (started_at)",
    "CREATE INDEX IF NOT EXISTS idx_trace_spans_service_operation ON trace_spans (service, operation)",
    "CREATE INDEX IF NOT EXISTS idx_trace_spans_created_at ON trace_spans (created_at)",
)
_STAGING_TABLE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (
    trace_id UUID, span_id UUID, parent_span_id UUID, service VARCHAR(50), operation VARCHAR(100),
    started_at TIMESTAMPTZ, completed_at TIMESTAMPTZ, duration_ms INTEGER, status VARCHAR(20),
    job_id VARCHAR(255), execution_id BIGINT, model_id VARCHAR(100), region VARCHAR(50),
    metadata JSONB, error_message TEXT, error_type VARCHAR(100)
) ON COMMIT DELETE ROWS
"""
_INDEX_VALID = (
    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1"
)
_MOVE = (
    f"INSERT INTO trace_spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGING} "
    "ON CONFLICT (span_id) DO NOTHING"
)
_CLASHES = (
    f"SELECT count(*) FROM {_STAGING} s JOIN trace_spans t ON t.span_id = s.span_id "
    "WHERE t.trace_id <> s.trace_id"
)


class MigrationError(Exception):
    """The table cannot be made ready; the message says why and what to do."""


async def migrate(dsn: str) -> list[str]:
    """Create the table if absent and the unique span_id index; returns what was done."""
    done = []
    connection = await asyncpg.connect(dsn)
    try:
        exists = await connection.fetchval("SELECT to_regclass('trace_spans') IS NOT NULL")
        if not exists:
            await connection.execute(CREATE_TABLE)
            for statement in TABLE_INDEXES:
                await connection.execute(statement)
            done.append("created table trace_spans and its indexes")
        valid = await connection.fetchval(_INDEX_VALID, UNIQUE_INDEX)
        if valid is False:  # left behind by an interrupted concurrent build
            await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {UNIQUE_INDEX}")
            done.append(f"dropped the invalid index {UNIQUE_INDEX}")
        if not valid:
            try:
                await connection.execute(
                    f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {UNIQUE_INDEX} ON trace_spans (span_id)"
                )
            except asyncpg.UniqueViolationError as error:
                await connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {UNIQUE_INDEX}")
                raise MigrationError(
                    "trace_spans holds rows with the same span_id, so the unique index that makes sink "
                    f"writes idempotent cannot be built ({error.detail or error}). Find them with: SELECT "
                    "span_id, count(*) FROM trace_spans GROUP BY span_id HAVING count(*) > 1"
                ) from None
            done.append(f"created the unique index {UNIQUE_INDEX} on trace_spans (span_id)")
        return done or ["nothing to do: trace_spans and its unique span_id index exist"]
    finally:
        await connection.close()


async def has_unique_index(connection: Any) -> bool:
    valid = await connection.fetchval(_INDEX_VALID, UNIQUE_INDEX)
    return bool(valid)


async def _prepare_connection(connection: Any) -> None:
    await connection.execute(_STAGING_TABLE)


async def create_pool(dsn: str, size: int, timeout: float) -> Any:
    """A pool that connects lazily: the sink starts, and answers 503, while Postgres is down.
    ``timeout`` bounds connecting and every statement, so a frozen Postgres is a prompt error."""
    return await asyncpg.create_pool(
        dsn, min_size=0, max_size=size, init=_prepare_connection, timeout=timeout, command_timeout=timeout
    )


class Written(NamedTuple):
    new: int  # rows added
    clashes: int  # rows not added because their span_id belongs to another trace already


async def write_rows(pool: Any, rows: Sequence[tuple[Any, ...]]) -> Written:
    """Commit the rows. A row whose span_id is already stored is not added: a retry of the same
    span (same trace) is the idempotence the unique index is for, but the same span_id in
    another trace is a sender's bug, counted in ``clashes`` so that it is reported, not lost
    silently."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.copy_records_to_table(_STAGING, records=rows, columns=COLUMNS)
        status = await connection.execute(_MOVE)
        new = int(status.rsplit(" ", 1)[-1])
        # Only a batch that lost rows to the unique index can hold a clash: skip the join otherwise.
        clashes = await connection.fetchval(_CLASHES) if new < len(rows) else 0
    return Written(new, int(clashes))
