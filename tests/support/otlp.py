"""Building OTLP protobuf messages by hand, for tests and benchmarks."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import KeyValue


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
