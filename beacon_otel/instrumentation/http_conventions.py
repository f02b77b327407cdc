"""The standard HTTP instrumentation variables, applied by beacon-otel's own server and client spans.

The upstream instrumentations read ``OTEL_PYTHON_<LIB>_EXCLUDED_URLS``, the
``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*`` lists, ``OTEL_SEMCONV_STABILITY_OPT_IN`` and
``OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS``. :mod:`beacon_otel.settings` reads the
same variables the same way, and this module applies them with opentelemetry-util-http's own
public matchers (``ExcludeList``, ``SanitizeValue``, ``normalise_*_header_name``), so that each
variable means here what it means upstream. Everything is built once, at start-up; a request pays
for a feature only when its variable is set.

One difference, on purpose: a captured header that carries credentials (``Authorization``,
``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``, API keys: whatever :mod:`beacon_otel.scrubbing`
treats as secret) is always recorded as ``[scrubbed]``, even when a capture pattern asks for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from opentelemetry.util.http import (
    ExcludeList,
    SanitizeValue,
    normalise_request_header_name,
    normalise_response_header_name,
    redact_url,
)

from beacon_otel.scrubbing import REDACTED, Scrubber
from beacon_otel.settings import HttpInstrumentationVariables

# The methods opentelemetry-util-http's sanitize_method keeps (RFC 9110, RFC 5789, QUERY);
# any other is recorded as _OTHER unless OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS is set.
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)
OTHER_METHOD = "_OTHER"

_SCRUBBER = Scrubber()


def normalise_method(method: str, capture_all: bool = False) -> str:
    """The method as ``http.request.method`` records it: upper-cased, ``_OTHER`` when unknown."""
    if method in STANDARD_METHODS:
        return method
    upper = method.upper()
    return upper if capture_all or upper in STANDARD_METHODS else OTHER_METHOD


def span_name_method(method: str) -> str:
    """A span is named ``HTTP`` rather than ``_OTHER`` (semantic conventions)."""
    return "HTTP" if method == OTHER_METHOD else method


def _decode(raw: bytes) -> str:
    """A header name or value, decoded as the upstream ASGI instrumentation decodes it."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def asgi_headers(raw_headers: Iterable[tuple[bytes, bytes]] | None) -> dict[str, list[str]]:
    """ASGI header pairs as name -> values (a repeated header keeps every value)."""
    headers: defaultdict[str, list[str]] = defaultdict(list)
    for name, value in raw_headers or ():
        headers[_decode(name)].append(_decode(value))
    return headers


def httpx_headers(headers: Any) -> dict[str, list[str]]:
    """httpx ``Headers`` as name -> values, comma-separated values split, as the upstream httpx
    instrumentation reads them."""
    return {name.lower(): headers.get_list(name, split_commas=True) for name in headers}


class HeaderCapture:
    """Which headers become ``http.request.header.<name>`` (or ``http.response.header.<name>``)
    attributes, each a list of strings, and whose values are hidden."""

    __slots__ = ("_normalise", "_patterns", "_sanitize")

    def __init__(
        self, patterns: Sequence[str], sanitize: SanitizeValue, normalise: Callable[[str], str]
    ) -> None:
        self._patterns = list(patterns)
        self._sanitize = sanitize
        self._normalise = normalise

    def attributes(self, headers: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
        """The attributes for these headers: names matched in full, case-insensitively; values
        ``[REDACTED]`` for a name the sanitize patterns match, ``[scrubbed]`` for credentials."""
        captured = self._sanitize.sanitize_header_values(headers, self._patterns, self._normalise)
        return {
            key: tuple(REDACTED for _ in values) if _SCRUBBER.is_secret_key(key) else tuple(values)
            for key, values in captured.items()
        }


class HttpConventions:
    """What the standard variables ask of one instrumentation's spans; None: nothing asked."""

    __slots__ = ("capture_all_methods", "excluded", "old_names", "request_headers", "response_headers")

    def __init__(
        self,
        excluded: ExcludeList | None = None,
        request_headers: HeaderCapture | None = None,
        response_headers: HeaderCapture | None = None,
        old_names: bool = False,
        capture_all_methods: bool = False,
    ) -> None:
        self.excluded = excluded
        self.request_headers = request_headers
        self.response_headers = response_headers
        self.old_names = old_names  # http/dup: the old attribute names too
        self.capture_all_methods = capture_all_methods


def _excluded(patterns: tuple[str, ...]) -> ExcludeList | None:
    return ExcludeList(list(patterns)) if patterns else None


def _capture(
    patterns: tuple[str, ...], sanitize: SanitizeValue, normalise: Callable[[str], str]
) -> HeaderCapture | None:
    return HeaderCapture(patterns, sanitize, normalise) if patterns else None


def _conventions(
    variables: HttpInstrumentationVariables,
    excluded: tuple[str, ...],
    request_headers: tuple[str, ...],
    response_headers: tuple[str, ...],
) -> HttpConventions:
    sanitize = SanitizeValue(list(variables.sanitize_fields))
    return HttpConventions(
        excluded=_excluded(excluded),
        request_headers=_capture(request_headers, sanitize, normalise_request_header_name),
        response_headers=_capture(response_headers, sanitize, normalise_response_header_name),
        old_names=variables.duplicate_old_names,
        capture_all_methods=variables.capture_all_methods,
    )


def server_conventions(variables: HttpInstrumentationVariables, library: str) -> HttpConventions:
    """For ``library`` ``fastapi`` or ``starlette``: each has its own excluded-URLs variable."""
    excluded = (
        variables.starlette_excluded_urls if library == "starlette" else variables.fastapi_excluded_urls
    )
    return _conventions(
        variables, excluded, variables.server_request_headers, variables.server_response_headers
    )


def client_conventions(variables: HttpInstrumentationVariables) -> HttpConventions:
    return _conventions(
        variables,
        variables.httpx_excluded_urls,
        variables.client_request_headers,
        variables.client_response_headers,
    )


NO_CONVENTIONS = HttpConventions()


# --- the old attribute names (OTEL_SEMCONV_STABILITY_OPT_IN=http/dup) -------------------------------


def _socket_host(scope: Mapping[str, Any]) -> str:
    """The server's socket address as ``host[:port]``, without port 80 (as upstream writes it)."""
    server = scope.get("server") or ("0.0.0.0", 80)
    return server[0] + (f":{server[1]}" if str(server[1]) != "80" else "")


def server_url(scope: Mapping[str, Any], host: str | None) -> str:
    """``scheme://host[:port]/path``, what the upstream ASGI instrumentation matches excluded URLs
    against: the Host header, else the server's socket address."""
    return f"{scope.get('scheme', 'http')}://{host or _socket_host(scope)}{scope.get('path', '')}"


def old_server_attributes(
    scope: Mapping[str, Any], headers: Mapping[str, str], method: str
) -> dict[str, Any]:
    """The request attributes the upstream ASGI instrumentation records under the old names."""
    server = scope.get("server") or ("0.0.0.0", 80)
    socket_host = _socket_host(scope)
    host = headers.get("host")
    url = server_url(scope, host)
    query = scope.get("query_string")
    if query:
        url += "?" + unquote(query.decode("utf-8", "replace") if isinstance(query, bytes) else query)
    attributes: dict[str, Any] = {
        "http.method": method,
        "http.scheme": scope.get("scheme", "http"),
        "http.host": socket_host,
        "http.url": redact_url(url),
    }
    if server[1]:
        attributes["net.host.port"] = server[1]
    if scope.get("http_version"):
        attributes["http.flavor"] = scope["http_version"]
    if scope.get("path"):
        attributes["http.target"] = scope["path"]
    if host:
        attributes["http.server_name"] = host
    if headers.get("user-agent"):
        attributes["http.user_agent"] = headers["user-agent"]
    client = scope.get("client")
    if client:
        attributes["net.peer.ip"] = client[0]
        attributes["net.peer.port"] = client[1]
    return attributes


def old_client_attributes(method: str, url: Any, full_url: str) -> dict[str, Any]:
    """The request attributes the upstream httpx instrumentation records under the old names
    (with http/dup); ``full_url`` is ``url.full`` as recorded, credentials redacted."""
    attributes: dict[str, Any] = {"http.method": method, "http.url": full_url}
    if url.host:
        attributes["http.host"] = url.host
    if url.port:
        attributes["net.peer.port"] = url.port
    return attributes
