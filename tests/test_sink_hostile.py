"""``beacon-otel sink`` against hostile and broken senders, and a frozen Postgres.

Each test sends the exact input over a real socket to a real sink writing a real Postgres, then
checks the answer, the rows, and that the sink still serves. Memory is read from the sink
process's peak resident size (``VmHWM``), which the kernel keeps for us.
"""

from __future__ import annotations

import gzip
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from beacon_otel.stack.postgres import PostgresServer, start_postgres
from tests.support.processes import stop
from tests.support.sink import (
    JSON_AUTH,
    PROTOBUF,
    TOKEN,
    Database,
    Sink,
    export_request,
    migrate_database,
    new_database,
    start_sink,
)

GZIP_PROTOBUF = {**PROTOBUF, "content-encoding": "gzip"}
MiB = 1024 * 1024


def _peak_rss_mib(sink: Sink) -> float:
    for line in Path(f"/proc/{sink.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


def _connect(sink: Sink) -> socket.socket:
    port = int(sink.url.split(":")[2].split("/")[0])
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _read_until_closed(connection: socket.socket) -> bytes:
    """Everything the sink sends until it closes the connection (the socket's timeout bounds it)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def _still_serving(sink: Sink, database: Database, start: int) -> None:
    before = database.count()
    response = sink.post(export_request(3, start=start).SerializeToString())
    assert response.status_code == 200, response.content
    assert database.count() == before + 3
    assert sink.process.poll() is None
    assert "Traceback" not in sink.log.read_text()


@pytest.fixture
def hostile_sink(database: Database, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sink]:
    """A sink with the variables the test's ``sink_env`` marker names (short timeouts, small caps)."""
    marker = request.node.get_closest_marker("sink_env")
    sink = start_sink(database, tmp_path, **(marker.kwargs if marker else {}))
    yield sink
    stop(sink.process)


# --- amplification ----------------------------------------------------------------------------------


def test_an_element_bomb_is_refused_before_it_is_decoded(database: Database, hostile_sink: Sink) -> None:
    # 15 million empty ResourceSpans: 30 MB decoded (under the 32 MiB limit), 29 KB gzipped, and
    # about 1 GiB once parsed. The same in JSON, and three of them at once.
    protobuf_bomb = gzip.compress(b"\x0a\x00" * 15_000_000, 9)
    json_bomb = gzip.compress(b'{"resourceSpans": [' + b"{}," * 10_000_000 + b"{}]}", 9)
    assert len(protobuf_bomb) < 64 * 1024
    answers: list[httpx.Response] = []

    def send(body: bytes, headers: dict[str, str]) -> None:
        answers.append(hostile_sink.post(body, headers))

    senders = [
        threading.Thread(target=send, args=(protobuf_bomb, GZIP_PROTOBUF)),
        threading.Thread(target=send, args=(protobuf_bomb, GZIP_PROTOBUF)),
        threading.Thread(target=send, args=(json_bomb, {**JSON_AUTH, "content-encoding": "gzip"})),
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    assert [answer.status_code for answer in answers] == [413, 413, 413], [a.content for a in answers]
    assert all(b"BEACON_OTEL_SINK_MAX_ELEMENTS" in answer.content for answer in answers)
    assert _peak_rss_mib(hostile_sink) < 400, "the decoded bombs were held in memory"
    assert database.count() == 0
    _still_serving(hostile_sink, database, start=0)


@pytest.mark.sink_env(BEACON_OTEL_SINK_MAX_ELEMENTS="50")
def test_the_element_limit_is_a_setting(database: Database, hostile_sink: Sink) -> None:
    small = export_request(3).SerializeToString()
    assert hostile_sink.post(small).status_code == 200
    too_many = hostile_sink.post(export_request(40, start=10).SerializeToString())
    assert too_many.status_code == 413
    assert database.count() == 3


# --- slow and stalled senders -------------------------------------------------------------------------


def _stalled_upload(sink: Sink, declared: int = 1000, sent: int = 10) -> socket.socket:
    """An authenticated upload that declares ``declared`` bytes, sends ``sent``, then nothing."""
    connection = _connect(sink)
    connection.sendall(
        b"POST /v1/traces HTTP/1.1\r\nhost: sink\r\ncontent-type: application/x-protobuf\r\n"
        + f"authorization: Bearer {TOKEN}\r\ncontent-length: {declared}\r\n\r\n".encode()
        + b"\x0a" * sent
    )
    return connection


@pytest.mark.sink_env(BEACON_OTEL_SINK_BODY_TIMEOUT="3", BEACON_OTEL_SINK_MAX_INFLIGHT="4")
def test_stalled_uploads_do_not_starve_other_senders(database: Database, hostile_sink: Sink) -> None:
    stalled = [_stalled_upload(hostile_sink) for _ in range(16)]
    try:
        # Four times the in-flight limit is stalling, and good batches still go through.
        for number in range(5):
            response = hostile_sink.post(export_request(2, start=10 * number).SerializeToString())
            assert response.status_code == 200, response.content
        assert database.count() == 10
        # Each stalled upload (a Content-Length larger than its body) is answered 408 and closed.
        for connection in stalled:
            answer = _read_until_closed(connection)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"BEACON_OTEL_SINK_BODY_TIMEOUT" in answer
    finally:
        for connection in stalled:
            connection.close()
    _still_serving(hostile_sink, database, start=100)


@pytest.mark.sink_env(BEACON_OTEL_SINK_BODY_TIMEOUT="60", BEACON_OTEL_SINK_SHUTDOWN_TIMEOUT="2")
def test_stalled_uploads_do_not_block_sigterm(database: Database, hostile_sink: Sink) -> None:
    stalled = [_stalled_upload(hostile_sink) for _ in range(16)]
    try:
        assert hostile_sink.post(export_request(2).SerializeToString()).status_code == 200
        hostile_sink.process.send_signal(signal.SIGTERM)
        # Well under the 60 s body timeout: the shutdown timeout (2 s) cuts the stalled requests.
        # uvicorn re-raises the signal once shut down, so the status says "ended by SIGTERM".
        assert hostile_sink.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in hostile_sink.log.read_text()
        for connection in stalled:  # asked to send again later, then closed
            connection.settimeout(10)
            answer = _read_until_closed(connection)
            assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
    finally:
        for connection in stalled:
            connection.close()
    assert database.count() == 2


@pytest.mark.sink_env(BEACON_OTEL_SINK_HEADER_TIMEOUT="1", BEACON_OTEL_SINK_IDLE_TIMEOUT="1")
def test_silent_half_sent_and_idle_connections_are_closed(database: Database, hostile_sink: Sink) -> None:
    silent = [_connect(hostile_sink) for _ in range(20)]
    half_sent = [_connect(hostile_sink) for _ in range(20)]
    for connection in half_sent:
        connection.sendall(b"POST /v1/traces HTTP/1.1\r\nhost: sink\r\nx-slow: ")
    kept_alive = _connect(hostile_sink)
    body = export_request(1).SerializeToString()
    kept_alive.sendall(
        b"POST /v1/traces HTTP/1.1\r\nhost: sink\r\ncontent-type: application/x-protobuf\r\n"
        + f"authorization: Bearer {TOKEN}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    try:
        for connection in silent:
            connection.settimeout(15)
            assert _read_until_closed(connection) == b""
        for connection in half_sent:
            connection.settimeout(15)
            answer = _read_until_closed(connection)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        kept_alive.settimeout(15)
        answer = _read_until_closed(kept_alive)  # the response, then closed once idle
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    finally:
        for connection in [*silent, *half_sent, kept_alive]:
            connection.close()
    assert database.count() == 1
    _still_serving(hostile_sink, database, start=10)


@pytest.mark.sink_env(BEACON_OTEL_SINK_MAX_CONNECTIONS="50", BEACON_OTEL_SINK_HEADER_TIMEOUT="120")
def test_connections_beyond_the_cap_are_closed_at_once(database: Database, hostile_sink: Sink) -> None:
    held = [_connect(hostile_sink) for _ in range(50)]
    extra = [_connect(hostile_sink) for _ in range(250)]
    try:
        for connection in extra:  # closed at once, long before the 120 s header timeout
            connection.settimeout(30)
            assert _read_until_closed(connection) == b""
        for connection in held[:10]:
            connection.close()
        time.sleep(0.5)  # let the sink see those ten go
        _still_serving(hostile_sink, database, start=0)
    finally:
        for connection in [*held, *extra]:
            connection.close()


def _send_headers_until_answered(sink: Sink, header: bytes, total: int) -> bytes:
    """Stream one request's headers until the sink answers (or ``total`` bytes went out)."""
    connection = _connect(sink)
    try:
        connection.sendall(b"POST /v1/traces HTTP/1.1\r\nhost: sink\r\n")
        sent = 0
        while sent < total:
            readable, _, _ = select.select([connection], [], [], 0)
            if readable:
                break
            try:
                connection.sendall(header)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(header)
        connection.settimeout(15)
        return _read_until_closed(connection)
    finally:
        connection.close()


def test_huge_headers_get_431_with_bounded_memory(database: Database, hostile_sink: Sink) -> None:
    one_line = b"x-junk: " + b"a" * MiB  # one header line that never ends, sent 1 MiB at a time
    answers: list[bytes] = []
    senders = [
        threading.Thread(
            target=lambda: answers.append(_send_headers_until_answered(hostile_sink, one_line, 200 * MiB))
        )
        for _ in range(4)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    many = _send_headers_until_answered(hostile_sink, b"x-many: " + b"b" * 100 + b"\r\n", 5 * MiB)
    for answer in [*answers, many]:
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b"65536-byte limit" in answer
    assert len(answers) == 4
    assert _peak_rss_mib(hostile_sink) < 250
    _still_serving(hostile_sink, database, start=0)


# --- a frozen Postgres -----------------------------------------------------------------------------------


def _postgres_processes(server: PostgresServer) -> list[int]:
    """The postmaster and its children (each backend is its own process group, so no killpg)."""
    postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) == postmaster:
            children.append(int(status.parent.name))
    return [postmaster, *children]


def test_a_frozen_postgres_is_a_prompt_503_and_nothing_is_lost(tmp_path: Path) -> None:
    server = start_postgres()
    try:
        database = new_database(server)
        assert migrate_database(database).returncode == 0
        sink = start_sink(database, tmp_path, BEACON_OTEL_SINK_DB_TIMEOUT="1")
        try:
            assert sink.post(export_request(5).SerializeToString()).status_code == 200
            frozen_processes = _postgres_processes(server)
            for pid in frozen_processes:
                os.kill(pid, signal.SIGSTOP)
            try:
                frozen = sink.post(export_request(5, start=10).SerializeToString())
                assert frozen.status_code == 503, frozen.content
                assert frozen.headers["retry-after"].isdigit()
            finally:
                # runuser stops itself when its child stops (as su does): wake it too.
                assert server.process is not None
                for pid in [*frozen_processes, server.process.pid]:
                    os.kill(pid, signal.SIGCONT)
            for _ in range(50):  # the sender's retries, once Postgres is back
                retried = sink.post(export_request(5, start=10).SerializeToString())
                if retried.status_code == 200:
                    break
                assert retried.status_code == 503, retried.content
                time.sleep(0.2)
            assert retried.status_code == 200
            assert database.count() == 10
        finally:
            stop(sink.process)
    finally:
        server.destroy()


# --- a big legitimate batch -------------------------------------------------------------------------------


@pytest.mark.sink_env(BEACON_OTEL_SINK_MAX_INFLIGHT="64")
def test_a_big_batch_does_not_hold_up_small_ones(database: Database, hostile_sink: Sink) -> None:
    big = gzip.compress(export_request(100_000).SerializeToString(), 1)
    outcome: dict[str, httpx.Response] = {}
    big_done = threading.Event()

    def send_big() -> None:
        outcome["big"] = httpx.post(hostile_sink.url, content=big, headers=GZIP_PROTOBUF, timeout=120)
        big_done.set()

    sender = threading.Thread(target=send_big)
    sender.start()
    small_answered_meanwhile = 0
    number = 0
    while not big_done.is_set():
        response = hostile_sink.post(export_request(1, start=200_000 + number).SerializeToString())
        assert response.status_code == 200, response.content
        number += 1
        if not big_done.is_set():
            small_answered_meanwhile += 1
    sender.join()
    assert outcome["big"].status_code == 200, outcome["big"].content
    assert not ExportTraceServiceResponse.FromString(outcome["big"].content).HasField("partial_success")
    # While the big batch was decoded and mapped (seconds), small requests kept being answered.
    assert small_answered_meanwhile >= 10, small_answered_meanwhile
    assert database.count() == 100_000 + number
