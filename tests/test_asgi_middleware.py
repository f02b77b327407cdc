"""The server-span middleware, in process: requests whose headers are odd still reach the app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from beacon_otel.instrumentation.asgi import ServerSpanMiddleware


async def _ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def traced() -> Iterator[tuple[ServerSpanMiddleware, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield ServerSpanMiddleware(_ok_app, provider.get_tracer("test")), exporter
    provider.shutdown()


def _call(app: ServerSpanMiddleware, host: bytes) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "scheme": "http",
        "http_version": "1.1",
        "headers": [(b"host", host)],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5555),
    }
    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.parametrize(
    ("host", "address", "port"),
    [
        (b"example.com:8080", "example.com", 8080),
        (b"[::1]:9000", "::1", 9000),
        (b"example.com", "example.com", None),
        (b"example.com:\xb2", "example.com", None),  # latin-1 superscript two: isdigit(), not a port
        (b"[::1]:\xb9", "::1", None),
    ],
)
def test_the_host_header_gives_address_and_port_and_never_fails_the_request(
    traced: tuple[ServerSpanMiddleware, InMemorySpanExporter], host: bytes, address: str, port: int | None
) -> None:
    app, exporter = traced
    sent = _call(app, host)
    assert sent[0]["status"] == 200
    (span,) = exporter.get_finished_spans()
    attributes = span.attributes or {}
    assert attributes["server.address"] == address
    assert attributes.get("server.port") == port
