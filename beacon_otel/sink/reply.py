"""An early answer to a request: raised from anywhere in handling, written by the server."""

from __future__ import annotations


class Reply(Exception):
    """An error status with the message the client gets (and, for 503, a ``Retry-After``)."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []
