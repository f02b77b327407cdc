"""HTTP request durations (server and client): what the instrumentations report, and to whom.

The ASGI middleware and the httpx instrumentation report each request to a
:class:`ServerMetrics` or :class:`ClientMetrics`, handing over the request's span with its
duration (for the exemplar). Which one they get is decided here, once per instrumented app or
library: beacon-otel's own aggregation (:mod:`~beacon_otel.instrumentation.http_aggregation`)
when beacon-otel built the global meter provider (the SDK wiring says so with :func:`install`),
the SDK's histograms otherwise (:mod:`~beacon_otel.instrumentation.http_metrics_sdk`), since
only beacon-otel's exporters add the aggregation to their exports
(:mod:`beacon_otel.export.added_metrics`).
"""

from __future__ import annotations

from typing import Protocol

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import Span

from beacon_otel.instrumentation.http_aggregation import FastHttpMetrics
from beacon_otel.instrumentation.http_metrics_sdk import SdkClientMetrics, SdkServerMetrics
from beacon_otel.instrumentation.http_series import CLIENT_SCOPE_NAME, SCOPE_NAME, ClientSeriesKey, SeriesKey

__all__ = [
    "ClientMetrics",
    "ServerMetrics",
    "client_metrics",
    "install",
    "installed_http_metrics",
    "server_metrics",
]


class ServerMetrics(Protocol):
    """What the server-span middleware reports about each request."""

    def request_started(self, method: str, scheme: str) -> None: ...

    def request_ended(self, seconds: float, key: SeriesKey, span: Span | None = None) -> None: ...


class ClientMetrics(Protocol):
    """What the httpx instrumentation reports about each request it sent."""

    def client_request_started(self, method: str, address: str, port: int | None) -> None: ...

    def client_request_ended(
        self, seconds: float, key: ClientSeriesKey, span: Span | None = None
    ) -> None: ...


_installed: tuple[FastHttpMetrics, MeterProvider] | None = None


def install(fast: FastHttpMetrics, meter_provider: MeterProvider) -> None:
    """Make ``fast`` the HTTP metrics of what is instrumented from now on, for as long as
    ``meter_provider`` is the global one (called by :func:`beacon_otel.sdk.install`)."""
    global _installed
    _installed = (fast, meter_provider)


def installed_http_metrics() -> FastHttpMetrics | None:
    """The fast aggregation, when beacon-otel built the global meter provider."""
    if _installed is not None and metrics.get_meter_provider() is _installed[1]:
        return _installed[0]
    return None


def server_metrics(version: str) -> ServerMetrics:
    """The fast aggregation when beacon-otel built the global meter provider, the SDK's
    instruments otherwise."""
    fast = installed_http_metrics()
    return fast if fast is not None else SdkServerMetrics(metrics.get_meter(SCOPE_NAME, version))


def client_metrics(version: str) -> ClientMetrics:
    """Like :func:`server_metrics`, for the httpx instrumentation."""
    fast = installed_http_metrics()
    return fast if fast is not None else SdkClientMetrics(metrics.get_meter(CLIENT_SCOPE_NAME, version))
