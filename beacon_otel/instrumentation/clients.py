"""Client spans for httpx and asyncpg: beacon-otel's own wrappers, or the upstream instrumentors.

They are applied when the library is first imported, so a process that never imports httpx
or asyncpg never pays for loading their instrumentation.
"""

from __future__ import annotations

from types import ModuleType

from beacon_otel.settings import Settings


def instrument_httpx(module: ModuleType, settings: Settings) -> None:
    """Client spans for every httpx request, with trace context (and X-Trace-Id) propagated:
    beacon-otel's own lean transport wrappers, or the upstream instrumentation when asked."""
    if not settings.httpx_upstream:
        from beacon_otel import __version__
        from beacon_otel.instrumentation.http_conventions import client_conventions
        from beacon_otel.instrumentation.httpx_client import instrument_transports

        instrument_transports(module, __version__, client_conventions(settings.http_instrumentation))
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def instrument_asyncpg(module: ModuleType, settings: Settings) -> None:
    """Database spans for asyncpg: statement text only, never the query parameters; beacon-otel's
    own wrappers, or the upstream instrumentation when asked."""
    if not settings.asyncpg_upstream:
        from beacon_otel import __version__
        from beacon_otel.instrumentation.asyncpg_client import instrument_asyncpg as wrap_statements

        wrap_statements(module, __version__)
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
