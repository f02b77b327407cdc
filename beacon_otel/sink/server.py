"""The OTLP/HTTP endpoint: ``POST /v1/traces``, answered as the OTLP/HTTP specification says.

200 with an ``ExportTraceServiceResponse`` (``partial_success`` when spans were rejected) only
once the rows are committed; 400 for a payload that does not decode; 401 without the right
bearer token; 413 over the size limits (compressed or not); 415 for another content type;
503 with ``Retry-After`` while Postgres is unavailable or the sink is saturated, so that the
sender retries. The sink's own database calls are never traced.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from beacon_otel.settings import SinkSettings
from beacon_otel.sink import database
from beacon_otel.sink.mapping import map_request

logger = logging.getLogger("beacon_otel.sink")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# Postgres is down, restarting, or refusing connections: the sender should retry.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    database.asyncpg.PostgresConnectionError,
    database.asyncpg.InterfaceError,
    database.asyncpg.CannotConnectNowError,
    database.asyncpg.TooManyConnectionsError,
    database.asyncpg.AdminShutdownError,
    database.asyncpg.ConnectionDoesNotExistError,
    # A connection that Postgres dropped in the middle of an operation ("cannot switch to state
    # 15; another operation is in progress"): seen while Postgres restarts.
    database.asyncpg.InternalClientError,
)


class Reply(Exception):
    """An early answer (an error status), raised from deep inside request handling."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class SinkApp:
    """The ASGI application; uvicorn serves it (see :mod:`beacon_otel.sink.cli`)."""

    def __init__(self, settings: SinkSettings) -> None:
        self.settings = settings
        self.pool: Any = None
        self.inflight = 0
        self._index_checked = False
        self._expected_token = settings.token.encode() if settings.token else None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await database.create_pool(self.settings.database_url, self.settings.pool_size)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

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
            if self.inflight >= self.settings.max_inflight:
                raise self._retry_later("the sink is saturated")
            self.inflight += 1
            try:
                body = await self._body(headers, receive)
                request = _decode(body, as_json)
                response = await self._store(request)
            finally:
                self.inflight -= 1
        except Reply as reply:
            await _respond(send, reply.status, _error_body(reply.message, as_json), as_json, reply.headers)
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
        body = b"".join(chunks)
        encoding = headers.get("content-encoding", b"identity").strip().lower()
        if encoding == b"gzip":
            return _gunzip(body, self.settings.max_decompressed_bytes)
        if encoding not in (b"identity", b""):
            raise Reply(415, f"unsupported content encoding {encoding.decode('latin-1')!r}: use gzip or none")
        return body

    async def _store(self, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
        mapped = map_request(request, self.settings.service_map)
        rejected, reason = mapped.rejected, mapped.reason
        if mapped.rows:
            try:
                with suppress_instrumentation():  # never trace the sink's own writes into itself
                    await self._ensure_index()
                    written = await database.write_rows(self.pool, mapped.rows)
                if written.clashes:
                    rejected += written.clashes
                    clash = f"{written.clashes} span(s) reuse a span_id already stored for another trace"
                    reason = f"{reason}; {clash}" if reason else clash
            except _UNAVAILABLE as error:
                logger.warning("beacon-otel sink: Postgres unavailable (%s: %s)", type(error).__name__, error)
                raise self._retry_later("Postgres is unavailable") from None
            except database.asyncpg.PostgresError as error:
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


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress every member (RFC 1952 allows several), refusing more than ``limit`` bytes of
    output in all (a gzip bomb stops here) and anything after the last member."""
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = decompressor.decompress(rest, limit + 1 - size)
        except zlib.error as error:
            what = "the gzip body does not decompress" if not parts else "bytes after the last gzip member"
            raise Reply(400, f"{what}: {error}") from None
        size += len(data)
        if size > limit or decompressor.unconsumed_tail:
            raise Reply(413, f"decompressed body over the {limit}-byte limit")
        if not decompressor.eof:
            raise Reply(400, "the gzip body is truncated")
        parts.append(data)
        rest = decompressor.unused_data
        if not rest:
            return b"".join(parts)


def _decode(body: bytes, as_json: bool) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if not as_json:
        try:
            request.ParseFromString(body)
        except (DecodeError, ValueError, RuntimeError, RecursionError) as error:
            raise Reply(400, f"the body is not an ExportTraceServiceRequest: {error}") from None
        return request
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("the JSON body is not an object")
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (ValueError, TypeError, AttributeError, json_format.ParseError) as error:
        # AttributeError/TypeError: a value of the wrong shape ({"resourceSpans": ["x"]}).
        raise Reply(400, f"the body is not an OTLP/JSON ExportTraceServiceRequest: {error}") from None
    except RecursionError:
        raise Reply(400, "the body is not an OTLP/JSON ExportTraceServiceRequest: nested too deep") from None
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping expects base64 for bytes."""

    def convert(holder: dict[str, Any], key: str) -> None:
        value = holder.get(key)
        if isinstance(value, str) and value:
            holder[key] = base64.b64encode(bytes.fromhex(value)).decode()

    for resource_spans in document.get("resourceSpans") or ():
        for scope_spans in resource_spans.get("scopeSpans") or ():
            for span in scope_spans.get("spans") or ():
                for key in ("traceId", "spanId", "parentSpanId"):
                    convert(span, key)
                for link in span.get("links") or ():
                    convert(link, "traceId")
                    convert(link, "spanId")


def _error_body(message: str, as_json: bool) -> bytes:
    status = status_pb2.Status(message=message)
    return json_format.MessageToJson(status, indent=None).encode() if as_json else status.SerializeToString()


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
