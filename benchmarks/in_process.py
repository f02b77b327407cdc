"""Per-operation cost of each beacon-otel fast path against its best upstream alternative, in one process.

beacon-otel replaces upstream parts with its own: the FastAPI server-span middleware, the httpx
and asyncpg client spans, "direct spans" (no SDK Span object when beacon-otel's encoded processor
is the only processor), the OTLP span encoder (``benchmarks/span_export.py`` measures it alone)
and the HTTP duration histogram. The wrk benchmarks show what the whole distro costs a server;
this one isolates each part, so that each gain is measured against the upstream option a careful
user would pick, on the same objects, in the same run:

* **server span per request**: one trivial FastAPI endpoint (``GET /health``), driven through
  the ASGI interface directly (no server, no sockets: the endpoint's own cost is the baseline,
  and nothing else blurs the difference): uninstrumented; the upstream instrumentation
  (``FastAPIInstrumentor.instrument_app``) with its defaults; the same with
  ``exclude_spans=["send", "receive"]``; FastAPI's own telemetry, with its default operation
  spans and without them; beacon-otel's middleware, installed by the distro's own hook;
* **httpx client call**: ``await client.get(...)`` with an ``httpx.AsyncClient``, sequentially,
  against the demo's fake provider in a process of its own on loopback (a real transport and
  connection pool: what beacon-otel wraps is httpx's transport, which a MockTransport would
  replace; the server's CPU is not this process's): uninstrumented; upstream
  ``HTTPXClientInstrumentor.instrument_client``; beacon-otel's transport wrappers;
* **asyncpg statement**: ``await connection.fetchval("SELECT 1")`` on a throwaway Postgres
  (``--no-postgres`` skips it): uninstrumented; upstream ``AsyncPGInstrumentor``; beacon-otel's
  statement wrappers;
* **a span from start_span to exported bytes**: a server span with the attributes the
  middleware sets, through the SDK span and upstream ``BatchSpanProcessor`` + OTLP exporter; the
  SDK span and beacon-otel's ``EncodedBatchSpanProcessor``; a direct span and the same processor;
* **HTTP duration histogram**: the SDK's ``Histogram.record`` against ``FastHttpMetrics``.

Every telemetry pipeline is real: beacon-otel's providers come from ``beacon_otel.sdk``
(``build_telemetry`` + ``install``, as the distro starts, OTLP/HTTP traces and metrics, default
settings), and its instrumentations are applied by the distro's own hooks (to a subclass of
``FastAPI`` and of httpx's transports, so that the other variants keep the plain classes; to
asyncpg's classes, restored after each round). The upstream pipeline is an SDK
``TracerProvider`` with ``BatchSpanProcessor`` and a ``MeterProvider`` with a periodic reader,
default settings, passed to the upstream instrumentations. FastAPI's own telemetry is off in
every app but its own rows, as beacon-otel's hook turns it off. Only the network is taken out:
every OTLP exporter (beacon-otel's and upstream's) gets a ``requests`` session whose adapter
answers 200 without a socket. Each timed batch ends with the tracer provider's ``force_flush``,
so every span it created is encoded and handed to that adapter within the batch, even when the
upstream processor encodes in its export thread; the batches are small enough that no processor
queue can fill and drop spans (checked). Before timing, each variant serves a few operations and
the spans it exported are decoded and counted.

Figures: µs per operation, wall clock and CPU (``time.process_time``: every thread of the
process, the export threads included) and the calling thread's share of that CPU before the
flush (what the operation itself pays), the median of ``--rounds`` rounds, the variants taking
turns within a round (the order rotating from round to round); "added" and the ratio compare
with the first variant of the same table: the median over the rounds of the difference (ratio)
within each round. Every round's CPU figure is printed.

    python -m benchmarks.in_process [--rounds 31] [--requests 300] [--calls 200] [--statements 300]
                                    [--spans 1000] [--records 20000] [--no-postgres]
                                    [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import httpx
import requests
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from beacon_otel import _upstream
from beacon_otel.export import exporters as beacon_exporters
from beacon_otel.instrumentation.clients import instrument_asyncpg, instrument_httpx
from beacon_otel.instrumentation.direct_span import DirectSpanStarter
from beacon_otel.instrumentation.fast_path import why_not_direct
from beacon_otel.instrumentation.http_series import DURATION_BUCKETS
from beacon_otel.instrumentation.web import instrument_fastapi
from beacon_otel.sdk import Telemetry, build_propagator, build_telemetry, install
from beacon_otel.settings import Settings, load_settings
from benchmarks.common import base_env, free_port, machine_line, replace_section, running, wait_http

ENDPOINT = "http://127.0.0.1:4318"  # never connected to: every session below answers itself
TABLES = ("server", "httpx", "asyncpg", "spans", "histogram")

# What beacon-otel's server middleware records for GET /health (direct spans are given this dict).
SERVER_ATTRIBUTES: Mapping[str, Any] = {
    "http.request.method": "GET",
    "url.scheme": "http",
    "url.path": "/health",
    "server.address": "127.0.0.1",
    "server.port": 8080,
    "client.address": "127.0.0.1",
    "network.protocol.version": "1.1",
    "user_agent.original": "wrk/4.2.0",
}
END_ATTRIBUTES: Mapping[str, Any] = {"http.route": "/health", "http.response.status_code": 200}


# -- the network, taken out ------------------------------------------------------------------------


class NoNetwork(requests.adapters.BaseAdapter):
    """A ``requests`` adapter that answers every OTLP export with 200 and an empty body, without a
    socket. While ``counting``, it decodes trace exports and counts their spans by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counting = False
        self.spans: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        if self.counting and request.url.endswith("/v1/traces"):
            decoded = ExportTraceServiceRequest.FromString(request.body or b"")
            with self.lock:
                for resource_spans in decoded.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        self.spans.update(span.name for span in scope_spans.spans)
        response = requests.Response()
        response.status_code = 200
        response._content = b""
        response.headers["Content-Type"] = "application/x-protobuf"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        return None

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount("http://", self)
        session.mount("https://", self)
        return session

    @contextmanager
    def count(self) -> Iterator[Counter[str]]:
        """Count the spans exported inside the block (the caller flushes before it ends)."""
        with self.lock:
            self.spans = Counter()
        self.counting = True
        try:
            yield self.spans
        finally:
            self.counting = False


NETWORK = NoNetwork()


class QueueFullCounter(logging.Handler):
    """Counts the SDK batch processor's "Queue full, dropping" warnings (a dropped span would
    flatter the upstream variants)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.drops = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Queue full" in record.getMessage():
            self.drops += 1


# -- the pipelines -----------------------------------------------------------------------------------


@dataclass
class Pipelines:
    settings: Settings
    telemetry: Telemetry  # beacon-otel's, installed as the global providers
    tracer_provider: TracerProvider  # upstream
    meter_provider: MeterProvider  # upstream
    beacon_propagator: Any
    default_propagator: Any
    queue_full: QueueFullCounter = field(default_factory=QueueFullCounter)

    def flush_upstream(self) -> None:
        self.tracer_provider.force_flush()

    def flush_beacon(self) -> None:
        self.telemetry.tracer_provider.force_flush()

    def dropped(self) -> int:
        return self.queue_full.drops + self.telemetry.reporter.dropped_total("traces")

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.telemetry.shutdown()


def _no_network_span_exporter(otlp: Any) -> Any:
    from beacon_otel.export.otlp_http import FastHttpSpanExporter

    return FastHttpSpanExporter(endpoint=f"{ENDPOINT}/v1/traces", session=NETWORK.session())


def _no_network_metric_exporter(otlp: Any) -> Any:
    return OTLPMetricExporter(endpoint=f"{ENDPOINT}/v1/metrics", session=NETWORK.session())


def build_pipelines() -> Pipelines:
    """beacon-otel's providers as the distro builds them (OTLP/HTTP traces and metrics, default
    batch and sampler settings), and the upstream ones with the SDK's defaults."""
    settings = load_settings(
        {
            "OTEL_SERVICE_NAME": "bench-router",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
        }
    )
    # The exporters the distro would build, with the no-network session in place of the socket.
    with (
        mock.patch.object(beacon_exporters, "otlp_span_exporter", _no_network_span_exporter),
        mock.patch.object(beacon_exporters, "otlp_metric_exporter", _no_network_metric_exporter),
    ):
        telemetry = build_telemetry(settings)
    install(telemetry)

    resource = telemetry.tracer_provider.resource
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{ENDPOINT}/v1/traces", session=NETWORK.session()))
    )
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(_no_network_metric_exporter(None))],
    )
    pipelines = Pipelines(
        settings,
        telemetry,
        tracer_provider,
        meter_provider,
        beacon_propagator=build_propagator(settings),
        default_propagator=CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]),
    )
    logging.getLogger("opentelemetry.sdk._shared_internal").addHandler(pipelines.queue_full)
    return pipelines


# -- timing ------------------------------------------------------------------------------------------


@dataclass
class Sample:
    wall_us: float  # per operation, flush included
    cpu_us: float  # process CPU per operation, flush included
    thread_us: float  # calling thread's CPU per operation, until the last operation returned


@dataclass
class Variant:
    name: str
    run: Callable[[int], Any]  # runs n operations (a coroutine function for the async tables)
    flush: Callable[[], None] = lambda: None
    propagator: Any = None
    setup: Callable[[], None] = lambda: None
    teardown: Callable[[], None] = lambda: None
    samples: list[Sample] = field(default_factory=list)
    spans_per_op: float | None = None
    span_names: str = ""

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(sample, attribute) for sample in self.samples))

    def against(self, base: Variant) -> tuple[float, float]:
        """The CPU added to ``base``'s and the ratio to it, each the median over the rounds of the
        figures of one round (taken seconds apart): the machine's drift from round to round
        cancels out."""
        pairs = list(zip(self.samples, base.samples, strict=True))
        added = statistics.median(mine.cpu_us - theirs.cpu_us for mine, theirs in pairs)
        ratio = statistics.median(mine.cpu_us / theirs.cpu_us for mine, theirs in pairs)
        return float(added), float(ratio)


def _begin(variant: Variant) -> tuple[float, float, float]:
    if variant.propagator is not None:
        propagate.set_global_textmap(variant.propagator)
    gc.collect()
    return time.perf_counter(), time.process_time(), time.thread_time()


def _end(variant: Variant, n: int, started: tuple[float, float, float], thread_end: float) -> Sample:
    variant.flush()
    wall, cpu = time.perf_counter(), time.process_time()
    return Sample(
        (wall - started[0]) / n * 1e6, (cpu - started[1]) / n * 1e6, (thread_end - started[2]) / n * 1e6
    )


def measure_sync(variant: Variant, n: int) -> Sample:
    variant.setup()
    try:
        started = _begin(variant)
        variant.run(n)
        return _end(variant, n, started, time.thread_time())
    finally:
        variant.teardown()


async def measure_async(variant: Variant, n: int) -> Sample:
    variant.setup()
    try:
        started = _begin(variant)
        await variant.run(n)
        return _end(variant, n, started, time.thread_time())
    finally:
        variant.teardown()


def rotations(variants: list[Variant], rounds: int) -> Iterator[list[Variant]]:
    for round_index in range(rounds):
        shift = round_index % len(variants)
        yield variants[shift:] + variants[:shift]


def check_spans(pipelines: Pipelines, variant: Variant, spans: Counter[str], n: int) -> None:
    variant.spans_per_op = sum(spans.values()) / n
    variant.span_names = ", ".join(f"{name} x{count / n:g}" for name, count in sorted(spans.items()))
    print(f"  {variant.name}: {variant.spans_per_op:g} spans per operation ({variant.span_names or 'none'})")


def print_rounds(variants: list[Variant]) -> None:
    """Every round's CPU per operation, for judging the spread (not written to the docs)."""
    for variant in variants:
        rounds = " ".join(f"{sample.cpu_us:.1f}" for sample in variant.samples)
        print(f"  {variant.name}: CPU µs per operation by round: {rounds}")


def run_sync_table(pipelines: Pipelines, variants: list[Variant], n: int, rounds: int, check: int) -> None:
    for variant in variants:
        with NETWORK.count() as spans:
            measure_sync(variant, check)
            pipelines.flush_upstream()
            pipelines.flush_beacon()
        check_spans(pipelines, variant, spans, check)
        measure_sync(variant, n)  # warm-up
    for order in rotations(variants, rounds):
        for variant in order:
            variant.samples.append(measure_sync(variant, n))
    print_rounds(variants)


async def run_async_table(
    pipelines: Pipelines, variants: list[Variant], n: int, rounds: int, check: int
) -> None:
    for variant in variants:
        with NETWORK.count() as spans:
            await measure_async(variant, check)
            pipelines.flush_upstream()
            pipelines.flush_beacon()
        check_spans(pipelines, variant, spans, check)
        await measure_async(variant, n)  # warm-up
    for order in rotations(variants, rounds):
        for variant in order:
            variant.samples.append(await measure_async(variant, n))
    print_rounds(variants)


# -- server span per request ---------------------------------------------------------------------


def _request_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 51000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/health",
        "raw_path": b"/health",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk/4.2.0"), (b"accept", b"*/*")],
        "state": {},
    }


OFF = {"tracing": False, "metrics": False, "logs": False}  # FastAPI's own telemetry, off


def _module(name: str, **attributes: Any) -> ModuleType:
    """A stand-in for a library module, holding the subclasses a distro hook is to patch."""
    module = ModuleType(f"bench_{name}")
    for attribute, value in attributes.items():
        setattr(module, attribute, value)
    return module


def _app(cls: type[FastAPI] = FastAPI, **options: Any) -> FastAPI:
    app = cls(**options)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _driver(app: Any) -> Callable[[int], Awaitable[None]]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run(n: int) -> None:
        statuses.clear()
        for _ in range(n):
            await app(_request_scope(), receive, send)
        if statuses.count(200) != n:
            raise RuntimeError(f"{n} requests got {Counter(statuses)}")

    return run


def server_variants(pipelines: Pipelines) -> list[Variant]:
    tracer_provider, meter_provider = pipelines.tracer_provider, pipelines.meter_provider
    default = _app(telemetry=OFF)
    FastAPIInstrumentor.instrument_app(
        default, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    tuned = _app(telemetry=OFF)
    FastAPIInstrumentor.instrument_app(
        tuned,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        exclude_spans=["send", "receive"],
    )
    upstream = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    native = _app(telemetry={**upstream, "logger_provider": _logger_provider(pipelines)})
    native_lean = _app(
        telemetry={**upstream, "logger_provider": _logger_provider(pipelines), "operation_spans": False}
    )

    # beacon-otel's hook for the fastapi module, applied to a subclass so that the other apps of
    # this process keep the plain class.
    class BeaconFastAPI(FastAPI):
        __init__ = FastAPI.__init__
        build_middleware_stack = FastAPI.build_middleware_stack

    propagate.set_global_textmap(pipelines.beacon_propagator)  # the middleware reads its fields
    instrument_fastapi(_module("fastapi", FastAPI=BeaconFastAPI), pipelines.settings)
    beacon = _app(BeaconFastAPI)

    up, bo, plain = pipelines.flush_upstream, pipelines.flush_beacon, pipelines.default_propagator
    return [
        Variant("uninstrumented", _driver(_app(telemetry=OFF)), propagator=plain),
        Variant("upstream `FastAPIInstrumentor.instrument_app`, defaults", _driver(default), up, plain),
        Variant(
            'upstream `FastAPIInstrumentor.instrument_app`, `exclude_spans=["send", "receive"]`',
            _driver(tuned),
            up,
            plain,
        ),
        Variant("FastAPI's own telemetry, defaults (operation spans on)", _driver(native), up, plain),
        Variant("FastAPI's own telemetry, `operation_spans: False`", _driver(native_lean), up, plain),
        Variant(
            "beacon-otel `ServerSpanMiddleware` (direct spans)",
            _driver(beacon),
            bo,
            pipelines.beacon_propagator,
        ),
    ]


def _logger_provider(pipelines: Pipelines) -> Any:
    """An SDK logger provider for FastAPI's own exception logs (none is written here)."""
    provider = getattr(pipelines, "_sdk_logger_provider", None)
    if provider is None:
        provider = _upstream.LoggerProvider(resource=pipelines.tracer_provider.resource)
        pipelines._sdk_logger_provider = provider  # type: ignore[attr-defined]
    return provider


# -- httpx client call ---------------------------------------------------------------------------


def httpx_variants(pipelines: Pipelines, url: str) -> tuple[list[Variant], list[httpx.AsyncClient]]:
    plain = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport())
    upstream = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport())
    HTTPXClientInstrumentor.instrument_client(
        upstream, tracer_provider=pipelines.tracer_provider, meter_provider=pipelines.meter_provider
    )

    # beacon-otel's hook for the httpx module, applied to subclasses of its transports.
    class Transport(httpx.HTTPTransport):
        handle_request = httpx.HTTPTransport.handle_request

    class AsyncTransport(httpx.AsyncHTTPTransport):
        handle_async_request = httpx.AsyncHTTPTransport.handle_async_request

    instrument_httpx(
        _module("httpx", HTTPTransport=Transport, AsyncHTTPTransport=AsyncTransport), pipelines.settings
    )
    beacon = httpx.AsyncClient(transport=AsyncTransport())

    def calls(client: httpx.AsyncClient) -> Callable[[int], Awaitable[None]]:
        async def run(n: int) -> None:
            for _ in range(n):
                response = await client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")

        return run

    variants = [
        Variant("uninstrumented", calls(plain), propagator=pipelines.default_propagator),
        Variant(
            "upstream `HTTPXClientInstrumentor.instrument_client`",
            calls(upstream),
            pipelines.flush_upstream,
            pipelines.default_propagator,
        ),
        Variant(
            "beacon-otel transport wrappers (direct spans)",
            calls(beacon),
            pipelines.flush_beacon,
            pipelines.beacon_propagator,
        ),
    ]
    return variants, [plain, upstream, beacon]


async def httpx_table(pipelines: Pipelines, args: argparse.Namespace) -> list[Variant]:
    port = free_port()
    fakes = [sys.executable, "-m", "demo_router.fake_providers", "--port", str(port)]
    with running(fakes, base_env()):
        wait_http(f"http://127.0.0.1:{port}/control")
        variants, clients = httpx_variants(pipelines, f"http://127.0.0.1:{port}/p/golem-us/health")
        try:
            await run_async_table(pipelines, variants, args.calls, args.rounds, check=10)
        finally:
            for client in clients:
                await client.aclose()
    return variants


# -- asyncpg statement ---------------------------------------------------------------------------


def _asyncpg_methods() -> dict[tuple[type, str], Any]:
    """Every function of the asyncpg classes that send statements, to undo an instrumentation."""
    import asyncpg.connection
    import asyncpg.cursor
    import asyncpg.prepared_stmt

    classes = (
        asyncpg.connection.Connection,
        asyncpg.cursor.Cursor,
        asyncpg.cursor.CursorIterator,
        asyncpg.prepared_stmt.PreparedStatement,
    )
    return {(cls, name): value for cls in classes for name, value in vars(cls).items() if callable(value)}


def asyncpg_variants(pipelines: Pipelines, connection: Any) -> list[Variant]:
    import asyncpg

    originals = _asyncpg_methods()

    def restore() -> None:
        for (cls, name), value in originals.items():
            if cls.__dict__.get(name) is not value:
                setattr(cls, name, value)

    upstream = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]

    def upstream_on() -> None:
        upstream.instrument(tracer_provider=pipelines.tracer_provider, skip_dep_check=True)

    def upstream_off() -> None:
        upstream.uninstrument()
        restore()

    def beacon_on() -> None:
        instrument_asyncpg(asyncpg, pipelines.settings)

    async def statements(n: int) -> None:
        for _ in range(n):
            if await connection.fetchval("SELECT 1") != 1:
                raise RuntimeError("SELECT 1 did not answer 1")

    return [
        Variant("uninstrumented", statements, propagator=pipelines.default_propagator),
        Variant(
            "upstream `AsyncPGInstrumentor().instrument()`",
            statements,
            pipelines.flush_upstream,
            pipelines.default_propagator,
            setup=upstream_on,
            teardown=upstream_off,
        ),
        Variant(
            "beacon-otel statement wrappers (direct spans)",
            statements,
            pipelines.flush_beacon,
            pipelines.beacon_propagator,
            setup=beacon_on,
            teardown=restore,
        ),
    ]


async def asyncpg_table(pipelines: Pipelines, args: argparse.Namespace) -> list[Variant]:
    import asyncpg

    from beacon_otel.stack.postgres import start_postgres

    server = start_postgres()
    try:
        connection = await asyncpg.connect(server.dsn)
        try:
            variants = asyncpg_variants(pipelines, connection)
            await run_async_table(pipelines, variants, args.statements, args.rounds, check=10)
        finally:
            await connection.close()
    finally:
        server.destroy()
    return variants


# -- one span, start to bytes ---------------------------------------------------------------------


def span_variants(pipelines: Pipelines) -> list[Variant]:
    upstream_tracer = pipelines.tracer_provider.get_tracer("bench.server")
    beacon_tracer = pipelines.telemetry.tracer_provider.get_tracer("bench.server")
    reason = why_not_direct(beacon_tracer, _upstream.tracer_span_processors(beacon_tracer))
    if reason is not None:
        raise SystemExit(f"direct spans are off in this process: {reason}")
    starter = DirectSpanStarter(beacon_tracer, SpanKind.SERVER)

    def sdk_spans(tracer: Any) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                span = tracer.start_span("GET", kind=SpanKind.SERVER, attributes=dict(SERVER_ATTRIBUTES))
                span.update_name("GET /health")
                span.set_attributes(END_ATTRIBUTES)
                span.end()

        return run

    def direct_spans(n: int) -> None:
        for _ in range(n):
            span = starter.start("GET", None, dict(SERVER_ATTRIBUTES))
            span.update_name("GET /health")
            span.set_attributes(END_ATTRIBUTES)
            span.end()

    return [
        Variant(
            "SDK span, upstream `BatchSpanProcessor` + OTLP/HTTP exporter",
            sdk_spans(upstream_tracer),
            pipelines.flush_upstream,
        ),
        Variant(
            "SDK span, beacon-otel `EncodedBatchSpanProcessor`",
            sdk_spans(beacon_tracer),
            pipelines.flush_beacon,
        ),
        Variant("direct span, beacon-otel `EncodedBatchSpanProcessor`", direct_spans, pipelines.flush_beacon),
    ]


# -- HTTP duration histogram ---------------------------------------------------------------------


def histogram_variants(pipelines: Pipelines) -> list[Variant]:
    meter = pipelines.meter_provider.get_meter("bench.server")
    histogram = meter.create_histogram(
        "http.server.request.duration",
        unit="s",
        description="Duration of HTTP server requests.",
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
    )
    active = meter.create_up_down_counter("http.server.active_requests", unit="{request}")
    fast = pipelines.telemetry.http_metrics
    if fast is None:
        raise SystemExit("beacon-otel built no FastHttpMetrics")
    key = ("GET", "http", "/health", 200, None)
    # Every measurement is made under a sampled span, as a request's is, so that both sides pay
    # for the exemplar the default filter (trace_based) keeps: the SDK finds the span in the
    # current context, beacon-otel is handed it.
    request_span = trace.NonRecordingSpan(
        SpanContext(
            0x5B8EFFF798038103D269B633813FC60C, 0xEEE19B7EC3C1B174, False, TraceFlags(TraceFlags.SAMPLED)
        )
    )

    def attributes() -> dict[str, Any]:
        # What the instrumentation has at hand when the request ends, as the SDK needs it.
        method, scheme, route, status, _ = key
        return {
            "http.request.method": method,
            "url.scheme": scheme,
            "http.route": route,
            "http.response.status_code": status,
        }

    def sdk_record(n: int) -> None:
        with trace.use_span(request_span):
            for _ in range(n):
                histogram.record(0.0012, attributes())

    def fast_record(n: int) -> None:
        for _ in range(n):
            fast.request_ended(0.0012, key, request_span)

    def sdk_request(n: int) -> None:
        with trace.use_span(request_span):
            for _ in range(n):
                started = {"http.request.method": "GET", "url.scheme": "http"}
                active.add(1, started)
                histogram.record(0.0012, attributes())
                active.add(-1, started)

    def fast_request(n: int) -> None:
        for _ in range(n):
            fast.request_started("GET", "http")
            fast.request_ended(0.0012, key, request_span)

    return [
        Variant("SDK `Histogram.record`", sdk_record),
        Variant("beacon-otel `FastHttpMetrics.request_ended`", fast_record),
        Variant("SDK `Histogram.record` + `UpDownCounter.add` twice (active requests)", sdk_request),
        Variant("beacon-otel `FastHttpMetrics.request_started` + `request_ended`", fast_request),
    ]


# -- report --------------------------------------------------------------------------------------


def _versions() -> str:
    from importlib.metadata import version

    names = ("opentelemetry-sdk", "opentelemetry-instrumentation-fastapi", "fastapi", "httpx", "asyncpg")
    return ", ".join(f"{name} {version(name)}" for name in names)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


def _op_table(variants: list[Variant], unit: str) -> list[str]:
    base = variants[0]
    lines = [
        f"| variant | spans/{unit} | wall µs/{unit} | CPU µs/{unit} | of which request thread "
        "| CPU added µs | ratio (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in variants:
        cpu = variant.median("cpu_us")
        added, ratio = variant.against(base)
        lines.append(
            f"| {variant.name} | {variant.spans_per_op:g} | {variant.median('wall_us'):.1f} | {cpu:.1f} | "
            f"{variant.median('thread_us'):.1f} | {'' if variant is base else f'{added:+.1f}'} | "
            f"{ratio:.2f}x |"
        )
    return lines


def render(tables: dict[str, list[Variant]], args: argparse.Namespace, loads: tuple[str, str]) -> str:
    command = (
        f"python -m benchmarks.in_process --rounds {args.rounds} --requests {args.requests} "
        f"--calls {args.calls} --statements {args.statements} --spans {args.spans} --records {args.records}"
        + (" --no-postgres" if args.no_postgres else "")
    )
    lines = [
        "## In process: each fast path against its best upstream alternative",
        "",
        f"Command: `{command}` (machine: {machine_line()}; 1-minute load average {loads[0]} at the "
        f"start, {loads[1]} at the end; {_versions()}). One process, real SDK providers "
        "(beacon-otel's built by `beacon_otel.sdk` as the distro builds them; upstream: "
        "`BatchSpanProcessor` and a periodic metric reader, default settings), every OTLP/HTTP "
        "exporter sending to a `requests` adapter that answers 200 without a socket. Each figure is "
        f"the median of {args.rounds} rounds, the variants in turn (the added CPU and the ratios: the "
        "median of the figures within each round, against the table's first variant); a round's "
        "time ends after the "
        "tracer provider's `force_flush`, so it includes encoding and exporting every span of the "
        "round, whichever thread did it. CPU is the whole process's (`time.process_time`, export "
        'threads included); "request thread" is the part the calling thread spent before the flush, '
        "what the operation itself pays. The spans column counts the spans exported per operation, "
        "decoded before timing.",
    ]
    if "server" in tables:
        lines += [
            "",
            f"**Server span per request**: a trivial FastAPI endpoint (`GET /health` returning a small "
            f"JSON object), {args.requests} requests per round through the ASGI interface directly (no "
            "server: the baseline is FastAPI's own cost). FastAPI's own telemetry (this FastAPI has "
            "it) is off in every other app, as beacon-otel's hook turns it off; its rows write no log "
            "record on this endpoint.",
            "",
            *_op_table(tables["server"], "request"),
        ]
    if "httpx" in tables:
        lines += [
            "",
            f"**httpx client call**: `await client.get(...)` with an `httpx.AsyncClient`, {args.calls} "
            "sequential calls per round to the demo's fake provider (`GET /p/golem-us/health`, a "
            "uvicorn process of its own on loopback: the wall time includes its answer, the CPU is the "
            "client process's alone). beacon-otel's span injects `traceparent` and `X-Trace-Id`, "
            "upstream's `traceparent`.",
            "",
            *_op_table(tables["httpx"], "call"),
        ]
    if "asyncpg" in tables:
        lines += [
            "",
            f'**asyncpg statement**: `await connection.fetchval("SELECT 1")`, {args.statements} '
            "sequential statements per round on one connection to a throwaway Postgres on loopback "
            "(the CPU is this process's alone).",
            "",
            *_op_table(tables["asyncpg"], "statement"),
        ]
    if "spans" in tables:
        spans = tables["spans"]
        lines += [
            "",
            f"**A server span from `start_span` to exported bytes**: {args.spans} spans per round with "
            "the 8 attributes the middleware sets at the start and 2 at the end, and a rename. The "
            "upstream processor encodes in its export thread (or in `force_flush`), beacon-otel's "
            "when the span ends.",
            "",
            "| pipeline | wall µs/span | CPU µs/span | of which request thread | ratio (CPU) |",
            "|---|---:|---:|---:|---:|",
        ]
        for variant in spans:
            cpu = variant.median("cpu_us")
            lines.append(
                f"| {variant.name} | {variant.median('wall_us'):.1f} | {cpu:.1f} | "
                f"{variant.median('thread_us'):.1f} | {variant.against(spans[0])[1]:.2f}x |"
            )
    if "histogram" in tables:
        histogram = tables["histogram"]
        lines += [
            "",
            f"**HTTP duration histogram**: {args.records} iterations per round, one series (method, "
            "scheme, route, status), under a sampled span (so each keeps its exemplar, as a "
            "request's does under the default trace_based filter), one metric reader; "
            "an iteration is one duration, or one request's start and end with the active-request "
            "count.",
            "",
            "| aggregation | CPU µs/iteration | ratio |",
            "|---|---:|---:|",
        ]
        for pair in (histogram[:2], histogram[2:]):
            for variant in pair:
                ratio = variant.against(pair[0])[1]
                lines.append(f"| {variant.name} | {variant.median('cpu_us'):.2f} | {ratio:.2f}x |")
    return "\n".join(lines)


async def _async_tables(pipelines: Pipelines, args: argparse.Namespace) -> dict[str, list[Variant]]:
    tables: dict[str, list[Variant]] = {}
    if "server" in args.tables:
        print("server span per request")
        tables["server"] = server_variants(pipelines)
        await run_async_table(pipelines, tables["server"], args.requests, args.rounds, check=20)
    if "httpx" in args.tables:
        print("httpx client call")
        tables["httpx"] = await httpx_table(pipelines, args)
    if "asyncpg" in args.tables:
        print("asyncpg statement")
        tables["asyncpg"] = await asyncpg_table(pipelines, args)
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=31, help="rounds per table (the median is reported)")
    parser.add_argument("--requests", type=int, default=300, help="ASGI requests per variant and round")
    parser.add_argument("--calls", type=int, default=200, help="httpx calls per variant and round")
    parser.add_argument(
        "--statements", type=int, default=300, help="asyncpg statements per variant and round"
    )
    parser.add_argument("--spans", type=int, default=1000, help="spans per variant and round")
    parser.add_argument("--records", type=int, default=20000, help="histogram records per variant and round")
    parser.add_argument("--no-postgres", action="store_true", help="skip the asyncpg table")
    parser.add_argument(
        "--only", choices=TABLES, action="append", help="run only these tables (not with --write)"
    )
    parser.add_argument("--write", type=Path, help="update this markdown file's section with the results")
    args = parser.parse_args(argv)
    if args.only and args.write:
        parser.error("--write needs every table")
    args.tables = [table for table in args.only or TABLES if not (table == "asyncpg" and args.no_postgres)]
    # The SDK batch processor's queue (2,048) must hold a round's spans: none may be dropped.
    if max(args.requests * 5, args.spans) > 2048:
        parser.error("--requests (up to 5 spans each) and --spans must fit 2,048 queued spans")

    loads = (_load(), "")
    pipelines = build_pipelines()
    try:
        tables = asyncio.run(_async_tables(pipelines, args))
        if "spans" in args.tables:
            print("span from start_span to exported bytes")
            tables["spans"] = span_variants(pipelines)
            run_sync_table(pipelines, tables["spans"], args.spans, args.rounds, check=20)
        if "histogram" in args.tables:
            print("HTTP duration histogram")
            tables["histogram"] = histogram_variants(pipelines)
            run_sync_table(pipelines, tables["histogram"], args.records, args.rounds, check=1)
        if pipelines.dropped():
            raise SystemExit(f"{pipelines.dropped()} spans were dropped: the figures would flatter someone")
    finally:
        pipelines.shutdown()
    loads = (loads[0], _load())
    report = render(tables, args, loads)
    print(report)
    if args.write:
        replace_section(args.write, "in-process", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
