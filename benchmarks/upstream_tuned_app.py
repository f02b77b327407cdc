"""The demo router with the upstream FastAPI instrumentation tuned as a careful user would tune it.

``benchmarks.http_overhead``'s "opentelemetry-instrument (tuned)" variant serves this app:
``opentelemetry-instrument uvicorn benchmarks.upstream_tuned_app:app`` with
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=fastapi``, so that the auto-instrumentation sets up the
providers, exporters and the httpx and asyncpg instrumentations as usual but leaves FastAPI to
this module. Here the app is instrumented with ``exclude_spans=["send", "receive"]``: one server
span per request instead of the server span plus an ``http send`` span per response message.
opentelemetry-instrumentation-fastapi 0.66b1 reads no environment variable for that option; its
documented way is this keyword of ``FastAPIInstrumentor.instrument_app`` (or of ``instrument()``).

The upstream documentation's other option for a lighter load, excluding URLs such as the health
check (``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS``), is not used: the other variants trace every
request, and this benchmark measures ``GET /health`` itself.
"""

from __future__ import annotations

from demo_router.app import app
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

FastAPIInstrumentor.instrument_app(app, exclude_spans=["send", "receive"])

__all__ = ["app"]
