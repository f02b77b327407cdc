"""Connection-level limits uvicorn does not enforce: a cap on open connections, a deadline for
the request line and headers, and a bound on their size.

uvicorn closes a kept-alive connection that stays idle (``timeout_keep_alive``) but never one
that is silent from the start or stops halfway through its headers, and its httptools parser
buffers a header line of any length. A sender that never authenticates could hold every file
descriptor, or the sink's memory, that way. The guard below is uvicorn's own httptools protocol
with those three limits added. uvicorn does not document its protocol classes as API: the base
comes through :mod:`beacon_otel._upstream`, and ``tests/test_upstream_contract.py`` checks the
callbacks overridden here and that no name added here shadows one of uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from beacon_otel._upstream import HttpToolsProtocol

# After refusing a request, keep reading (and discarding) for this long before closing: closing
# with unread input makes the kernel send a reset, which can destroy the answer in flight.
_LINGER_SECONDS = 2.0

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class ConnectionLimits(NamedTuple):
    max_connections: int
    max_header_bytes: int
    header_timeout: float


class _OpenConnections:
    """Shared by every connection of one server."""

    def __init__(self) -> None:
        self.count = 0


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol class with ``limits`` enforced, for ``uvicorn.Config(http=...)``."""
    open_connections = _OpenConnections()

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._counted = False
            self._awaiting_headers = True
            self._header_bytes = 0
            self._header_deadline: asyncio.TimerHandle | None = None
            self._discarding = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            open_connections.count += 1
            self._counted = True
            if open_connections.count > limits.max_connections:
                self.transport.close()
                return
            self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._counted:
                open_connections.count -= 1
                self._counted = False
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._discarding:
                return
            if self._awaiting_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if (
                self._awaiting_headers
                and self._header_bytes > limits.max_header_bytes
                and not self.transport.is_closing()
            ):
                self._refuse(431, f"request line and headers over the {limits.max_header_bytes}-byte limit")

        # httptools parser callbacks
        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_deadline is None:
                self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._awaiting_headers = False
            self._header_bytes = 0
            self._disarm_header_deadline()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers = True  # what follows is the next request's headers

        def _arm_header_deadline(self) -> None:
            self._header_deadline = self.loop.call_later(limits.header_timeout, self._headers_too_slow)

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if not self._awaiting_headers or self.transport.is_closing():
                return
            if self._header_bytes:
                self._refuse(408, f"the request headers took longer than {limits.header_timeout:g} s")
            else:
                self.transport.close()  # silent from the start: nobody to answer

        def _refuse(self, status: int, message: str) -> None:
            """Answer, stop parsing, and close once the client has had time to read the answer."""
            self._discarding = True
            self._disarm_header_deadline()
            body = message.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
            )
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(_LINGER_SECONDS, self.transport.close)

    return GuardedHttpToolsProtocol
