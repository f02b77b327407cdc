"""The encoded span queue: batching, flushing, bounds, and requests that decode."""

from __future__ import annotations

import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from beacon_otel.export.reporting import ExportReporter
from beacon_otel.export.span_queue import EncodedBatchSpanProcessor
from beacon_otel.settings import BatchSettings
from tests.support.otlp import RecordingPayloadExporter


def make(
    batch: BatchSettings,
) -> tuple[EncodedBatchSpanProcessor, RecordingPayloadExporter, TracerProvider, ExportReporter]:
    exporter = RecordingPayloadExporter()
    reporter = ExportReporter(interval=60)
    processor = EncodedBatchSpanProcessor(exporter, batch, reporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "queue-test"}))
    provider.add_span_processor(processor)
    return processor, exporter, provider, reporter


def test_full_batches_leave_at_once_and_decode() -> None:
    processor, exporter, provider, _ = make(
        BatchSettings(max_queue_size=100, schedule_delay_ms=60_000, max_export_batch_size=10)
    )
    tracer = provider.get_tracer("a")
    for index in range(25):
        tracer.start_span(f"span-{index}").end()
    deadline = time.monotonic() + 5
    while sum(exporter.counts) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exporter.counts[:2] == [10, 10], "two full batches, the rest waits for the schedule"
    assert processor.force_flush(5000)
    assert exporter.span_names() == [f"span-{index}" for index in range(25)]
    resource = exporter.requests[0].resource_spans[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "queue-test"
    processor.shutdown()
    assert exporter.shut_down


def test_partial_batch_leaves_after_the_schedule_delay() -> None:
    processor, exporter, provider, _ = make(
        BatchSettings(max_queue_size=100, schedule_delay_ms=100, max_export_batch_size=50)
    )
    provider.get_tracer("a").start_span("lonely").end()
    assert exporter.sent.wait(5)
    assert exporter.span_names() == ["lonely"]
    processor.shutdown()


def test_spans_of_several_scopes_are_grouped_under_one_resource() -> None:
    processor, exporter, provider, _ = make(
        BatchSettings(max_queue_size=100, schedule_delay_ms=60_000, max_export_batch_size=50)
    )
    for scope in ("one", "two", "one"):
        provider.get_tracer(scope).start_span(f"from-{scope}").end()
    assert processor.force_flush(5000)
    (request,) = exporter.requests
    (resource_spans,) = request.resource_spans
    assert [(s.scope.name, [span.name for span in s.spans]) for s in resource_spans.scope_spans] == [
        ("one", ["from-one", "from-one"]),
        ("two", ["from-two"]),
    ]
    processor.shutdown()


def test_a_full_queue_drops_and_counts() -> None:
    processor, exporter, provider, reporter = make(
        BatchSettings(max_queue_size=5, schedule_delay_ms=60_000, max_export_batch_size=5)
    )
    exporter.export_payload = lambda payload, count: time.sleep(1) or True  # type: ignore[method-assign]
    tracer = provider.get_tracer("a")
    for index in range(40):
        tracer.start_span(f"span-{index}").end()
    assert reporter.dropped_total("traces") >= 40 - 5 - 5
    processor.shutdown()


def test_unsampled_spans_are_not_queued() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = RecordingPayloadExporter()
    processor = EncodedBatchSpanProcessor(exporter, BatchSettings(), ExportReporter())
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(processor)
    provider.get_tracer("a").start_span("dropped").end()
    assert processor.force_flush(1000)
    assert exporter.requests == []
    processor.shutdown()


def test_shutdown_exports_what_is_left() -> None:
    processor, exporter, provider, _ = make(
        BatchSettings(max_queue_size=100, schedule_delay_ms=60_000, max_export_batch_size=50)
    )
    provider.get_tracer("a").start_span("last words").end()
    processor.shutdown()
    assert exporter.span_names() == ["last words"]
