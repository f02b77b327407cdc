"""The direct log record encoder decodes to what the upstream OTLP encoder produces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from beacon_otel.export.encoded_queue import EncodedBatchQueue
from beacon_otel.export.log_encoding import EncodedLogRecordProcessor, LogBatchEncoder
from beacon_otel.export.reporting import ExportReporter
from beacon_otel.scrubbing import Scrubber
from beacon_otel.settings import BatchSettings

RESOURCE = Resource.create({"service.name": "router", "deployment.environment.name": "test"})


def _records(emit: Any) -> Sequence[ReadableLogRecord]:
    provider = LoggerProvider(resource=RESOURCE)
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    emit(provider)
    return memory.get_finished_logs()


def _ours(
    records: Sequence[ReadableLogRecord], encoder: LogBatchEncoder | None = None
) -> ExportLogsServiceRequest:
    encoder = encoder or LogBatchEncoder()
    return ExportLogsServiceRequest.FromString(
        encoder.assemble(encoder.encode_sdk_record(record) for record in records)
    )


def _emit_varied(provider: LoggerProvider) -> None:
    router = provider.get_logger("demo_router", "1.0")
    httpx_logger = provider.get_logger("httpx")
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("request"):
        router.emit(
            body="Inference for llama-3 via golem-us",
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes={
                "provider": "golem-us",
                "attempt": 2,
                "latency_s": 1.25,
                "cached": False,
                "regions": ["us-east", "eu-west"],
                "limits": {"max_tokens": 128, "model": "llama-3"},
            },
            timestamp=1_700_000_000_123_456_789,
        )
    httpx_logger.emit(body="HTTP Request: GET http://p/health", severity_number=SeverityNumber.DEBUG)
    router.emit(body={"structured": ["body", 1]}, severity_number=SeverityNumber.ERROR, event_name="failure")
    router.emit(body=None, severity_number=SeverityNumber.WARN, attributes={"empty": ""})


def test_sdk_records_decode_like_upstream() -> None:
    records = _records(_emit_varied)
    assert _ours(records) == encode_logs(records)


def test_records_of_other_resources_are_grouped_apart() -> None:
    records = list(_records(_emit_varied))
    other = LoggerProvider(resource=Resource.create({"service.name": "sink"}))
    memory = InMemoryLogRecordExporter()
    other.add_log_record_processor(SimpleLogRecordProcessor(memory))
    other.get_logger("sink").emit(body="row written", severity_number=SeverityNumber.INFO)
    mixed = [records[0], *memory.get_finished_logs(), *records[1:]]
    ours = _ours(mixed)
    assert [len(r.scope_logs) for r in ours.resource_logs] == [2, 1]
    assert sorted(ours.SerializeToString()) == sorted(encode_logs(mixed).SerializeToString())


def test_direct_records_carry_ids_severity_and_typed_attributes() -> None:
    encoder = LogBatchEncoder(RESOURCE)
    encoded = encoder.encode_record(
        time_ns=1_700_000_000_000_000_001,
        observed_ns=1_700_000_000_000_000_002,
        severity_number=13,
        severity_text="WARNING",
        body="provider slow",
        attributes={"provider": "golem-us", "latency_s": 1.5, "attempt": 3, "ok": True},
        trace_id=0x6F1C2D3E4F5061728394A5B6C7D8E9F0,
        span_id=0x0123456789ABCDEF,
        trace_flags=1,
    )
    request = ExportLogsServiceRequest.FromString(
        encoder.assemble([(encoder.origin_for_logger("router"), encoded)])
    )
    (resource_logs,) = request.resource_logs
    assert {kv.key: kv.value.string_value for kv in resource_logs.resource.attributes}[
        "service.name"
    ] == "router"
    (scope_logs,) = resource_logs.scope_logs
    assert scope_logs.scope.name == "router"
    (record,) = scope_logs.log_records
    assert record.time_unix_nano == 1_700_000_000_000_000_001
    assert record.observed_time_unix_nano == 1_700_000_000_000_000_002
    assert (record.severity_number, record.severity_text) == (13, "WARNING")
    assert record.body.string_value == "provider slow"
    assert record.trace_id.hex() == "6f1c2d3e4f5061728394a5b6c7d8e9f0"
    assert record.span_id.hex() == "0123456789abcdef"
    assert record.flags == 1
    values = {kv.key: kv.value for kv in record.attributes}
    assert values["provider"].string_value == "golem-us"
    assert values["latency_s"].double_value == 1.5
    assert values["attempt"].int_value == 3
    assert values["ok"].bool_value is True


def test_sdk_record_attributes_and_body_are_scrubbed() -> None:
    def emit(provider: LoggerProvider) -> None:
        provider.get_logger("x").emit(
            body="GET https://api.example/v1?api_key=SECRET1",
            attributes={"authorization": "Bearer SECRET2", "url.full": "https://u:SECRET3@db/x"},
        )

    data = _ours(_records(emit), LogBatchEncoder(scrubber=Scrubber())).SerializeToString()
    assert b"SECRET" not in data
    assert data.count(b"[scrubbed]") == 3


@pytest.mark.parametrize("records", [1, 5])
def test_api_records_go_through_the_encoded_queue(records: int) -> None:
    sent: list[tuple[bytes, int]] = []

    class Recording:
        def export_payload(self, payload: bytes, count: int) -> bool:
            sent.append((payload, count))
            return True

        def shutdown(self) -> None:
            pass

    encoder = LogBatchEncoder(RESOURCE)
    reporter = ExportReporter()
    queue = EncodedBatchQueue("logs", Recording(), encoder, BatchSettings(schedule_delay_ms=50), reporter)
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(EncodedLogRecordProcessor(queue, encoder))
    for number in range(records):
        provider.get_logger("api").emit(body=f"record {number}", severity_number=SeverityNumber.INFO)
    assert provider.force_flush(5000)
    assert sum(count for _, count in sent) == records
    bodies = [
        record.body.string_value
        for payload, _ in sent
        for resource_logs in ExportLogsServiceRequest.FromString(payload).resource_logs
        for scope_logs in resource_logs.scope_logs
        for record in scope_logs.log_records
    ]
    assert bodies == [f"record {number}" for number in range(records)]
    provider.shutdown()
