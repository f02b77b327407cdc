"""The router's legacy home-made tracer, as a baseline for the DB route (``DEMO_LEGACY_TRACER=1``).

Per request span it does what the legacy tracer does: INSERT a ``trace_spans`` row with status
``started`` before the handler runs, then, once the response has been sent, UPDATE that row by
``span_id`` (status, completed_at, duration_ms). On the legacy table there is no index on
span_id, so every UPDATE scans the table. It uses the app's asyncpg pool (``DATABASE_URL``).
Benchmarks only: nothing else about the app changes.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

logger = logging.getLogger("demo_router.legacy_tracer")

INSERT_SQL = """
INSERT INTO trace_spans (trace_id, span_id, parent_span_id, service, operation, started_at, status, metadata)
VALUES ($1, $2, NULL, 'router', $3, $4, 'started', $5)
"""
UPDATE_SQL = (
    "UPDATE trace_spans SET status = $2, completed_at = $3, duration_ms = $4, error_message = $5 "
    "WHERE span_id = $1"
)

Scope = dict[str, Any]


class LegacyTracerMiddleware:
    """Pure ASGI middleware: one INSERT and one UPDATE per HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        pool = getattr(scope["app"].state, "pool", None) if scope["type"] == "http" else None
        if pool is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        try:
            trace_id = uuid.UUID(headers.get(b"x-trace-id", b"").decode())
        except ValueError:
            trace_id = uuid.uuid4()
        span_id = uuid.uuid4()
        operation = f"{scope['method']} {scope['path']}"[:100]
        started = datetime.now(UTC)
        clock = time.perf_counter()
        metadata = json.dumps({"method": scope["method"], "path": scope["path"]})
        await pool.execute(INSERT_SQL, trace_id, span_id, operation, started, metadata)
        status_code = 500

        async def send_wrapper(message: Scope) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        error: str | None = None
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as e:
            error = repr(e)[:1000]
            raise
        finally:
            elapsed = time.perf_counter() - clock
            status = "completed" if error is None and status_code < 500 else "failed"
            try:
                await pool.execute(
                    UPDATE_SQL,
                    span_id,
                    status,
                    started + timedelta(seconds=elapsed),
                    int(elapsed * 1000),
                    error,
                )
            except Exception:
                logger.exception("legacy tracer: UPDATE of span %s failed", span_id)
