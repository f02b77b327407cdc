"""An HTTP transport for the upstream OTLP/HTTP exporters whose exports are bounded as a whole.

The upstream transport hands its timeout to ``requests``, where it bounds each socket operation,
not the exchange: a backend that trickles its answer a byte at a time holds an export (and the
app's exit) forever, and a backend answering 200 with a 400 MB body makes the app read all of
it into memory. This transport keeps the upstream session (certificates, client certificates,
the credential-provider session, proxies from the environment) and adds two bounds:

* **one deadline per request**: connecting, sending and reading the whole answer must end
  within the exporter's timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``), or within what is left of the
  shutdown deadline once the process is exiting. Each socket read and write is given only the
  time left, through the socket classes below;
* **a response body cap** (:data:`MAX_RESPONSE_BYTES`): an OTLP answer is a small protobuf, so
  more is a protocol error. Reading stops there, the connection is dropped, and the answer's
  status still decides success (the backend did accept the data).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from beacon_otel import _upstream
from beacon_otel._upstream import BaseHTTPResult, BaseHTTPTransport
from beacon_otel.export import deadline as shutdown

MAX_RESPONSE_BYTES = 64 * 1024
_DEFAULT_TIMEOUT = 10.0

_request_deadline = threading.local()


class ExportDeadlineExceeded(TimeoutError):
    """The whole export (connect, send, answer) did not finish in time."""


class ResponseTooLarge(Exception):
    """The backend's answer is larger than an OTLP response can reasonably be."""


def _arm(sock: socket.socket) -> None:
    """Give the next socket operation only the time left before the request's deadline."""
    deadline: float | None = getattr(_request_deadline, "at", None)
    if deadline is None:
        return
    left = shutdown.capped(deadline) - time.monotonic()
    if left <= 0:
        raise ExportDeadlineExceeded("the export did not finish within its timeout")
    sock.settimeout(left)


class _DeadlineSocket(socket.socket):
    __slots__ = ()

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        _arm(self)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        _arm(self)
        return super().recv(bufsize, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _arm(self)  # sendall's timeout covers the whole send
        super().sendall(data, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        _arm(self)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        _arm(self)
        return super().recv(buflen, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _arm(self)
        super().sendall(data, flags)


def adopt(sock: Any) -> None:
    """Make a connected socket obey the request deadline (same object, narrower class)."""
    if type(sock) is socket.socket:
        sock.__class__ = _DeadlineSocket
    elif type(sock) is ssl.SSLSocket:
        sock.__class__ = _DeadlineSSLSocket


@dataclass(frozen=True, slots=True)
class BoundedResult(BaseHTTPResult):
    body: bytes = b""
    response_headers: Mapping[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return self.body

    def headers(self) -> Mapping[str, str]:
        return self.response_headers


class BoundedTransport(BaseHTTPTransport):
    """Wraps the upstream requests transport: its session, these bounds."""

    def __init__(self, inner: Any, session: Any, on_oversized: Any = None) -> None:
        self._inner = inner
        self._session = session
        self._on_oversized = on_oversized
        _mount_deadline_adapters(session)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> BaseHTTPResult:
        deadline = shutdown.export_deadline(_DEFAULT_TIMEOUT if timeout is None else timeout)
        left = deadline - time.monotonic()
        if left <= 0:
            return BoundedResult(error=ExportDeadlineExceeded("no time left for the export"))
        _request_deadline.at = deadline
        try:
            response = self._session.request(
                method=method,
                url=url,
                headers=headers,
                data=data,
                timeout=left,
                allow_redirects=False,
                stream=True,
            )
            try:
                body = _read_capped(response)
            except ResponseTooLarge as error:
                response.close()  # the rest is never read: the connection is not reused
                if self._on_oversized is not None:
                    self._on_oversized(url, str(error))
                body = b""
            return BoundedResult(
                status_code=response.status_code,
                reason=response.reason,
                body=body,
                response_headers=response.headers,
            )
        except Exception as error:
            return BoundedResult(error=error)
        finally:
            _request_deadline.at = None

    def is_connection_error(self, exception: Exception | None) -> bool:
        if isinstance(exception, ExportDeadlineExceeded):
            return False  # no time left: not worth the upstream's immediate second attempt
        return bool(self._inner.is_connection_error(exception))

    def close(self) -> None:
        self._inner.close()


def bound_http_exporter(exporter: Any) -> bool:
    """Put a :class:`BoundedTransport` under an upstream OTLP/HTTP exporter, keeping its
    session; False (the exporter left as it is) when its transport is not where it was."""
    return _upstream.replace_http_transport(
        exporter, lambda inner, session: BoundedTransport(inner, session, _report_oversized)
    )


_oversized_reported = False


def _report_oversized(url: str, problem: str) -> None:
    """Once per process: a backend answering this much is broken, not busy."""
    global _oversized_reported
    if _oversized_reported:
        return
    _oversized_reported = True
    from beacon_otel.export.reporting import tell

    tell(
        "beacon-otel: %s answered an export with %s (a protocol error: an OTLP answer is a few bytes); "
        "the rest was not read and the connection was closed. Reported once.",
        url,
        problem,
    )


def _read_capped(response: Any) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_content(16 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ResponseTooLarge(f"the response body is larger than {MAX_RESPONSE_BYTES // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _mount_deadline_adapters(session: Any) -> None:
    """Serve http:// and https:// with connections whose sockets obey the request deadline;
    a session that brought adapters of its own keeps them."""
    from requests.adapters import HTTPAdapter

    for prefix in ("https://", "http://"):
        if type(session.get_adapter(prefix)) is HTTPAdapter:
            session.mount(prefix, _DeadlineAdapter())


def _deadline_pools() -> dict[str, type]:
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Connection(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            adopt(self.sock)

    class _TLSConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            adopt(self.sock)

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Connection

    class _TLSPool(HTTPSConnectionPool):
        ConnectionCls = _TLSConnection

    return {"http": _Pool, "https": _TLSPool}


def _adapter_class() -> type:
    from requests.adapters import HTTPAdapter

    pools = _deadline_pools()

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    return DeadlineAdapter


def _DeadlineAdapter() -> Any:  # built on first use: requests is imported lazily
    global _adapter
    if _adapter is None:
        _adapter = _adapter_class()
    return _adapter()


_adapter: type | None = None
