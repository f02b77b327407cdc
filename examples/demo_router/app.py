"""FastAPI app imitating Project Beacon's hybrid router.

It uses plain stdlib logging, httpx and asyncpg the way the real service does,
so that beacon-otel can be tested against realistic, telemetry-unaware code.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .router import HybridRouter, InferenceRequest, Provider, providers_from_env

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger("demo_router")

DATABASE_URL_ENV = "DATABASE_URL"

CREATE_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS demo_requests ("
    "id BIGSERIAL PRIMARY KEY, model TEXT, provider TEXT, success BOOLEAN, "
    "created_at TIMESTAMPTZ DEFAULT now())"
)
INSERT_SQL = "INSERT INTO demo_requests (model, provider, success) VALUES ($1, $2, $3)"
COUNT_SQL = "SELECT count(*) FROM demo_requests"


class InferenceBody(BaseModel):
    """JSON body of POST /inference."""

    model: str
    prompt: str
    temperature: float = 0.7
    max_tokens: int = 128
    region_preference: str | None = None


async def _create_pool(dsn: str) -> Any:
    """Open the asyncpg pool and make sure the demo table exists."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute(CREATE_TABLE_SQL)
    return pool


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Share one httpx client and (optionally) one DB pool for the app's lifetime."""
    client = httpx.AsyncClient()
    token = os.environ.get("DEMO_PROVIDER_TOKEN")
    router = HybridRouter(
        providers_from_env(), client=client, api_key=os.environ.get("DEMO_PROVIDER_API_KEY"), token=token
    )
    if token:
        # Careless, and common: a credential in a log line.
        logger.info(f"Provider credentials loaded, token={token}")
    pool = None
    try:
        await router.health_check_providers()
        healthy = len(router.healthy_providers())
        logger.info(f"Router started with {healthy}/{len(router.providers)} healthy providers")
        dsn = os.environ.get(DATABASE_URL_ENV)
        if dsn:
            logger.info(f"Connecting to database {dsn}")
            pool = await _create_pool(dsn)
        app.state.client = client
        app.state.router = router
        app.state.pool = pool
        yield
    finally:
        if pool is not None:
            await pool.close()
        await client.aclose()


app = FastAPI(title="demo hybrid router", lifespan=lifespan)
if os.environ.get("DEMO_LEGACY_TRACER") == "1":  # benchmarks only: the legacy per-span tracer
    from .legacy_tracer import LegacyTracerMiddleware

    app.add_middleware(LegacyTracerMiddleware)


def _router(request: Request) -> HybridRouter:
    """The router created by the lifespan."""
    router: HybridRouter = request.app.state.router
    return router


def _provider_info(provider: Provider) -> dict[str, Any]:
    """Public view of a provider."""
    return {
        "name": provider.name,
        "type": provider.type,
        "region": provider.region,
        "endpoint": provider.endpoint,
        "healthy": provider.healthy,
    }


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness only; kept trivial so it can serve as a benchmark baseline."""
    return {"status": "ok"}


@app.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready when the cached health state has at least one healthy provider."""
    healthy = len(_router(request).healthy_providers())
    status_code = 200 if healthy else 503
    return JSONResponse({"ready": healthy > 0, "healthy_providers": healthy}, status_code)


@app.get("/providers")
async def providers(request: Request) -> list[dict[str, Any]]:
    """Re-check every provider, then report their state."""
    router = _router(request)
    await router.health_check_providers()
    return [_provider_info(p) for p in router.providers]


@app.post("/inference")
async def inference(body: InferenceBody, request: Request) -> dict[str, Any]:
    """Route one inference; failures are reported in the body with status 200."""
    result = await _router(request).run_inference(
        InferenceRequest(
            model=body.model,
            prompt=body.prompt,
            temperature=body.temperature,
            max_tokens=body.max_tokens,
            region_preference=body.region_preference,
        )
    )
    provider = result["provider_used"]
    pool = request.app.state.pool
    if pool is not None:
        await _record_request(pool, body.model, provider, result["success"])
    logger.info(
        f"Inference for {body.model} via {provider}: success={result['success']}",
        extra={"model": body.model, "provider": provider},
    )
    return result


async def _record_request(pool: Any, model: str, provider: str | None, success: bool) -> None:
    """Store one request row; a DB outage must not fail the inference itself."""
    try:
        await pool.execute(INSERT_SQL, model, provider, success)
    except Exception:
        logger.exception("Failed to record request in demo_requests")


@app.get("/db")
async def db(request: Request) -> JSONResponse:
    """Count stored requests; 503 when no DATABASE_URL was configured."""
    pool = request.app.state.pool
    if pool is None:
        return JSONResponse({"error": "no database"}, status_code=503)
    rows = await pool.fetchval(COUNT_SQL)
    return JSONResponse({"rows": int(rows)})


async def _probe(client: httpx.AsyncClient, provider: Provider, timeout: float) -> int | str:
    """Status code of one health endpoint, or the exception class name."""
    try:
        response = await client.get(f"{provider.endpoint}/health", timeout=timeout)
    except Exception as e:
        return type(e).__name__
    return response.status_code


@app.get("/fanout")
async def fanout(request: Request) -> dict[str, dict[str, int | str]]:
    """Hit every provider's health endpoint concurrently without touching health state."""
    router = _router(request)
    client: httpx.AsyncClient = request.app.state.client
    results = await asyncio.gather(*(_probe(client, p, router.timeout) for p in router.providers))
    return {"statuses": {p.name: r for p, r in zip(router.providers, results, strict=True)}}


@app.get("/boom")
async def boom() -> JSONResponse:
    """Log an exception with traceback, as handlers in the real app do."""
    try:
        raise RuntimeError("kaboom")
    except RuntimeError:
        logger.exception("boom failed")
    return JSONResponse({"error": "boom failed"}, status_code=500)
