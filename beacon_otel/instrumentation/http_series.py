"""What one HTTP request-duration series is: the instruments' names, buckets and attributes.

Shared by beacon-otel's own aggregation (:mod:`~beacon_otel.instrumentation.http_aggregation`)
and the SDK fallback (:mod:`~beacon_otel.instrumentation.http_metrics_sdk`), so that both paths
give the same points. The instrumentations identify a series by a small tuple (a
:data:`SeriesKey`), built from values they hold anyway; attributes are made from it once per
series, not once per request.
"""

from __future__ import annotations

from typing import Any

SCOPE_NAME = "beacon_otel.instrumentation.asgi"
CLIENT_SCOPE_NAME = "beacon_otel.instrumentation.httpx"
DURATION_NAME = "http.server.request.duration"
DURATION_DESCRIPTION = "Duration of HTTP server requests."
CLIENT_DURATION_NAME = "http.client.request.duration"
CLIENT_DURATION_DESCRIPTION = "Duration of HTTP client requests."
# Semantic-convention bucket boundaries for both durations (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

# (http.request.method, url.scheme, http.route, http.response.status_code, error.type)
SeriesKey = tuple[str, str, str | None, int, str | None]
# (http.request.method, server.address, server.port, http.response.status_code, error.type)
ClientSeriesKey = tuple[str, str, int | None, int, str | None]


def _with_outcome(attributes: dict[str, Any], status: int, error_type: str | None) -> dict[str, Any]:
    if status:
        attributes["http.response.status_code"] = status
    if error_type:
        attributes["error.type"] = error_type
    return attributes


def series_attributes(key: SeriesKey) -> dict[str, Any]:
    method, scheme, route, status, error_type = key
    attributes: dict[str, Any] = {"http.request.method": method, "url.scheme": scheme}
    if route:
        attributes["http.route"] = route
    return _with_outcome(attributes, status, error_type)


def client_series_attributes(key: ClientSeriesKey) -> dict[str, Any]:
    method, address, port, status, error_type = key
    attributes: dict[str, Any] = {"http.request.method": method, "server.address": address}
    if port:
        attributes["server.port"] = port
    return _with_outcome(attributes, status, error_type)
