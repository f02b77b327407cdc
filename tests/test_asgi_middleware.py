"""The server-span middleware, in process: requests whose headers are odd still reach the app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from beacon_otel.instrumentation.asgi import Message, Receive, Scope, Send, ServerSpanMiddleware
from beacon_otel.instrumentation.http_conventions import HttpConventions, server_conventions
from beacon_otel.settings import load_settings


async def _ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def traced() -> Iterator[tuple[ServerSpanMiddleware, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield ServerSpanMiddleware(_ok_app, provider.get_tracer("test")), exporter
    provider.shutdown()


def _call(
    app: ServerSpanMiddleware, host: bytes, path: str = "/", headers: list[tuple[bytes, bytes]] | None = None
) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "scheme": "http",
        "http_version": "1.1",
        "headers": [(b"host", host), *(headers or [])],
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


# -- the upstream instrumentation's variables, in process ------------------------------------------


def _conventions(**variables: str) -> HttpConventions:
    return server_conventions(load_settings(variables).http_instrumentation, "fastapi")


async def _app_with_headers(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"sid=COOKIE-SECRET"),
        (b"x-odd", b"\xff\xfe"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def _request(app: ServerSpanMiddleware, path: str, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    return _call(app, b"example.com", path, headers)


def test_an_excluded_url_reaches_the_app_without_a_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    conventions = _conventions(OTEL_PYTHON_EXCLUDED_URLS=r"example\.com/health$")
    app = ServerSpanMiddleware(_app_with_headers, provider.get_tracer("test"), None, conventions)
    assert _request(app, "/health", [])[0]["status"] == 200
    assert exporter.get_finished_spans() == ()
    _request(app, "/health/deep", [])  # searched in scheme://host/path: the $ anchors the end
    assert [dict(span.attributes or {})["url.path"] for span in exporter.get_finished_spans()] == [
        "/health/deep"
    ]


def test_captured_credentials_never_enter_the_span_and_odd_bytes_do_not_fail_the_request() -> None:
    """No encoder here (an in-memory exporter stands for any other processor): what the span
    holds is what a processor of the app's own would see."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    conventions = _conventions(
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST=".*",
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE=".*",
    )
    app = ServerSpanMiddleware(_app_with_headers, provider.get_tracer("test"), None, conventions)
    request_headers = [(b"Proxy-Authorization", b"Basic U0VDUkVU"), (b"x-latin", b"caf\xe9")]
    assert _request(app, "/", request_headers)[0]["status"] == 200
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["http.request.header.proxy_authorization"] == ("[scrubbed]",)
    assert attributes["http.request.header.x_latin"] == ("café",), "not UTF-8: read as Latin-1"
    assert attributes["http.request.header.host"] == ("example.com",)
    assert attributes["http.response.header.set_cookie"] == ("[scrubbed]",)
    assert attributes["http.response.header.content_type"] == ("text/plain",)
    assert "COOKIE-SECRET" not in repr(attributes) and "U0VDUkVU" not in repr(attributes)
