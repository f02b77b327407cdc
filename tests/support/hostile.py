"""Broken and hostile OTLP backends on real sockets: each accepts connections on a loopback port
and misbehaves in one way (or, for ``closed``, nothing listens at all)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.processes import free_port

MODES = ("closed", "blackhole", "503", "slow200", "trickle", "huge")
HUGE_BYTES = 400 * 1024 * 1024


def _read_request(connection: socket.socket) -> bool:
    """Read one HTTP request (headers and a Content-Length body); False when the peer left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


def _serve(mode: str, connection: socket.socket, stop: threading.Event) -> None:
    with contextlib.suppress(OSError), connection:
        if mode == "blackhole":
            stop.wait()  # accepts, reads nothing, answers nothing
            return
        while not stop.is_set() and _read_request(connection):
            if mode == "503":
                connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            elif mode == "slow200":
                stop.wait(5)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            elif mode == "trickle":
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                for byte in answer + b"\0" * 100000:
                    if stop.wait(0.2):
                        return
                    connection.sendall(bytes([byte]))
            elif mode == "huge":
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    + f"Content-Length: {HUGE_BYTES}\r\n\r\n".encode()
                )
                block = b"\0" * (1024 * 1024)
                for _ in range(HUGE_BYTES // len(block)):
                    if stop.is_set():
                        return
                    connection.sendall(block)


@contextmanager
def hostile_backend(mode: str) -> Iterator[str]:
    """An OTLP/HTTP endpoint URL whose server behaves as ``mode`` says, until the block ends."""
    assert mode in MODES, mode
    port = free_port()
    if mode == "closed":
        yield f"http://127.0.0.1:{port}"
        return
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_serve, args=(mode, connection, stop), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        acceptor.join(2)
        listener.close()
        time.sleep(0.05)
