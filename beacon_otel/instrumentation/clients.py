"""Client spans for httpx and asyncpg, through the upstream instrumentors.

They are applied when the library is first imported, so a process that never imports httpx
or asyncpg never pays for loading their instrumentation.
"""

from __future__ import annotations

from types import ModuleType

from beacon_otel.settings import Settings


def instrument_httpx(module: ModuleType, settings: Settings) -> None:
    """Client spans for every httpx request, with trace context (and X-Trace-Id) propagated."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def instrument_asyncpg(module: ModuleType, settings: Settings) -> None:
    """Database spans for asyncpg: statement text only, never the query parameters."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor(capture_parameters=False)
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
