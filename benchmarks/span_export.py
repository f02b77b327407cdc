"""CPU cost of turning finished spans into OTLP bytes: the upstream encoder vs beacon-otel's.

Both encode the same batches of real SDK spans (a server span with the attributes beacon-otel
records, an httpx client span, an asyncpg span) in the same process, alternately, and the
median of ``--rounds`` rounds is reported as µs per span and as a ratio.

    python -m benchmarks.span_export [--batch 512] [--rounds 15] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from beacon_otel.export.span_encoding import SpanBatchEncoder
from benchmarks.common import machine_line, replace_section


def realistic_spans(count: int) -> Sequence[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "hybrid-router"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for index in range(count // 3 + 1):
        server = tracer.start_span(
            "GET /providers",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "url.scheme": "http",
                "url.path": "/providers",
                "server.address": "127.0.0.1",
                "server.port": 8080,
                "client.address": "10.0.0.7",
                "network.protocol.version": "1.1",
                "user_agent.original": "Go-http-client/1.1",
            },
        )
        server.set_attributes({"http.route": "/providers", "http.response.status_code": 200})
        client = tracer.start_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "GET",
                "url.full": f"http://golem-us.internal:9001/health?n={index}",
                "server.address": "golem-us.internal",
                "server.port": 9001,
                "http.response.status_code": 200,
            },
        )
        client.end()
        database = tracer.start_span(
            "INSERT",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.statement": "INSERT INTO demo_requests (model, provider, success) VALUES ($1, $2, $3)",
                "net.peer.name": "127.0.0.1",
                "net.peer.port": 5432,
            },
        )
        database.end()
        server.end()
    return memory.get_finished_spans()[:count]


def per_span_us(encode: Callable[[Sequence[ReadableSpan]], bytes], spans: Sequence[ReadableSpan]) -> float:
    started = time.perf_counter()
    encode(spans)
    return (time.perf_counter() - started) / len(spans) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)

    spans = realistic_spans(args.batch)
    ours = SpanBatchEncoder()

    def upstream(batch: Sequence[ReadableSpan]) -> bytes:
        return encode_spans(batch).SerializeToString()

    upstream_us, ours_us = [], []
    for _ in range(args.rounds):
        upstream_us.append(per_span_us(upstream, spans))
        ours_us.append(per_span_us(ours.encode, spans))
    up, me = statistics.median(upstream_us), statistics.median(ours_us)
    report = "\n".join(
        [
            "## Span encoding: upstream OTLP encoder vs beacon-otel's",
            "",
            f"Command: `python -m benchmarks.span_export --batch {args.batch} --rounds {args.rounds}` "
            f"(machine: {machine_line()}). Batches of {args.batch} real SDK spans (server, httpx "
            "client and asyncpg spans, one third each), median of the rounds.",
            "",
            "| encoder | µs per span | ratio |",
            "|---|---:|---:|",
            f"| upstream `encode_spans(...).SerializeToString()` | {up:.1f} | 1.00x |",
            f"| beacon-otel `SpanBatchEncoder.encode` | {me:.1f} | {me / up:.2f}x |",
        ]
    )
    print(report)
    if args.write:
        replace_section(args.write, "span-encoding", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
