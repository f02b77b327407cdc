"""A lean ASGI middleware that gives each HTTP request one server span (and a duration metric).

Why not the upstream ASGI middleware: on a trivial FastAPI endpoint it adds several times the
endpoint's own cost, and about six times this one's, even with its send/receive spans excluded
(docs/benchmarks.md, "In process"): three spans by default, attributes set one by one under a
lock, old and new semantic conventions side by side, a second route resolution.
This one does the same job for the attributes a user needs, in one pass: W3C and legacy
``X-Trace-Id`` extraction, stable HTTP semantic conventions, span named ``METHOD /route/{template}``
once routing has happened, status from the response, exceptions recorded. The standard
variables of the upstream instrumentation (excluded URLs, captured headers, ``http/dup``, all
methods) apply as :mod:`~beacon_otel.instrumentation.http_conventions` describes; an excluded
request gets neither span nor metrics, and costs one pattern search.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Status, StatusCode, Tracer

from beacon_otel.instrumentation import lifespan
from beacon_otel.instrumentation.direct_span import DirectSpanStarter
from beacon_otel.instrumentation.http_conventions import (
    NO_CONVENTIONS,
    HttpConventions,
    asgi_headers,
    normalise_method,
    old_server_attributes,
    server_url,
    span_name_method,
)
from beacon_otel.instrumentation.http_metrics import ServerMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def route_template(scope: Scope) -> str | None:
    """The matched route's template (``/providers/{name}``), set by Starlette's router."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return scope.get("root_path", "") + path if scope.get("root_path") else path
    return None


def _headers(scope: Scope) -> dict[str, str]:
    # One decode pass; every propagator then does plain dict look-ups.
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers") or ()}


def _server_address(headers: dict[str, str], scope: Scope) -> tuple[str | None, int | None]:
    """Host and port the client addressed (Host header), else the socket's."""
    host = headers.get("host")
    if host:
        if host.startswith("["):  # [ipv6]:port
            name, _, rest = host[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            name, _, port = host.partition(":")
        return name, int(port) if port.isascii() and port.isdigit() else None
    server = scope.get("server")
    if server:
        return server[0], server[1]
    return None, None


class ServerSpanMiddleware:
    """Wraps an ASGI app; only ``http`` scopes are traced, lifespan and websockets pass through."""

    def __init__(
        self,
        app: ASGIApp,
        tracer: Tracer,
        metrics: ServerMetrics | None = None,
        conventions: HttpConventions = NO_CONVENTIONS,
    ) -> None:
        self.app = app
        self.tracer = tracer
        self._start_span = DirectSpanStarter(tracer).start
        self.metrics = metrics
        self.conventions = conventions
        self._excluded = conventions.excluded  # None: no URL is excluded, nothing to match
        # Header names the global propagators read (traceparent, baggage, x-trace-id, ...).
        self._trace_headers = frozenset(propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and lifespan.has_hooks():
                await lifespan.run_lifespan(self.app, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        headers = _headers(scope)
        if self._excluded is not None and self._excluded.url_disabled(server_url(scope, headers.get("host"))):
            await self.app(scope, receive, send)  # as upstream: no span, no metrics, no context
            return
        conventions = self.conventions
        sent_method = scope.get("method", "GET")
        method = normalise_method(sent_method, conventions.capture_all_methods)
        # Most requests carry no trace headers: skip the propagators' work for them.
        parent = propagate.extract(headers) if not self._trace_headers.isdisjoint(headers) else None
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
            "url.path": scope.get("path", "/"),
        }
        if method != sent_method:
            attributes["http.request.method_original"] = sent_method
        host, port = _server_address(headers, scope)
        if host:
            attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        http_version = scope.get("http_version")
        if http_version:
            attributes["network.protocol.version"] = http_version
        user_agent = headers.get("user-agent")
        if user_agent:
            attributes["user_agent.original"] = user_agent
        if conventions.old_names:
            attributes.update(old_server_attributes(scope, headers, method))

        span = self._start_span(span_name_method(method), parent, attributes)
        if conventions.request_headers is not None:
            _record_headers(span, conventions.request_headers.attributes, scope.get("headers"))
        response_headers = conventions.response_headers
        scheme = attributes["url.scheme"]
        if self.metrics is not None:
            self.metrics.request_started(method, scheme)
        token = context.attach(trace.set_span_in_context(span, parent))
        status_code = 0

        async def send_with_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                if response_headers is not None:
                    _record_headers(span, response_headers.attributes, message.get("headers"))
            await send(message)

        error_type: str | None = None
        try:
            await self.app(scope, receive, send_with_status)
        except BaseException as error:
            error_type = type(error).__qualname__
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"))
            if not status_code:
                status_code = 500
            raise
        finally:
            context.detach(token)
            route = route_template(scope)
            end_attributes: dict[str, Any] = {}
            if route:
                end_attributes["http.route"] = route
                span.update_name(f"{span_name_method(method)} {route}")
            if status_code:
                end_attributes["http.response.status_code"] = status_code
                if conventions.old_names:
                    end_attributes["http.status_code"] = status_code
                if status_code >= 500 and error_type is None:
                    error_type = str(status_code)
                    span.set_status(Status(StatusCode.ERROR))
            if error_type:
                end_attributes["error.type"] = error_type
            span.set_attributes(end_attributes)
            span.end()
            if self.metrics is not None:
                self.metrics.request_ended(
                    time.perf_counter() - started, (method, scheme, route, status_code, error_type), span
                )


def _record_headers(span: Any, capture: Callable[[dict[str, list[str]]], dict[str, Any]], raw: Any) -> None:
    """Captured headers become attributes; a header the app sent oddly must not fail its request."""
    with contextlib.suppress(Exception):  # telemetry never breaks the app
        span.set_attributes(capture(asgi_headers(raw)))
