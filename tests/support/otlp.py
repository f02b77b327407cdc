"""OTLP protobuf messages for tests and benchmarks: built by hand, or recorded as exported."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span


def add_attributes(pairs: Any, values: dict[str, Any]) -> None:
    """Append ``values`` to a repeated ``KeyValue`` field, each in the field its type calls for."""
    for key, value in values.items():
        pair: KeyValue = pairs.add()
        pair.key = key
        if isinstance(value, bool):
            pair.value.bool_value = value
        elif isinstance(value, int):
            pair.value.int_value = value
        elif isinstance(value, float):
            pair.value.double_value = value
        else:
            pair.value.string_value = value


class RecordingPayloadExporter:
    """The encoded export queue's exporter, for tests: keeps every request it is sent, as
    encoded, and answers ``accept``."""

    def __init__(self, accept: bool = True) -> None:
        self.payloads: list[bytes] = []
        self.counts: list[int] = []
        self.accept = accept
        self.shut_down = False
        self.sent = threading.Event()

    def export_payload(self, payload: bytes, count: int) -> bool:
        self.payloads.append(payload)
        self.counts.append(count)
        self.sent.set()
        return self.accept

    def shutdown(self) -> None:
        self.shut_down = True

    @property
    def requests(self) -> list[ExportTraceServiceRequest]:
        return [ExportTraceServiceRequest.FromString(payload) for payload in self.payloads]

    def exported(self) -> Iterator[tuple[ResourceSpans, ScopeSpans, Span]]:
        """Every span sent so far, with its resource and scope."""
        for request in self.requests:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        yield resource_spans, scope_spans, span

    def span_names(self) -> list[str]:
        return [span.name for _, _, span in self.exported()]
