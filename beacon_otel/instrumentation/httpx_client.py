"""Client spans and request durations for httpx, one per request its transports send.

Why not opentelemetry-instrumentation-httpx: it adds two to three times this one's CPU per
request sent (docs/benchmarks.md, "In process"), more than the server span, the log lines and
their export together: a span context manager, old and new semantic conventions side by side,
the URL parsed again, two histograms through the SDK. This one wraps the same two methods
(``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``, so each
redirect and retry is a span of its own), starts a
:class:`~beacon_otel.instrumentation.direct_span.DirectSpan` with the stable HTTP semantic
conventions, injects the trace context (``traceparent``, and ``X-Trace-Id`` with the legacy
bridge) into the request's headers, and counts ``http.client.request.duration``. The standard
variables of the upstream instrumentation (``OTEL_PYTHON_HTTPX_EXCLUDED_URLS``, captured client
headers, ``http/dup``, all methods) apply as
:mod:`~beacon_otel.instrumentation.http_conventions` describes: an excluded request goes out
without span, metrics or trace headers, as upstream.

``BEACON_OTEL_HTTPX_UPSTREAM=true`` uses the upstream instrumentation instead.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.http import redact_url

from beacon_otel.instrumentation.direct_span import DirectSpanStarter
from beacon_otel.instrumentation.http_conventions import (
    NO_CONVENTIONS,
    HttpConventions,
    httpx_headers,
    normalise_method,
    old_client_attributes,
    span_name_method,
)
from beacon_otel.instrumentation.http_metrics import ClientMetrics, client_metrics
from beacon_otel.instrumentation.http_series import CLIENT_SCOPE_NAME, ClientSeriesKey

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATCHED = "_beacon_otel_patched"


class _Call:
    """One request in flight: its span, the context it is current in, and what its duration
    is counted under."""

    __slots__ = ("address", "conventions", "method", "port", "span", "started", "token")

    def __init__(
        self,
        starter: DirectSpanStarter,
        request: Any,
        metrics: ClientMetrics | None,
        conventions: HttpConventions,
    ) -> None:
        url = request.url
        method = normalise_method(request.method, conventions.capture_all_methods)
        attributes: dict[str, Any] = {"http.request.method": method}
        if method != request.method:
            attributes["http.request.method_original"] = request.method
        host = url.host
        port = url.port or _DEFAULT_PORTS.get(url.scheme)
        full = str(url)
        # Credentials never reach the span (REDACTED:REDACTED@, as the semantic conventions ask),
        # nor do signed query parameters; the span encoder scrubs tokens on top of that.
        attributes["url.full"] = redact_url(full) if url.userinfo or url.query else full
        attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
        if conventions.old_names:
            attributes.update(old_client_attributes(method, url, attributes["url.full"]))
        if conventions.request_headers is not None:  # before the trace headers, as upstream
            attributes.update(conventions.request_headers.attributes(httpx_headers(request.headers)))
        self.conventions = conventions
        self.method = method
        self.address = host
        self.port = port
        self.started = time.perf_counter()
        self.span = starter.start(span_name_method(method), None, attributes)
        self.token = context.attach(trace.set_span_in_context(self.span))
        with contextlib.suppress(Exception):  # a broken propagator must not fail the request
            propagate.inject(request.headers)
        if metrics is not None:
            metrics.client_request_started(method, host, port)

    def finish(self, response: Any, error: BaseException | None, metrics: ClientMetrics | None) -> None:
        context.detach(self.token)
        span = self.span
        status = 0
        error_type: str | None = None
        if error is not None:
            error_type = type(error).__qualname__
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"))
            span.set_attribute("error.type", error_type)
        else:
            status = response.status_code
            end_attributes: dict[str, Any] = {"http.response.status_code": status}
            version = response.extensions.get("http_version")
            if isinstance(version, bytes) and version.startswith(b"HTTP/"):
                end_attributes["network.protocol.version"] = version[5:].decode("ascii", "replace")
            conventions = self.conventions
            if conventions.old_names:
                end_attributes["http.status_code"] = status
                if "network.protocol.version" in end_attributes:
                    end_attributes["http.flavor"] = end_attributes["network.protocol.version"]
            if conventions.response_headers is not None:
                with contextlib.suppress(Exception):  # odd headers must not cost the response
                    end_attributes.update(
                        conventions.response_headers.attributes(httpx_headers(response.headers))
                    )
            if status >= 400:
                error_type = str(status)
                span.set_status(Status(StatusCode.ERROR))
            if error_type:
                end_attributes["error.type"] = error_type
            span.set_attributes(end_attributes)
        span.end()
        if metrics is not None:
            key: ClientSeriesKey = (self.method, self.address, self.port, status, error_type)
            metrics.client_request_ended(time.perf_counter() - self.started, key, span)


def _begin(
    starter: DirectSpanStarter, request: Any, metrics: ClientMetrics | None, conventions: HttpConventions
) -> _Call | None:
    """The call's telemetry, or None when it is suppressed, excluded or cannot be set up (then
    the request goes out untraced rather than failing)."""
    if not is_http_instrumentation_enabled():
        return None
    try:
        if conventions.excluded is not None and conventions.excluded.url_disabled(str(request.url)):
            return None
        return _Call(starter, request, metrics, conventions)
    except Exception:
        return None


def _wrap_sync(
    original: Callable[[Any, Any], Any],
    starter: DirectSpanStarter,
    metrics: ClientMetrics | None,
    conventions: HttpConventions,
) -> Callable[[Any, Any], Any]:
    @functools.wraps(original)
    def handle_request(self: Any, request: Any) -> Any:
        call = _begin(starter, request, metrics, conventions)
        if call is None:
            return original(self, request)
        try:
            response = original(self, request)
        except BaseException as error:
            call.finish(None, error, metrics)
            raise
        call.finish(response, None, metrics)
        return response

    setattr(handle_request, _PATCHED, True)
    return handle_request


def _wrap_async(
    original: Callable[[Any, Any], Awaitable[Any]],
    starter: DirectSpanStarter,
    metrics: ClientMetrics | None,
    conventions: HttpConventions,
) -> Callable[[Any, Any], Awaitable[Any]]:
    @functools.wraps(original)
    async def handle_async_request(self: Any, request: Any) -> Any:
        call = _begin(starter, request, metrics, conventions)
        if call is None:
            return await original(self, request)
        try:
            response = await original(self, request)
        except BaseException as error:
            call.finish(None, error, metrics)
            raise
        call.finish(response, None, metrics)
        return response

    setattr(handle_async_request, _PATCHED, True)
    return handle_async_request


def instrument_transports(
    module: ModuleType, version: str, conventions: HttpConventions = NO_CONVENTIONS
) -> None:
    """Wrap httpx's default transports (post-import hook for ``httpx``), following the standard
    variables' ``conventions``."""
    starter = DirectSpanStarter(trace.get_tracer(CLIENT_SCOPE_NAME, version), SpanKind.CLIENT)
    metrics = client_metrics(version)
    sync_cls = module.HTTPTransport
    sync_original = sync_cls.__dict__.get("handle_request")
    if sync_original is not None and not getattr(sync_original, _PATCHED, False):
        sync_cls.handle_request = _wrap_sync(sync_original, starter, metrics, conventions)
    async_cls = module.AsyncHTTPTransport
    async_original = async_cls.__dict__.get("handle_async_request")
    if async_original is not None and not getattr(async_original, _PATCHED, False):
        async_cls.handle_async_request = _wrap_async(async_original, starter, metrics, conventions)


def is_instrumented(module: ModuleType) -> bool:
    """Whether ``module`` (httpx) has beacon-otel's transport wrappers."""
    method = getattr(getattr(module, "AsyncHTTPTransport", None), "handle_async_request", None)
    return bool(getattr(method, _PATCHED, False))
