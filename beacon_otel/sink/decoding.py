"""From request bytes to an ``ExportTraceServiceRequest``, within limits the sender cannot exceed.

Every way a body can fail to decode is a :class:`Reply` with a 4xx status: the sender controls
these bytes, and a 5xx would make a Collector drop the batch's good spans with the bad. The
limits are checked before the expensive step they protect: the compressed size while reading,
the decompressed size while inflating, and the number of elements before parsing, counted on
the wire, because decoded size is not bounded by byte size (an empty element is 2 bytes on the
wire and about 64 bytes decoded).
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from beacon_otel.sink.reply import Reply


class DecodeLimits(NamedTuple):
    max_decompressed_bytes: int
    max_elements: int


# The wire-type-2 tags (field number < 16) of every message-typed field in the OTLP trace
# schema: resource_spans, resource, scope_spans, scope, spans, attributes (resource, scope, span,
# event, link), events, links, status, KeyValue.value, AnyValue.array_value/kvlist_value,
# ArrayValue.values, KeyValueList.values. Each decoded sub-message starts with one of these
# bytes on the wire, or, when the sender pads its tag varint (which decoders accept), with the
# same byte plus the continuation bit. Counting every byte of either form over-counts (the same
# values occur inside ids and strings) but can never under-count.
_MESSAGE_TAGS = (0x0A, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x4A, 0x5A, 0x6A, 0x7A)
_PROTOBUF_MARKS = bytes(1 if byte & 0x7F in _MESSAGE_TAGS else 0 for byte in range(256))
# In JSON every value opens a container or follows a comma.
_JSON_MARKS = bytes(1 if byte in b"{[," else 0 for byte in range(256))


def count_elements(body: bytes, as_json: bool) -> int:
    """An upper bound on the values a body decodes into, in two passes at memory speed."""
    return body.translate(_JSON_MARKS if as_json else _PROTOBUF_MARKS).count(1)


def decode(body: bytes, encoding: bytes, as_json: bool, limits: DecodeLimits) -> ExportTraceServiceRequest:
    """Decompress, check the element bound, parse; a :class:`Reply` for anything refused."""
    if encoding == b"gzip":
        body = gunzip(body, limits.max_decompressed_bytes)
    elif encoding not in (b"identity", b""):
        raise Reply(415, f"unsupported content encoding {encoding.decode('latin-1')!r}: use gzip or none")
    elements = count_elements(body, as_json)
    if elements > limits.max_elements:
        raise Reply(
            413,
            f"the body holds up to {elements} elements, over the {limits.max_elements} limit "
            "(BEACON_OTEL_SINK_MAX_ELEMENTS): send smaller batches",
        )
    return parse_json(body) if as_json else parse_protobuf(body)


def gunzip(body: bytes, limit: int) -> bytes:
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


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError, RecursionError) as error:
        raise Reply(400, f"the body is not an ExportTraceServiceRequest: {error}") from None
    return request


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
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
