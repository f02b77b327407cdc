"""A real OTLP receiver on loopback sockets, for tests and benchmarks.

Tests need to see what actually leaves the process over the wire (both OTLP/gRPC
and OTLP/HTTP), not what an in-memory exporter was handed, so this module runs a
genuine gRPC server and a genuine HTTP/1.1 server on 127.0.0.1 and decodes what
arrives into small, comparable dataclasses.

Typical use::

    with OtlpReceiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        ...
        spans = receiver.wait_for_spans(lambda s: any(x.name == "work" for x in s))

Fault injection (``set_mode``) lets tests check how exporters behave when the
backend is slow or refuses data.  Benchmarks run it as a separate process::

    python -m beacon_otel.testing.otlp_receiver --grpc-port 4317 --http-port 4318 --quiet

which only counts what it receives (``keep=False``) so memory stays flat.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import logging
import signal
import socket
import socketserver
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Final, Literal, Self, TypeVar, get_args

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import (
    logs_service_pb2,
    logs_service_pb2_grpc,
)
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint

__all__ = [
    "Mode",
    "OtlpReceiver",
    "ReceivedLog",
    "ReceivedMetric",
    "ReceivedSpan",
    "Signal",
    "Transport",
    "main",
]

_log = logging.getLogger("beacon_otel.testing.otlp_receiver")  # stable under -m

Signal = Literal["traces", "metrics", "logs"]
Mode = Literal["ok", "slow", "unavailable"]
Transport = Literal["grpc", "http"]

_SIGNALS: Final[tuple[Signal, ...]] = get_args(Signal)
_MODES: Final[tuple[Mode, ...]] = get_args(Mode)
_HOST: Final = "127.0.0.1"
# Big enough for benchmark batches, small enough that a runaway client is refused.
_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
_PROTOBUF_CONTENT_TYPES: Final = frozenset({"application/x-protobuf", "application/protobuf"})

_ExportRequest = (
    trace_service_pb2.ExportTraceServiceRequest
    | metrics_service_pb2.ExportMetricsServiceRequest
    | logs_service_pb2.ExportLogsServiceRequest
)

_REQUEST_TYPES: Final[dict[Signal, type[_ExportRequest]]] = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}
_PATH_TO_SIGNAL: Final[dict[str, Signal]] = {f"/v1/{s}": s for s in _SIGNALS}


# --------------------------------------------------------------------------- #
# Decoded views
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One span as it arrived on the wire, with ids as hex and values as Python."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str
    transport: Transport


@dataclass(frozen=True, slots=True)
class ReceivedMetric:
    """One metric from one export; periodic readers re-send metrics each interval.

    ``data_points`` holds ``(attributes, value)``; value is an int/float for
    sums and gauges, and a dict with ``count``, ``sum`` and ``bucket_counts``
    for histograms (exponential ones also carry ``scale`` and ``zero_count``;
    their ``bucket_counts`` are the positive buckets).
    """

    name: str
    kind: str
    unit: str
    data_points: list[tuple[dict[str, Any], Any]]
    resource: dict[str, Any]
    description: str
    scope: str
    temporality: int
    is_monotonic: bool
    transport: Transport


@dataclass(frozen=True, slots=True)
class ReceivedLog:
    """One log record; ids are "" when the record carries no trace context."""

    body: Any
    severity_number: int
    severity_text: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    event_name: str
    transport: Transport


def _any_value(value: AnyValue) -> Any:
    """Convert an OTLP AnyValue into the Python value the SDK was given."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in pairs}


def _optional_id(raw: bytes) -> str:
    """Hex id, or "" when absent; OTLP encodes "no id" as empty or all-zero bytes."""
    return raw.hex() if any(raw) else ""


def _decode_spans(
    request: trace_service_pb2.ExportTraceServiceRequest, transport: Transport
) -> list[ReceivedSpan]:
    out: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=_optional_id(span.parent_span_id),
                        kind=int(span.kind),
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=int(span.end_time_unix_nano),
                        attributes=_attributes(span.attributes),
                        status_code=int(span.status.code),
                        status_message=span.status.message,
                        events=[(event.name, _attributes(event.attributes)) for event in span.events],
                        resource=dict(resource),
                        scope=scope,
                        transport=transport,
                    )
                )
    return out


def _number(point: NumberDataPoint) -> int | float | None:
    which = point.WhichOneof("value")
    return None if which is None else getattr(point, which)


def _metric_points(metric: Metric, kind: str) -> list[tuple[dict[str, Any], Any]]:
    if kind == "sum":
        return [(_attributes(p.attributes), _number(p)) for p in metric.sum.data_points]
    if kind == "gauge":
        return [(_attributes(p.attributes), _number(p)) for p in metric.gauge.data_points]
    if kind == "histogram":
        return [
            (
                _attributes(p.attributes),
                {
                    "count": int(p.count),
                    "sum": p.sum if p.HasField("sum") else None,
                    "bucket_counts": [int(c) for c in p.bucket_counts],
                },
            )
            for p in metric.histogram.data_points
        ]
    if kind == "exponential_histogram":
        return [
            (
                _attributes(p.attributes),
                {
                    "count": int(p.count),
                    "sum": p.sum if p.HasField("sum") else None,
                    "bucket_counts": [int(c) for c in p.positive.bucket_counts],
                    "scale": int(p.scale),
                    "zero_count": int(p.zero_count),
                },
            )
            for p in metric.exponential_histogram.data_points
        ]
    if kind == "summary":
        return [
            (_attributes(p.attributes), {"count": int(p.count), "sum": p.sum})
            for p in metric.summary.data_points
        ]
    return []


def _decode_metrics(
    request: metrics_service_pb2.ExportMetricsServiceRequest, transport: Transport
) -> list[ReceivedMetric]:
    out: list[ReceivedMetric] = []
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data") or ""
                temporality = 0
                if kind in ("sum", "histogram", "exponential_histogram"):
                    temporality = int(getattr(metric, kind).aggregation_temporality)
                out.append(
                    ReceivedMetric(
                        name=metric.name,
                        kind=kind,
                        unit=metric.unit,
                        data_points=_metric_points(metric, kind),
                        resource=dict(resource),
                        description=metric.description,
                        scope=scope,
                        temporality=temporality,
                        is_monotonic=kind == "sum" and metric.sum.is_monotonic,
                        transport=transport,
                    )
                )
    return out


def _decode_logs(
    request: logs_service_pb2.ExportLogsServiceRequest, transport: Transport
) -> list[ReceivedLog]:
    out: list[ReceivedLog] = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for record in scope_logs.log_records:
                out.append(
                    ReceivedLog(
                        body=_any_value(record.body) if record.HasField("body") else None,
                        severity_number=int(record.severity_number),
                        severity_text=record.severity_text,
                        trace_id=_optional_id(record.trace_id),
                        span_id=_optional_id(record.span_id),
                        attributes=_attributes(record.attributes),
                        resource=dict(resource),
                        scope=scope,
                        event_name=record.event_name,
                        transport=transport,
                    )
                )
    return out


def _tally(request: _ExportRequest) -> dict[str, int]:
    """Count items without building Python objects; cheap enough for benchmarks."""
    if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
        return {"spans": sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)}
    if isinstance(request, logs_service_pb2.ExportLogsServiceRequest):
        return {"logs": sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)}
    metrics = points = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                metrics += 1
                kind = metric.WhichOneof("data")
                if kind is not None:
                    points += len(getattr(metric, kind).data_points)
    return {"metrics": metrics, "data_points": points}


# --------------------------------------------------------------------------- #
# Tiny hand-encoded protobufs for error replies (avoids a googleapis dependency)
# --------------------------------------------------------------------------- #


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _rpc_status(code: int, message: str) -> bytes:
    """google.rpc.Status{code, message}: the error body OTLP/HTTP specifies."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


_GRPC_UNAVAILABLE: Final = 14
_GRPC_INVALID_ARGUMENT: Final = 3
# google.rpc.RetryInfo{retry_delay: Duration{seconds: 1}}; the OTLP gRPC exporter
# honours it the same way the HTTP exporter honours "Retry-After: 1".
_RETRY_INFO_KEY: Final = "google.rpc.retryinfo-bin"
_RETRY_INFO_ONE_SECOND: Final = b"\x0a\x02\x08\x01"
_UNAVAILABLE_MESSAGE: Final = "OtlpReceiver is in 'unavailable' mode (fault injection)"


def _merge_headers(pairs: Iterable[tuple[str, str | bytes]]) -> dict[str, str]:
    """Lowercase names; repeated headers are joined like HTTP list headers."""
    merged: dict[str, str] = {}
    for name, raw in pairs:
        value = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


# --------------------------------------------------------------------------- #
# The receiver
# --------------------------------------------------------------------------- #

_T = TypeVar("_T")


class OtlpReceiver:
    """OTLP/gRPC + OTLP/HTTP receiver on 127.0.0.1 that records what it gets.

    All accessors return snapshots (copies) and are safe to call from any
    thread while exporters are sending.
    """

    def __init__(
        self,
        *,
        grpc_port: int = 0,
        http_port: int = 0,
        keep: bool = True,
        slow_seconds: float = 5.0,
        max_workers: int = 16,
    ) -> None:
        """Create a stopped receiver; ``keep=False`` only counts (for benchmarks)."""
        self._requested_grpc_port = grpc_port
        self._requested_http_port = http_port
        self._keep = keep
        self._max_workers = max_workers

        self._cond = threading.Condition(threading.Lock())
        self._generation = 0
        self._mode: Mode = "ok"
        self._slow_seconds = float(slow_seconds)
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[ReceivedMetric] = []
        self._logs: list[ReceivedLog] = []
        self._bodies: list[bytes] = []
        self._headers: list[dict[str, str]] = []
        self._requests: dict[str, int] = dict.fromkeys(_SIGNALS, 0)
        self._rejected: dict[str, int] = dict.fromkeys(_SIGNALS, 0)
        self._items: dict[str, int] = dict.fromkeys(("spans", "metrics", "data_points", "logs"), 0)

        self._lifecycle = threading.Lock()
        self._stop_event = threading.Event()
        self._grpc_server: Any = None
        self._http_server: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc_port: int | None = None
        self._http_port: int | None = None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Self:
        """Bind both servers and start serving; raises OSError if a port is taken."""
        with self._lifecycle:
            if self._grpc_server is not None:
                raise RuntimeError("OtlpReceiver is already running")
            self._stop_event = threading.Event()
            grpc_server = self._start_grpc()
            try:
                http_server = _HttpServer((_HOST, self._requested_http_port), self)
            except BaseException:
                grpc_server.stop(None)
                raise
            thread = threading.Thread(
                target=http_server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"otlp-http-{http_server.server_port}",
                daemon=True,
            )
            thread.start()
            self._grpc_server, self._http_server, self._http_thread = (
                grpc_server,
                http_server,
                thread,
            )
            self._http_port = http_server.server_port
            _log.info(
                "OTLP receiver listening grpc=%s http=%s",
                self._grpc_port,
                self._http_port,
            )
        return self

    def _start_grpc(self) -> Any:
        server = grpc.server(
            ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="otlp-grpc"),
            options=[
                # grpcio enables SO_REUSEPORT by default, which would let two
                # receivers silently share a fixed port and split the traffic.
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", _MAX_BODY_BYTES),
            ],
        )
        # The generated add_* helpers are untyped; going through a typed Callable
        # keeps strict mypy quiet without a type: ignore per call.
        registrations: tuple[tuple[Callable[[Any, Any], None], object], ...] = (
            (
                trace_service_pb2_grpc.add_TraceServiceServicer_to_server,
                _TraceServicer(self),
            ),
            (
                metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server,
                _MetricsServicer(self),
            ),
            (
                logs_service_pb2_grpc.add_LogsServiceServicer_to_server,
                _LogsServicer(self),
            ),
        )
        for register, servicer in registrations:
            register(servicer, server)
        address = f"{_HOST}:{self._requested_grpc_port}"
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as exc:  # newer grpcio raises instead of returning 0
            raise OSError(f"cannot bind gRPC receiver to {address}: {exc}") from exc
        if not port:
            raise OSError(f"cannot bind gRPC receiver to {address}")
        server.start()
        self._grpc_port = int(port)
        return server

    def stop(self) -> None:
        """Stop both servers, waking slow-mode sleepers and closing kept-alive sockets."""
        with self._lifecycle:
            grpc_server, http_server, thread = (
                self._grpc_server,
                self._http_server,
                self._http_thread,
            )
            self._grpc_server = self._http_server = self._http_thread = None
            if grpc_server is None:
                return
            self._stop_event.set()
            grpc_server.stop(grace=1.0).wait()
            if http_server is not None:
                http_server.shutdown()
                # Handler threads block on idle keep-alive sockets; without this
                # they would keep answering a reused connection after stop().
                http_server.close_connections()
                http_server.server_close()
            if thread is not None:
                thread.join(timeout=5.0)
            _log.info("OTLP receiver stopped")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------

    @property
    def grpc_port(self) -> int:
        """Bound gRPC port (the real one when constructed with port 0)."""
        if self._grpc_port is None:
            raise RuntimeError("OtlpReceiver has not been started")
        return self._grpc_port

    @property
    def http_port(self) -> int:
        """Bound HTTP port (the real one when constructed with port 0)."""
        if self._http_port is None:
            raise RuntimeError("OtlpReceiver has not been started")
        return self._http_port

    @property
    def grpc_endpoint(self) -> str:
        """Value for OTEL_EXPORTER_OTLP_ENDPOINT with the grpc protocol."""
        return f"http://{_HOST}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """Base URL for OTEL_EXPORTER_OTLP_ENDPOINT with http/protobuf (no /v1/... suffix)."""
        return f"http://{_HOST}:{self.http_port}"

    def http_url(self, signal: Signal) -> str:
        """Full per-signal URL, as the HTTP exporters' ``endpoint=`` argument expects."""
        if signal not in _SIGNALS:
            raise ValueError(f"unknown signal {signal!r}; expected one of {_SIGNALS}")
        return f"{self.http_endpoint}/v1/{signal}"

    # -- fault injection ------------------------------------------------------

    def set_mode(self, mode: Mode, *, slow_seconds: float | None = None) -> None:
        """Switch behaviour for subsequent requests: "ok", "slow" or "unavailable"."""
        if mode not in _MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {_MODES}")
        with self._cond:
            self._mode = mode
            if slow_seconds is not None:
                self._slow_seconds = float(slow_seconds)

    @property
    def mode(self) -> Mode:
        """Current fault-injection mode."""
        with self._cond:
            return self._mode

    @property
    def slow_seconds(self) -> float:
        """How long "slow" mode sleeps before answering."""
        with self._cond:
            return self._slow_seconds

    @slow_seconds.setter
    def slow_seconds(self, value: float) -> None:
        with self._cond:
            self._slow_seconds = float(value)

    # -- ingestion (called from server threads) ------------------------------

    def _ingest(
        self,
        signal: Signal,
        request: _ExportRequest,
        raw: bytes | None,
        headers: dict[str, str],
        transport: Transport,
    ) -> bool:
        """Record one export request; False means "answer UNAVAILABLE"."""
        body = b""
        if self._keep:
            body = raw if raw is not None else request.SerializeToString()
        with self._cond:
            self._requests[signal] += 1
            mode, delay, stop_event = self._mode, self._slow_seconds, self._stop_event
            if self._keep:
                self._headers.append(headers)
                self._bodies.append(body)
            if mode == "unavailable":
                self._rejected[signal] += 1
                self._notify_locked()
                return False
        if mode == "slow":
            stop_event.wait(delay)  # stop() must not hang on a sleeping handler

        tally = _tally(request)
        spans: list[ReceivedSpan] = []
        metrics: list[ReceivedMetric] = []
        logs: list[ReceivedLog] = []
        if self._keep:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                spans = _decode_spans(request, transport)
            elif isinstance(request, metrics_service_pb2.ExportMetricsServiceRequest):
                metrics = _decode_metrics(request, transport)
            else:
                logs = _decode_logs(request, transport)
        with self._cond:
            for key, count in tally.items():
                self._items[key] += count
            self._spans.extend(spans)
            self._metrics.extend(metrics)
            self._logs.extend(logs)
            self._notify_locked()
        return True

    def _notify_locked(self) -> None:
        self._generation += 1
        self._cond.notify_all()

    def _grpc_export(self, signal: Signal, request: _ExportRequest, context: Any) -> None:
        """Shared body of the three Export RPCs; aborts the call in unavailable mode."""
        headers = _merge_headers(context.invocation_metadata())
        if not self._ingest(signal, request, None, headers, "grpc"):
            context.set_trailing_metadata(((_RETRY_INFO_KEY, _RETRY_INFO_ONE_SECOND),))
            context.abort(grpc.StatusCode.UNAVAILABLE, _UNAVAILABLE_MESSAGE)

    # -- views ------------------------------------------------------------------

    def spans(self) -> list[ReceivedSpan]:
        """All spans accepted so far, in arrival order."""
        with self._cond:
            return list(self._spans)

    def metrics(self) -> list[ReceivedMetric]:
        """All metrics accepted so far (one entry per metric per export)."""
        with self._cond:
            return list(self._metrics)

    def logs(self) -> list[ReceivedLog]:
        """All log records accepted so far."""
        with self._cond:
            return list(self._logs)

    def raw_bodies(self) -> list[bytes]:
        """Decompressed protobuf body of every request, rejected ones included."""
        with self._cond:
            return list(self._bodies)

    def headers(self) -> list[dict[str, str]]:
        """Headers/metadata of every request (lowercased names), aligned with raw_bodies()."""
        with self._cond:
            return [dict(h) for h in self._headers]

    def request_counts(self) -> dict[str, int]:
        """Requests that arrived per signal, including rejected ones."""
        with self._cond:
            return dict(self._requests)

    def rejected_counts(self) -> dict[str, int]:
        """Requests answered UNAVAILABLE/503 per signal."""
        with self._cond:
            return dict(self._rejected)

    def stats(self) -> dict[str, Any]:
        """Counters of accepted items and of requests; maintained even with keep=False."""
        with self._cond:
            return {
                **self._items,
                "requests": dict(self._requests),
                "rejected": dict(self._rejected),
            }

    def clear(self) -> None:
        """Forget everything received and reset counters (the mode is kept)."""
        with self._cond:
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()
            self._bodies.clear()
            self._headers.clear()
            for counter in (self._requests, self._rejected, self._items):
                for key in counter:
                    counter[key] = 0
            self._notify_locked()

    # -- waiting ------------------------------------------------------------------

    def wait_for_spans(
        self,
        predicate: Callable[[list[ReceivedSpan]], object] = bool,
        timeout: float = 10.0,
    ) -> list[ReceivedSpan]:
        """Block until ``predicate(all_spans)`` is truthy; return those spans."""
        return self._wait(
            "spans",
            lambda: self._spans,
            predicate,
            timeout,
            lambda items: [s.name for s in items],
        )

    def wait_for_metrics(
        self,
        predicate: Callable[[list[ReceivedMetric]], object] = bool,
        timeout: float = 10.0,
    ) -> list[ReceivedMetric]:
        """Block until ``predicate(all_metrics)`` is truthy; return those metrics."""
        return self._wait(
            "metrics",
            lambda: self._metrics,
            predicate,
            timeout,
            lambda items: sorted({m.name for m in items}),
        )

    def wait_for_logs(
        self,
        predicate: Callable[[list[ReceivedLog]], object] = bool,
        timeout: float = 10.0,
    ) -> list[ReceivedLog]:
        """Block until ``predicate(all_logs)`` is truthy; return those log records."""
        return self._wait(
            "logs",
            lambda: self._logs,
            predicate,
            timeout,
            lambda items: [lg.body for lg in items],
        )

    def _wait(
        self,
        what: str,
        source: Callable[[], list[_T]],
        predicate: Callable[[list[_T]], object],
        timeout: float,
        describe: Callable[[list[_T]], list[Any]],
    ) -> list[_T]:
        """Re-check on every export; the predicate runs outside the lock so it may call us."""
        if not self._keep:
            raise RuntimeError(f"OtlpReceiver(keep=False) does not store {what}; use stats()")
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                items = list(source())
                generation = self._generation
            if predicate(items):
                return items
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with self._cond:
                if self._generation == generation:  # else an export already landed
                    self._cond.wait(remaining)
        described = describe(items)
        shown = ", ".join(repr(x) for x in described[:50])
        more = f", ... ({len(described) - 50} more)" if len(described) > 50 else ""
        raise AssertionError(
            f"timed out after {timeout:g}s waiting for {what} matching predicate; "
            f"received {len(items)} {what}: [{shown}{more}]; "
            f"requests={self.request_counts()} rejected={self.rejected_counts()} mode={self.mode!r}"
        )


# --------------------------------------------------------------------------- #
# gRPC servicers
# --------------------------------------------------------------------------- #


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # name fixed by the generated servicer
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._receiver._grpc_export("traces", request, context)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # name fixed by the generated servicer
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: Any
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._receiver._grpc_export("metrics", request, context)
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # name fixed by the generated servicer
        self, request: logs_service_pb2.ExportLogsServiceRequest, context: Any
    ) -> logs_service_pb2.ExportLogsServiceResponse:
        self._receiver._grpc_export("logs", request, context)
        return logs_service_pb2.ExportLogsServiceResponse()


# --------------------------------------------------------------------------- #
# HTTP server
# --------------------------------------------------------------------------- #


class _HttpError(Exception):
    """Abort the current request with ``status``; ``close`` when the body was not consumed."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return body
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if encoding == "deflate":
            # The OTel exporter sends zlib-wrapped data; some clients send raw deflate.
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)
    except (OSError, EOFError, zlib.error) as exc:
        raise _HttpError(400, f"cannot decode {encoding} body: {exc}") from exc
    raise _HttpError(415, f"unsupported Content-Encoding {encoding!r}")


class _HttpHandler(BaseHTTPRequestHandler):
    """OTLP/HTTP protobuf handler that keeps HTTP/1.1 connections reusable."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate send() calls; with Nagle on, the
    # client's delayed ACK adds ~40 ms to every reply that has a body (measured: 43 ms per 503).
    disable_nagle_algorithm = True
    server_version = "beacon-otlp-receiver"
    sys_version = ""
    server: _HttpServer

    def do_POST(self) -> None:
        try:
            self._handle_post()
        except _HttpError as err:
            self._reply(
                err.status,
                _rpc_status(_GRPC_INVALID_ARGUMENT, err.message),
                close=err.close,
            )

    def _handle_post(self) -> None:
        body = self._read_body()  # always consume the body so the connection stays in sync
        signal = _PATH_TO_SIGNAL.get(self.path.split("?", 1)[0])
        if signal is None:
            raise _HttpError(404, f"no OTLP signal at {self.path}")
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type not in _PROTOBUF_CONTENT_TYPES:
            raise _HttpError(415, f"only application/x-protobuf is supported, got {content_type!r}")
        payload = _decompress(body, self.headers.get("Content-Encoding", ""))
        try:
            request = _REQUEST_TYPES[signal].FromString(payload)
        except DecodeError as exc:
            raise _HttpError(400, f"invalid protobuf: {exc}") from exc
        headers = _merge_headers(self.headers.items())
        if self.server.receiver._ingest(signal, request, payload, headers, "http"):
            # An empty Export*ServiceResponse serializes to zero bytes.
            self._reply(200, b"")
        else:
            self._reply(
                503,
                _rpc_status(_GRPC_UNAVAILABLE, _UNAVAILABLE_MESSAGE),
                extra=(("Retry-After", "1"),),
            )

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in _PATH_TO_SIGNAL:
            self._reply(405, b"", extra=(("Allow", "POST"),))
        else:
            self._reply(404, b"")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _HttpError(411, "Content-Length required", close=True)
        try:
            length = int(length_header)
        except ValueError:
            raise _HttpError(400, f"bad Content-Length {length_header!r}", close=True) from None
        if length < 0:
            raise _HttpError(400, f"bad Content-Length {length_header!r}", close=True)
        if length > _MAX_BODY_BYTES:
            raise _HttpError(413, f"body of {length} bytes exceeds {_MAX_BODY_BYTES}", close=True)
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionResetError("client closed the connection mid-body")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "malformed chunk size", close=True) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # discard trailers
                return b"".join(parts)
            total += size
            if total > _MAX_BODY_BYTES:
                raise _HttpError(413, f"chunked body exceeds {_MAX_BODY_BYTES}", close=True)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)  # CRLF after each chunk

    def _reply(
        self,
        status: int,
        body: bytes,
        *,
        extra: Sequence[tuple[str, str]] = (),
        close: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr lines; benchmarks send millions."""


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its receiver and its open connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _HttpHandler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's socket.getfqdn(), a reverse-DNS lookup that can stall."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (e.g. timing out in slow mode) are routine, not errors."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        _log.warning(
            "error while serving OTLP/HTTP request from %s",
            client_address,
            exc_info=True,
        )


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def main(argv: Sequence[str] | None = None) -> int:
    """Run a counting-only receiver in the foreground until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m beacon_otel.testing.otlp_receiver",
        description="Loopback OTLP receiver (gRPC + HTTP/protobuf) that counts what it receives.",
    )
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (0 = ephemeral)")
    parser.add_argument("--http-port", type=int, default=0, help="HTTP port (0 = ephemeral)")
    parser.add_argument("--quiet", action="store_true", help="only print the ready and summary lines")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.ERROR if args.quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)

    receiver = OtlpReceiver(grpc_port=args.grpc_port, http_port=args.http_port, keep=False)
    with receiver:
        print(f"ready grpc={receiver.grpc_port} http={receiver.http_port}", flush=True)
        stop.wait()
    print(json.dumps(receiver.stats(), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
