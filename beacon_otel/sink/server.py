"""The OTLP/HTTP endpoint: ``POST /v1/traces``, answered as the OTLP/HTTP specification says.

200 with an ``ExportTraceServiceResponse`` (``partial_success`` when spans were rejected) only
once the rows are committed; 400 for a payload that does not decode; 401 without the right
bearer token; 408 for a body slower than ``BEACON_OTEL_SINK_BODY_TIMEOUT``; 413 over the size or
element limits; 415 for another content type; 503 with ``Retry-After`` while Postgres is
unavailable or slower than ``BEACON_OTEL_SINK_DB_TIMEOUT``, or the sink is saturated, so that the
sender retries. Decoding and mapping run on worker threads, so a big batch does not stall the
event loop for other senders. The sink's own database calls are never traced.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from beacon_otel.settings import SinkSettings
from beacon_otel.sink import database
from beacon_otel.sink.decoding import DecodeLimits, decode
from beacon_otel.sink.mapping import Mapped, map_request
from beacon_otel.sink.reply import Reply

logger = logging.getLogger("beacon_otel.sink")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# Postgres is down, restarting, or refusing connections: the sender should retry.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,  # frozen or too slow: BEACON_OTEL_SINK_DB_TIMEOUT
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionDoesNotExistError,
    # A connection that Postgres dropped in the middle of an operation ("cannot switch to state
    # 15; another operation is in progress"): seen while Postgres restarts.
    asyncpg.InternalClientError,
)


class SinkApp:
    """The ASGI application; uvicorn serves it (see :mod:`beacon_otel.sink.cli`)."""

    def __init__(self, settings: SinkSettings) -> None:
        self.settings = settings
        self.pool: Any = None
        self.inflight = 0
        self._index_checked = False
        self._expected_token = settings.token.encode() if settings.token else None
        self._limits = DecodeLimits(settings.max_decompressed_bytes, settings.max_elements)
        # Two threads: decoding holds the GIL much of the time, so more would not go faster, and
        # each one holds up to a request's decoded size in memory.
        self._decoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="beacon-sink-decode")

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await database.create_pool(
                    self.settings.database_url, self.settings.pool_size, self.settings.db_timeout
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self._close_pool()
                self._decoders.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _close_pool(self) -> None:
        """Close gracefully when Postgres answers, at once when it does not: SIGTERM must not wait
        on a frozen database."""
        try:
            await asyncio.wait_for(self.pool.close(), self.settings.db_timeout)
        except TimeoutError:
            self.pool.terminate()

    async def _http(self, scope: Message, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1").lower(): value for key, value in scope.get("headers") or ()}
        content_type = headers.get("content-type", b"").split(b";")[0].strip().decode("latin-1").lower()
        as_json = content_type == JSON
        try:
            if scope.get("path") != "/v1/traces":
                raise Reply(404, "not found: the sink serves POST /v1/traces")
            if scope.get("method") != "POST":
                raise Reply(405, "method not allowed: use POST", [(b"allow", b"POST")])
            self._authorise(headers)
            if content_type not in (PROTOBUF, JSON):
                raise Reply(415, f"unsupported content type {content_type!r}: use {PROTOBUF} or {JSON}")
            # Read before counting as in flight: a sender that stalls mid-body holds its own
            # connection until the body timeout, never a slot the others need.
            body = await self._body(headers, receive)
            if self.inflight >= self.settings.max_inflight:
                raise self._retry_later("the sink is saturated")
            self.inflight += 1
            try:
                encoding = headers.get("content-encoding", b"identity").strip().lower()
                mapped = await asyncio.get_running_loop().run_in_executor(
                    self._decoders,
                    _decode_and_map,
                    body,
                    encoding,
                    as_json,
                    self._limits,
                    self.settings.service_map,
                )
                del body
                response = await self._store(mapped)
            finally:
                self.inflight -= 1
        except Reply as reply:
            await _respond(send, reply.status, _error_body(reply.message, as_json), as_json, reply.headers)
            return
        except asyncio.CancelledError:
            # uvicorn cancels what is still running BEACON_OTEL_SINK_SHUTDOWN_TIMEOUT after SIGTERM:
            # nothing of this request was acknowledged, so ask for it again (a retry is idempotent).
            closing = self._retry_later("the sink is shutting down")
            closing.headers.append((b"connection", b"close"))
            await _respond(send, 503, _error_body(closing.message, as_json), as_json, closing.headers)
            return
        payload = (
            json_format.MessageToJson(response, indent=None).encode()
            if as_json
            else response.SerializeToString()
        )
        await _respond(send, 200, payload, as_json)

    def _authorise(self, headers: dict[str, bytes]) -> None:
        if self._expected_token is None:
            return
        # The scheme is case-insensitive (RFC 9110 section 11.1); the token is compared exactly.
        scheme, _, token = headers.get("authorization", b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._expected_token):
            raise Reply(401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")])

    async def _body(self, headers: dict[str, bytes], receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Reply(413, f"body over the {limit}-byte limit")
        chunks = []
        size = 0
        try:
            async with asyncio.timeout(self.settings.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise Reply(400, "the client went away")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise Reply(413, f"body over the {limit}-byte limit")
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            raise Reply(
                408,
                f"the body did not arrive within {self.settings.body_timeout:g} s "
                f"(BEACON_OTEL_SINK_BODY_TIMEOUT); {size} bytes came",
                [(b"connection", b"close")],
            ) from None
        return b"".join(chunks)

    async def _store(self, mapped: Mapped) -> ExportTraceServiceResponse:
        rejected, reason = mapped.rejected, mapped.reason
        if mapped.rows:
            try:
                with suppress_instrumentation():  # never trace the sink's own writes into itself
                    async with asyncio.timeout(self.settings.db_timeout):
                        await self._ensure_index()
                        written = await database.write_rows(self.pool, mapped.rows)
                if written.clashes:
                    rejected += written.clashes
                    clash = f"{written.clashes} span(s) reuse a span_id already stored for another trace"
                    reason = f"{reason}; {clash}" if reason else clash
            except _UNAVAILABLE as error:
                logger.warning("beacon-otel sink: Postgres unavailable (%s: %s)", type(error).__name__, error)
                raise self._retry_later("Postgres is unavailable") from None
            except asyncpg.PostgresError as error:
                logger.error("beacon-otel sink: a batch was refused by Postgres: %s", error)
                raise self._retry_later(f"Postgres refused the batch: {error}") from None
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = reason or "invalid spans"
        return response

    async def _ensure_index(self) -> None:
        if self._index_checked:
            return
        async with self.pool.acquire() as connection:
            if not await database.has_unique_index(connection):
                logger.error(
                    "beacon-otel sink: trace_spans has no unique index on span_id; "
                    "run `beacon-otel sink migrate`"
                )
                raise self._retry_later("trace_spans is not migrated: run `beacon-otel sink migrate`")
        self._index_checked = True

    def _retry_later(self, message: str) -> Reply:
        seconds = str(self.settings.retry_after_seconds).encode()
        return Reply(503, message, [(b"retry-after", seconds)])


def _decode_and_map(
    body: bytes, encoding: bytes, as_json: bool, limits: DecodeLimits, service_map: Mapping[str, str]
) -> Mapped:
    """The CPU-heavy part of a request, run on a decoding thread."""
    return map_request(decode(body, encoding, as_json, limits), service_map)


def _error_body(message: str, as_json: bool) -> bytes:
    status = status_pb2.Status(message=message)
    if as_json:
        text: str = json_format.MessageToJson(status, indent=None)
        return text.encode()
    encoded: bytes = status.SerializeToString()
    return encoded


async def _respond(
    send: Send, status: int, body: bytes, as_json: bool, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", (JSON if as_json else PROTOBUF).encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
