"""The log pipeline's pieces, in process: field helpers, renderers, the line writer, the pipeline
itself over a real SDK logger provider and real spans, and the stdlib takeover.

Every assertion is on real output: the rendered line parsed back with ``json.loads``, the records an
in-memory exporter received, the events of a real SDK span. The end-to-end behaviour (a real server,
a real OTLP receiver) is in ``test_logs.py``.
"""

from __future__ import annotations

import calendar
import copy
import datetime
import importlib
import io
import json
import logging
import logging.config
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from uvicorn.config import LOGGING_CONFIG

from beacon_otel.logs import fields
from beacon_otel.logs.access import ACCESS_LOGGER, AccessLineShortcut
from beacon_otel.logs.fields import (
    exception_fields,
    exception_summary,
    iso_utc,
    record_extras,
    resolve_exc_info,
    uvicorn_access_fields,
)
from beacon_otel.logs.otlp import SdkLogEmitter
from beacon_otel.logs.output import ConsoleRenderer, JsonRenderer, LineWriter
from beacon_otel.logs.pipeline import LogPipeline
from beacon_otel.logs.setup import configure_logging
from beacon_otel.logs.stdlib import PipelineHandler, StdlibTakeover
from beacon_otel.scrubbing import REDACTED, Scrubber
from beacon_otel.settings import load_settings

# 2026-11-27T04:30:00Z
EPOCH = 1_795_753_800
SERVICE = "svc-under-test"


# --- helpers ----------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"{name} is not valid JSON")


def parse_line(line: str) -> dict[str, Any]:
    """One line of strict JSON (no NaN/Infinity), an object."""
    assert "\n" not in line, line
    parsed = json.loads(line, parse_constant=_reject_constant)
    assert isinstance(parsed, dict), line
    return parsed


def parse_lines(output: str) -> list[dict[str, Any]]:
    return [parse_line(line) for line in output.splitlines()]


def make_record(
    name: str = "app",
    level: int = logging.INFO,
    msg: str = "hello",
    args: Any = (),
    extra: dict[str, Any] | None = None,
) -> logging.LogRecord:
    return logging.getLogger("beacon_test.records").makeRecord(
        name, level, __file__, 1, msg, args, None, extra=extra
    )


def raised(error: BaseException) -> BaseException:
    """``error``, raised and caught, so that it has a traceback."""
    try:
        raise error
    except BaseException as caught:
        return caught


class Outer:
    class InnerError(Exception):
        pass


# --- fields.iso_utc ---------------------------------------------------------------------------------


def test_iso_utc_exact_format() -> None:
    assert calendar.timegm((2026, 11, 27, 4, 30, 0)) == EPOCH
    assert iso_utc(EPOCH + 0.123456) == "2026-11-27T04:30:00.123456Z"
    assert iso_utc(EPOCH) == "2026-11-27T04:30:00.000000Z"


def test_iso_utc_across_second_minute_and_year_boundaries() -> None:
    new_year = calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert iso_utc(new_year - 0.5) == "2026-12-31T23:59:59.500000Z"
    assert iso_utc(new_year + 0.5) == "2027-01-01T00:00:00.500000Z"
    assert iso_utc(EPOCH + 0.75) == "2026-11-27T04:30:00.750000Z"
    assert iso_utc(EPOCH + 1.25) == "2026-11-27T04:30:01.250000Z"
    assert iso_utc(EPOCH + 60.0) == "2026-11-27T04:31:00.000000Z"
    # Back to a second already formatted once: the cache must not keep the later one.
    assert iso_utc(EPOCH + 0.25) == "2026-11-27T04:30:00.250000Z"


def test_iso_utc_two_epochs_in_the_same_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fields, "_second_prefix", (-1, ""))
    first, second = iso_utc(EPOCH + 0.25), iso_utc(EPOCH + 0.5)
    assert (first, second) == ("2026-11-27T04:30:00.250000Z", "2026-11-27T04:30:00.500000Z")
    assert iso_utc(EPOCH + 0.25) == first


def test_iso_utc_zero_pads_microseconds() -> None:
    # Fractions exact in binary floating point, so the expected digits are not a matter of rounding.
    assert iso_utc(EPOCH + 0.015625) == "2026-11-27T04:30:00.015625Z"
    assert iso_utc(0.000042) == "1970-01-01T00:00:00.000042Z"
    assert iso_utc(7.0) == "1970-01-01T00:00:07.000000Z"


def test_iso_utc_rounds_to_the_nearest_microsecond() -> None:
    for fraction, digits in [(0.1, "100000"), (0.3, "300000"), (0.000042, "000042"), (0.000001, "000001")]:
        expected = datetime.datetime.fromtimestamp(EPOCH + fraction, datetime.UTC)
        assert expected.strftime("%f") == digits
        assert iso_utc(EPOCH + fraction) == f"2026-11-27T04:30:00.{digits}Z"


# --- fields.record_extras ---------------------------------------------------------------------------


def test_record_extras_in_the_callers_order() -> None:
    record = make_record(
        extra={"zeta": 1, "alpha": "two", "_private": 3, "mid": [4], "color_message": "\x1b[32mhello\x1b[0m"}
    )
    extras = record_extras(record)
    assert list(extras.items()) == [("zeta", 1), ("alpha", "two"), ("mid", [4])]


def test_record_extras_ignore_standard_attributes_even_after_formatting() -> None:
    record = make_record(msg="%s and %s", args=("a", "b"), extra={"provider": "golem-us"})
    logging.Formatter("%(asctime)s %(message)s").format(record)  # sets record.message and asctime
    record.exc_text = "cached"
    assert record_extras(record) == {"provider": "golem-us"}


def test_record_extras_empty() -> None:
    assert record_extras(make_record()) == {}
    assert record_extras(make_record(extra={"_only_private": 1})) == {}
    assert record_extras(make_record(extra={"color_message": "x"})) == {}


# --- fields.uvicorn_access_fields -------------------------------------------------------------------

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'


def access_record(client: str, name: str = "uvicorn.access", args: Any = None) -> logging.LogRecord:
    if args is None:
        args = (client, "GET", "/x?y=1", "1.1", 200)
    return make_record(name=name, msg=ACCESS_FORMAT, args=args)


def test_uvicorn_access_fields_ipv4() -> None:
    got = uvicorn_access_fields(access_record("127.0.0.1:5000"))
    assert got["client.address"] == "127.0.0.1"
    assert got["client.port"] == 5000
    assert got["http.request.method"] == "GET"
    assert got["network.protocol.version"] == "1.1"
    assert got["http.response.status_code"] == 200
    assert got["url.path"].startswith("/x")


@pytest.mark.parametrize("client", ["[::1]:5000", "::1:5000"])  # uvicorn itself writes the latter
def test_uvicorn_access_fields_ipv6(client: str) -> None:
    got = uvicorn_access_fields(access_record(client))
    assert (got["client.address"], got["client.port"]) == ("::1", 5000)


def test_uvicorn_access_fields_client_without_port() -> None:
    got = uvicorn_access_fields(access_record("unix-socket"))
    assert got["client.address"] == "unix-socket" and "client.port" not in got


def test_uvicorn_access_fields_url_path_has_no_query() -> None:
    got = uvicorn_access_fields(access_record("127.0.0.1:5000"))
    assert got["url.path"] == "/x"
    assert got["url.query"] == "y=1"


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("uvicorn.error", ("127.0.0.1:5000", "GET", "/x", "1.1", 200)),
        ("app", ("127.0.0.1:5000", "GET", "/x", "1.1", 200)),
        ("uvicorn.access", ("127.0.0.1:5000", "GET", "/x", "1.1")),
        ("uvicorn.access", ("127.0.0.1:5000", "GET", "/x", "1.1", 200, "extra")),
        ("uvicorn.access", ({"client": "127.0.0.1:5000"},)),  # a single mapping becomes record.args
        ("uvicorn.access", ()),
    ],
)
def test_uvicorn_access_fields_other_records(name: str, args: Any) -> None:
    assert uvicorn_access_fields(make_record(name=name, msg="%s", args=args)) == {}


# --- fields.resolve_exc_info, exception_summary, exception_fields -----------------------------------


def test_resolve_exc_info_true_inside_and_outside_an_except_block() -> None:
    assert resolve_exc_info(True) is None
    try:
        raise KeyError("k")
    except KeyError as error:
        resolved = resolve_exc_info(True)
        assert resolved is not None
        assert resolved[0] is KeyError and resolved[1] is error and resolved[2] is error.__traceback__
    assert resolve_exc_info(True) is None


def test_resolve_exc_info_instance_and_tuple() -> None:
    error = raised(ValueError("v"))
    assert resolve_exc_info(error) == (ValueError, error, error.__traceback__)
    never_raised = RuntimeError("r")
    assert resolve_exc_info(never_raised) == (RuntimeError, never_raised, None)
    as_tuple = (ValueError, error, error.__traceback__)
    assert resolve_exc_info(as_tuple) == as_tuple
    assert resolve_exc_info((None, None, None)) is None
    assert resolve_exc_info((ValueError, error)) is None


@pytest.mark.parametrize("falsy", [None, False, 0, (), ""])
def test_resolve_exc_info_falsy(falsy: Any) -> None:
    try:
        raise ValueError("handled, but not asked for")
    except ValueError:
        assert resolve_exc_info(falsy) is None


def _exc_info(error: BaseException) -> tuple[type[BaseException], BaseException, TracebackType | None]:
    return type(error), error, error.__traceback__


def test_exception_type_qualified_unless_builtin() -> None:
    scrubber = Scrubber()
    try:
        json.loads("{broken")
    except json.JSONDecodeError as error:
        decode_error = error
    assert exception_summary(_exc_info(decode_error), scrubber)["exception.type"] == (
        "json.decoder.JSONDecodeError"
    )
    assert exception_summary(_exc_info(raised(ValueError("v"))), scrubber) == {
        "exception.type": "ValueError",
        "exception.message": "v",
    }
    nested = exception_summary(_exc_info(raised(Outer.InnerError("n"))), scrubber)
    assert nested["exception.type"] == f"{__name__}.Outer.InnerError"


def test_exception_fields_scrub_message_and_stacktrace() -> None:
    secret = "abc"
    error = raised(RuntimeError(f"GET https://x/y?api_key={secret} failed"))
    got = exception_fields(_exc_info(error), Scrubber())
    assert set(got) == {"exception.type", "exception.message", "exception.stacktrace"}
    assert got["exception.type"] == "RuntimeError"
    assert got["exception.message"] == f"GET https://x/y?api_key={REDACTED} failed"
    stacktrace = got["exception.stacktrace"]
    assert stacktrace.startswith("Traceback (most recent call last):")
    assert "in raised" in stacktrace
    assert stacktrace.rstrip().endswith(f"RuntimeError: GET https://x/y?api_key={REDACTED} failed")
    assert "api_key=abc" not in stacktrace


# --- output.JsonRenderer ----------------------------------------------------------------------------


@pytest.fixture
def render() -> JsonRenderer:
    return JsonRenderer(Scrubber())


def test_json_line_is_compact_ascii_and_one_line(render: JsonRenderer) -> None:
    line = render({"event": "h\u00e9llo \u2603\nnext", "n": 1, "ok": True, "none": None, "list": [1, "a"]})
    assert line == '{"event":"h\\u00e9llo \\u2603\\nnext","n":1,"ok":true,"none":null,"list":[1,"a"]}'
    assert line.isascii()
    assert parse_line(line)["event"] == "h\u00e9llo \u2603\nnext"


def test_json_nan_and_infinity_become_strings(render: JsonRenderer) -> None:
    line = render({"event": "e", "a": float("nan"), "b": float("inf"), "c": -float("inf"), "ok": 1.5})
    assert parse_line(line) == {"event": "e", "a": "nan", "b": "inf", "c": "-inf", "ok": 1.5}
    nested = parse_line(render({"event": "e", "values": [1.0, float("nan")], "n": 2}))
    assert nested["event"] == "e" and nested["n"] == 2
    assert isinstance(nested["values"], str) and "nan" in nested["values"]


def test_json_value_containing_itself(render: JsonRenderer) -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    parsed = parse_line(render({"event": "e", "loop": loop, "cycle": cycle, "n": 3}))
    assert parsed["event"] == "e" and parsed["n"] == 3
    assert parsed["loop"] == "[1, [...]]"
    assert parsed["cycle"] == "{'self': {...}}"


def test_json_objects_become_their_scrubbed_text(render: JsonRenderer) -> None:
    class Client:
        def __str__(self) -> str:
            return "Client url=https://h/p?token=abc region=eu"

    parsed = parse_line(render({"event": "e", "client": Client(), "clients": [Client()]}))
    assert parsed["client"] == f"Client url=https://h/p?token={REDACTED} region=eu"
    assert parsed["clients"] == [f"Client url=https://h/p?token={REDACTED} region=eu"]


def test_json_datetimes_sets_and_bytes(render: JsonRenderer) -> None:
    when = datetime.datetime(2026, 11, 27, 4, 30, 0, 123456, tzinfo=datetime.UTC)
    parsed = parse_line(
        render(
            {
                "at": when,
                "day": datetime.date(2026, 11, 27),
                "tags": {"gpu"},
                "regions": frozenset({"eu", "us"}),
                "raw": "caf\u00e9".encode(),
                "broken": b"\xff",
                "secret_bytes": b"token=abc",
            }
        )
    )
    assert parsed["at"] == "2026-11-27T04:30:00.123456+00:00"
    assert parsed["day"] == "2026-11-27"
    assert parsed["tags"] == ["gpu"]
    assert sorted(parsed["regions"]) == ["eu", "us"]
    assert parsed["raw"] == "caf\u00e9"
    assert parsed["broken"] == "\ufffd"
    assert parsed["secret_bytes"] == f"token={REDACTED}"


def test_json_dict_with_tuple_keys_still_yields_a_line(render: JsonRenderer) -> None:
    parsed = parse_line(render({"event": "e", "by_route": {("GET", "/x"): 3}}))
    assert parsed["event"] == "e"


# --- output.ConsoleRenderer -------------------------------------------------------------------------

BASE_EVENT = {"timestamp": "2026-11-27T04:30:00.000000Z", "logger": "app", "service.name": SERVICE}


def test_console_event_and_fields() -> None:
    text = ConsoleRenderer(colors=False)(
        {**BASE_EVENT, "level": "info", "event": "provider slow", "provider": "golem-us", "attempt": 2}
    )
    assert "provider slow" in text
    assert "provider=golem-us" in text and "attempt=2" in text
    assert "\x1b[" not in text


def test_console_exception_stacktrace_last_and_type_not_repeated() -> None:
    error = raised(ValueError("bad thing"))
    text = ConsoleRenderer(colors=False)(
        {**BASE_EVENT, "level": "error", "event": "failed", **exception_fields(_exc_info(error), Scrubber())}
    )
    assert "failed" in text
    assert "Traceback (most recent call last):" in text
    assert "ValueError: bad thing" in text
    assert "exception.type" not in text and "exception.message" not in text
    assert text.index("failed") < text.index("Traceback")


# --- output.LineWriter ------------------------------------------------------------------------------


def test_line_writer_follows_sys_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = LineWriter()
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    writer.write('{"n":1}')
    monkeypatch.setattr(sys, "stdout", second)
    writer.write('{"n":2}')
    assert (first.getvalue(), second.getvalue()) == ('{"n":1}\n', '{"n":2}\n')


class ChoppyStream(io.StringIO):
    """Takes each write in small pieces and lets other threads run in between, as a pipe may."""

    def write(self, text: str) -> int:
        for start in range(0, len(text), 24):
            super().write(text[start : start + 24])
            time.sleep(0)
        return len(text)


def test_line_writer_lines_from_threads_never_interleave() -> None:
    stream = ChoppyStream()
    writer = LineWriter(lambda: stream)
    threads_count, lines_each = 8, 500
    start = threading.Barrier(threads_count)

    def work(thread: int) -> None:
        start.wait()
        for i in range(lines_each):
            writer.write(f"<{thread}:{i}:{'x' * 40}>")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = stream.getvalue().split("\n")
    assert lines.pop() == ""
    assert len(lines) == threads_count * lines_each
    expected = {f"<{t}:{i}:{'x' * 40}>" for t in range(threads_count) for i in range(lines_each)}
    assert set(lines) == expected


def test_line_writer_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = io.StringIO()
    closed.close()
    LineWriter(lambda: closed).write("lost")

    class BrokenPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    LineWriter(lambda: BrokenPipe()).write("lost")
    monkeypatch.setattr(sys, "stdout", None)
    LineWriter().write("lost")


# --- pipeline.LogPipeline ---------------------------------------------------------------------------


@dataclass
class Harness:
    pipeline: LogPipeline
    out: io.StringIO
    exporter: InMemoryLogRecordExporter
    tracer: trace.Tracer
    handler: PipelineHandler

    def logger(self, name: str = "app.orders") -> logging.Logger:
        """A stdlib logger outside logging's registry (no global state), whose only handler is the
        pipeline's."""
        logger = logging.Logger(name, logging.DEBUG)
        logger.addHandler(self.handler)
        return logger

    def lines(self) -> list[dict[str, Any]]:
        return parse_lines(self.out.getvalue())

    def records(self) -> list[ReadableLogRecord]:
        return list(self.exporter.get_finished_logs())


def build_harness(exporter: InMemoryLogRecordExporter | None = None) -> Harness:
    out = io.StringIO()
    exporter = exporter or InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    scrubber = Scrubber()
    pipeline = LogPipeline(
        service_name=SERVICE,
        scrubber=scrubber,
        renderer=JsonRenderer(scrubber),
        writer=LineWriter(lambda: out),
        otlp=SdkLogEmitter(provider),
    )
    tracer = TracerProvider().get_tracer("beacon-test")
    return Harness(pipeline, out, exporter, tracer, PipelineHandler(pipeline))


@pytest.fixture
def harness() -> Harness:
    return build_harness()


def span_events(span: trace.Span) -> list[tuple[str, dict[str, Any]]]:
    assert isinstance(span, ReadableSpan)
    return [(event.name, dict(event.attributes or {})) for event in span.events]


def ids(span_context: SpanContext) -> tuple[str, str]:
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def test_stdlib_record_inside_a_span_carries_its_ids(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("op") as span:
        harness.logger().info("routed %s", "llama-3", extra={"provider": "golem-us"})
    context = span.get_span_context()
    (line,) = harness.lines()
    assert (line["trace_id"], line["span_id"]) == ids(context)
    assert len(line["trace_id"]) == 32 and len(line["span_id"]) == 16
    assert line["level"] == "info" and line["logger"] == "app.orders" and line["event"] == "routed llama-3"
    assert line["service.name"] == SERVICE and line["provider"] == "golem-us"
    assert line["timestamp"].endswith("Z")
    (record,) = harness.records()
    assert (record.log_record.trace_id, record.log_record.span_id) == (context.trace_id, context.span_id)
    assert span_events(span) == [], "an INFO record adds no span event"


def test_unsampled_span_ids_on_the_line_but_no_event(harness: Harness) -> None:
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("beacon-test")
    with tracer.start_as_current_span("op") as span:
        assert not span.is_recording()
        harness.logger().warning("slow")
    (line,) = harness.lines()
    assert (line["trace_id"], line["span_id"]) == ids(span.get_span_context())
    (record,) = harness.records()
    assert record.log_record.trace_id == span.get_span_context().trace_id


def test_remote_non_recording_span_ids_on_the_line(harness: Harness) -> None:
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
    with trace.use_span(NonRecordingSpan(context)):
        harness.logger().error("upstream failed")
    (line,) = harness.lines()
    assert (line["trace_id"], line["span_id"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    (record,) = harness.records()
    assert (record.log_record.trace_id, record.log_record.span_id) == (context.trace_id, context.span_id)


def test_no_ids_outside_any_span(harness: Harness) -> None:
    harness.logger().info("idle")
    (line,) = harness.lines()
    assert "trace_id" not in line and "span_id" not in line
    (record,) = harness.records()
    assert not record.log_record.trace_id and not record.log_record.span_id


def test_reserved_keys_kept_under_field_prefix(harness: Harness) -> None:
    line = parse_line(
        harness.pipeline.structlog_processor(
            None,
            "warning",
            {"event": "e", "level": "x", "timestamp": "t", "service.name": "other", "trace_id": "abc"},
        )
    )
    assert line["level"] == "warning" and line["event"] == "e" and line["service.name"] == SERVICE
    assert line["timestamp"].endswith("Z")
    assert "trace_id" not in line
    assert (
        line["field.level"],
        line["field.timestamp"],
        line["field.service.name"],
        line["field.trace_id"],
    ) == (
        "x",
        "t",
        "other",
        "abc",
    )

    harness.pipeline.emit(
        level_number=logging.INFO,
        level="info",
        logger_name="app.orders",
        message="m",
        fields={"logger": "x", "event": "y"},
        exc_info=None,
        created=EPOCH,
    )
    written = harness.lines()[-1]
    assert (written["logger"], written["event"], written["field.logger"], written["field.event"]) == (
        "app.orders",
        "m",
        "x",
        "y",
    )
    assert written["timestamp"] == "2026-11-27T04:30:00.000000Z"
    record = harness.records()[-1].log_record
    assert record.body == "m"
    assert dict(record.attributes or {}) == {"field.logger": "x", "field.event": "y"}


def test_warning_in_except_names_the_exception_and_adds_one_span_event(harness: Harness) -> None:
    log = harness.logger()
    with harness.tracer.start_as_current_span("op") as span:
        try:
            json.loads("{broken")
        except ValueError:
            log.info("still parsing")
            log.warning("could not parse the body")
    info, warning = harness.lines()
    assert "exception.type" not in info
    assert warning["exception.type"] == "json.decoder.JSONDecodeError"
    assert warning["exception.message"].startswith("Expecting property name")
    assert "exception.stacktrace" not in warning
    ((name, attributes),) = span_events(span)
    assert name == "log"
    assert attributes["log.severity"] == "WARNING"
    assert attributes["log.message"] == "could not parse the body"
    assert attributes["log.logger"] == "app.orders"
    assert attributes["exception.type"] == "json.decoder.JSONDecodeError"
    otlp_warning = harness.records()[-1].log_record
    assert dict(otlp_warning.attributes or {})["exception.type"] == "json.decoder.JSONDecodeError"


def test_logged_exception_has_a_scrubbed_stacktrace_and_a_span_event(harness: Harness) -> None:
    secret = "s3cr3t-value"
    with harness.tracer.start_as_current_span("op") as span:
        try:
            raise ConnectionError(f"POST https://api/v1?token={secret}")
        except ConnectionError:
            harness.logger().exception("provider call failed")
    (line,) = harness.lines()
    assert line["level"] == "error"
    assert line["exception.type"] == "ConnectionError"
    assert line["exception.message"] == f"POST https://api/v1?token={REDACTED}"
    assert "raise ConnectionError" in line["exception.stacktrace"]
    assert secret not in harness.out.getvalue()
    ((_, attributes),) = span_events(span)
    assert attributes["log.severity"] == "ERROR" and attributes["exception.type"] == "ConnectionError"


@pytest.mark.parametrize("name", ["opentelemetry.sdk.trace", "beacon_otel.export"])
def test_internal_loggers_are_printed_only(harness: Harness, name: str) -> None:
    with harness.tracer.start_as_current_span("op") as span:
        harness.logger(name).warning("export failed")
    (line,) = harness.lines()
    assert (line["logger"], line["event"], line["level"]) == (name, "export failed", "warning")
    assert span_events(span) == []
    assert harness.records() == []


@pytest.mark.parametrize(
    ("level", "severity", "text", "name"),
    [
        (logging.DEBUG, SeverityNumber.DEBUG, "DEBUG", "debug"),
        (logging.INFO, SeverityNumber.INFO, "INFO", "info"),
        (logging.WARNING, SeverityNumber.WARN, "WARNING", "warning"),
        (logging.ERROR, SeverityNumber.ERROR, "ERROR", "error"),
        (logging.CRITICAL, SeverityNumber.FATAL, "CRITICAL", "critical"),
    ],
)
def test_otlp_severity(harness: Harness, level: int, severity: SeverityNumber, text: str, name: str) -> None:
    harness.logger().log(level, "m")
    (record,) = harness.records()
    assert (record.log_record.severity_number, record.log_record.severity_text) == (severity, text)
    assert harness.lines()[0]["level"] == name


@pytest.fixture
def notice_level(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Level 25 registered as NOTICE for the test only (and a fresh level-name cache)."""
    saved = dict(logging._levelToName), dict(logging._nameToLevel)
    monkeypatch.setattr(fields, "_level_names", {})
    yield 25
    logging._levelToName.clear()
    logging._levelToName.update(saved[0])
    logging._nameToLevel.clear()
    logging._nameToLevel.update(saved[1])


def test_otlp_severity_of_a_custom_level(harness: Harness, notice_level: int) -> None:
    logging.addLevelName(notice_level, "NOTICE")
    harness.logger().log(notice_level, "m")
    (record,) = harness.records()
    assert record.log_record.severity_text == "NOTICE"
    assert record.log_record.severity_number is not None
    # Between INFO and WARNING: in the INFO band.
    assert SeverityNumber.INFO.value <= record.log_record.severity_number.value <= SeverityNumber.INFO4.value
    assert harness.lines()[0]["level"] == "notice"


def test_level_name_follows_a_later_registration(harness: Harness, notice_level: int) -> None:
    harness.logger().log(notice_level, "before")
    logging.addLevelName(notice_level, "NOTICE")
    harness.logger().log(notice_level, "after")
    assert harness.records()[-1].log_record.severity_text == "NOTICE"
    assert [line["level"] for line in harness.lines()] == ["level 25", "notice"]


def _log_typed(logger: logging.Logger, extra: dict[str, Any]) -> int:
    line = sys._getframe().f_lineno + 1
    logger.info("typed", extra=extra)
    return line


def test_otlp_attributes_are_typed(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("op") as span:
        line_number = _log_typed(
            harness.logger(),
            {
                "count": 3,
                "ratio": 0.5,
                "ok": True,
                "tags": ["a", "b"],
                "pair": ("x", "y"),
                "nested": {"k": 1, "inner": {"z": "y"}, "gone": None},
                "missing": None,
                "huge": 2**64,
                "just_too_big": 2**63,
                "edge": 2**63 - 1,
                "very_negative": -(2**63) - 1,
            },
        )
    (readable,) = harness.records()
    record = readable.log_record
    assert record.body == "typed"
    attributes: dict[str, Any] = dict(record.attributes or {})
    assert type(attributes["count"]) is int and attributes["count"] == 3
    assert type(attributes["ratio"]) is float and attributes["ratio"] == 0.5
    assert attributes["ok"] is True
    assert list(attributes["tags"]) == ["a", "b"]
    assert list(attributes["pair"]) == ["x", "y"]
    assert dict(attributes["nested"]) == {"k": 1, "inner": {"z": "y"}}
    assert "missing" not in attributes
    assert attributes["huge"] == str(2**64)
    assert attributes["just_too_big"] == str(2**63)
    assert attributes["edge"] == 2**63 - 1
    assert attributes["very_negative"] == str(-(2**63) - 1)
    assert attributes["code.file.path"] == __file__
    assert attributes["code.line.number"] == line_number
    assert attributes["code.function.name"] == "_log_typed"
    assert not {"timestamp", "level", "logger", "event", "service.name", "trace_id", "span_id"} & set(
        attributes
    )
    context = span.get_span_context()
    assert (record.trace_id, record.span_id) == (context.trace_id, context.span_id)
    assert readable.instrumentation_scope is not None
    assert readable.instrumentation_scope.name == "app.orders"
    (line,) = harness.lines()
    assert line["count"] == 3 and line["huge"] == 2**64 and line["missing"] is None


def test_a_number_under_a_secret_key_is_scrubbed_and_other_numbers_kept(harness: Harness) -> None:
    log = harness.logger()
    for _ in range(2):  # the second time through the per-key cache
        log.info("login", extra={"password": 123456, "attempts": 3, "ratio": 0.5, "ok": True})
    for line in harness.lines():
        assert (line["password"], line["attempts"], line["ratio"], line["ok"]) == (REDACTED, 3, 0.5, True)
    assert "123456" not in harness.out.getvalue()


def test_secrets_scrubbed_in_line_otlp_and_span_event(harness: Harness) -> None:
    log = harness.logger()
    with harness.tracer.start_as_current_span("op") as span:
        for _ in range(2):  # the second time through the pipeline's scrub cache
            log.warning(
                "calling https://api/x?token=abc",
                extra={"password": "hunter2", "authorization": "Bearer xyz789", "user": "bob"},
            )
        log.info("calling %s", "https://api/x?token=abc")
    output = harness.out.getvalue()
    for secret in ("hunter2", "xyz789", "token=abc"):
        assert secret not in output
    first, second, formatted = harness.lines()
    for line in (first, second):
        assert line["event"] == f"calling https://api/x?token={REDACTED}"
        assert (line["password"], line["authorization"], line["user"]) == (REDACTED, REDACTED, "bob")
    assert formatted["event"] == f"calling https://api/x?token={REDACTED}"
    records = [readable.log_record for readable in harness.records()]
    assert [record.body for record in records] == [f"calling https://api/x?token={REDACTED}"] * 3
    for record in records[:2]:
        attributes: dict[str, Any] = dict(record.attributes or {})
        assert (attributes["password"], attributes["authorization"], attributes["user"]) == (
            REDACTED,
            REDACTED,
            "bob",
        )
    messages = [attributes["log.message"] for _, attributes in span_events(span)]
    assert messages == [f"calling https://api/x?token={REDACTED}"] * 2


class ExporterThatLogs(InMemoryLogRecordExporter):
    """An exporter that logs, through stdlib logging, on every export."""

    def __init__(self) -> None:
        super().__init__()
        self.logger: logging.Logger | None = None

    def export(self, batch: Sequence[ReadableLogRecord]) -> Any:
        assert self.logger is not None
        self.logger.warning("export took %d ms", 1500)
        return super().export(batch)


def test_record_logged_while_exporting_is_printed_only(capsys: pytest.CaptureFixture[str]) -> None:
    exporter = ExporterThatLogs()
    harness = build_harness(exporter)
    exporter.logger = harness.logger("exporter.plugin")
    log = harness.logger()
    with harness.tracer.start_as_current_span("op") as span:
        log.warning("outer one")
        log.info("outer two")
    # The exporter's line comes first: the outer line is written once its export is done.
    assert [(line["logger"], line["event"]) for line in harness.lines()] == [
        ("exporter.plugin", "export took 1500 ms"),
        ("app.orders", "outer one"),
        ("exporter.plugin", "export took 1500 ms"),
        ("app.orders", "outer two"),
    ]
    assert [readable.log_record.body for readable in exporter.get_finished_logs()] == [
        "outer one",
        "outer two",
    ]
    assert [attributes["log.message"] for _, attributes in span_events(span)] == ["outer one"]
    assert "Logging error" not in capsys.readouterr().err


# --- stdlib.StdlibTakeover --------------------------------------------------------------------------


def _from_pytest(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture
def logging_state() -> Iterator[None]:
    """Puts back every piece of global logging state the takeover (or dictConfig) may change."""
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    functions = (logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig)
    manager = logging.Logger.manager
    loggers = {
        name: (logger.handlers[:], logger.propagate, logger.level, logger.disabled)
        for name, logger in manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    internals: Any = logging  # the handler registry and the warnings hook are private, and untyped
    registry = dict(internals._handlers), internals._handlerList[:]
    capturing_warnings = internals._warnings_showwarning is not None
    access_logger = logging.getLogger(ACCESS_LOGGER)
    access_info = access_logger.__dict__.get("info")
    yield

    access_logger.__dict__.pop("info", None)
    if access_info is not None:
        access_logger.info = access_info  # type: ignore[method-assign]

    logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig = functions
    if not capturing_warnings:
        logging.captureWarnings(False)
    known = {id(h) for saved in loggers.values() for h in saved[0]} | {id(h) for h in root_handlers}
    created: list[logging.Handler] = []
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        handlers, propagate, level, disabled = loggers.get(name, ([], True, logging.NOTSET, False))
        created += [h for h in logger.handlers if id(h) not in known]
        logger.handlers[:] = handlers
        logger.propagate, logger.disabled = propagate, disabled
        logger.setLevel(level)
    # pytest adds and removes its own capture handlers on root around each phase: leave those to it.
    for handler in root.handlers[:]:
        if handler not in root_handlers and not _from_pytest(handler):
            root.removeHandler(handler)
    for handler in root_handlers:
        if handler not in root.handlers and not _from_pytest(handler):
            root.addHandler(handler)
    root.setLevel(root_level)
    for handler in created:
        handler.close()
    internals._handlers.clear()
    internals._handlers.update(registry[0])
    internals._handlerList[:] = registry[1]


@dataclass
class Console:
    """The process's stdout and stderr for one test, and a pipeline writing to stdout."""

    out: io.StringIO
    err: io.StringIO
    pipeline: LogPipeline
    monkeypatch: pytest.MonkeyPatch

    def takeover(self, level: int | None) -> StdlibTakeover:
        """Swap stdout and stderr (here, not in the fixture: pytest's capture re-installs its own
        streams when the test itself starts), then install the takeover."""
        self.monkeypatch.setattr(sys, "stdout", self.out)
        self.monkeypatch.setattr(sys, "stderr", self.err)
        takeover = StdlibTakeover(PipelineHandler(self.pipeline), level)
        takeover.install()
        return takeover

    def lines(self) -> list[dict[str, Any]]:
        return parse_lines(self.out.getvalue())  # a plain-text line from another handler fails here


@pytest.fixture
def console(logging_state: None, monkeypatch: pytest.MonkeyPatch) -> Console:
    scrubber = Scrubber()
    pipeline = LogPipeline(
        service_name=SERVICE, scrubber=scrubber, renderer=JsonRenderer(scrubber), writer=LineWriter()
    )
    return Console(io.StringIO(), io.StringIO(), pipeline, monkeypatch)


def _console_handlers() -> list[tuple[str, logging.Handler]]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    return [
        (logger.name, handler)
        for logger in loggers
        for handler in logger.handlers
        if type(handler) is logging.StreamHandler and handler.stream in (sys.stdout, sys.stderr)
    ]


def test_install_puts_one_handler_on_root(console: Console) -> None:
    root = logging.getLogger()
    level_before = root.level
    takeover = console.takeover(None)
    assert root.handlers.count(takeover.handler) == 1
    assert root.level == level_before == logging.WARNING, "no level set: Python's own is kept"
    logging.getLogger("beacon_test.app").warning("hello")
    logging.getLogger("beacon_test.app").info("hidden at WARNING, as without beacon-otel")
    assert [(line["logger"], line["event"]) for line in console.lines()] == [("beacon_test.app", "hello")]


def test_install_with_a_level_sets_it_on_root(console: Console) -> None:
    console.takeover(logging.INFO)
    assert logging.getLogger().level == logging.INFO
    logging.getLogger("beacon_test.app").info("hello")
    logging.getLogger("beacon_test.app").debug("hidden at INFO")
    assert [line["event"] for line in console.lines()] == ["hello"]


def test_basic_config_sets_only_the_level_when_none_was_given(console: Console) -> None:
    console.takeover(None)
    root = logging.getLogger()
    before = root.handlers[:]
    logging.basicConfig(level=logging.DEBUG, format="%(message)s")
    logging.basicConfig(level=logging.DEBUG, format="%(message)s", force=True)
    assert root.handlers == before
    assert root.level == logging.DEBUG
    logging.getLogger("beacon_test.app").debug("shown at DEBUG")
    assert [line["event"] for line in console.lines()] == ["shown at DEBUG"]
    assert console.err.getvalue() == ""


def test_basic_config_keeps_the_given_level(console: Console) -> None:
    console.takeover(logging.WARNING)
    root = logging.getLogger()
    before = root.handlers[:]
    logging.basicConfig(level=logging.DEBUG, format="%(message)s")
    assert root.handlers == before
    assert root.level == logging.WARNING
    logging.getLogger("beacon_test.app").info("hidden at WARNING")
    logging.getLogger("beacon_test.app").warning("shown")
    assert [line["event"] for line in console.lines()] == ["shown"]


def _uvicorn_config(file_path: Path) -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["audit_file"] = {"class": "logging.FileHandler", "filename": str(file_path)}
    config["loggers"]["beacon_test.audit"] = {"handlers": ["audit_file"], "level": "INFO", "propagate": False}
    return config


def _access_line() -> None:
    logging.getLogger("uvicorn.access").info(ACCESS_FORMAT, "127.0.0.1:5000", "GET", "/x", "1.1", 200)


def test_dict_config_of_uvicorn_leaves_the_pipeline_the_only_console_output(
    console: Console, tmp_path: Path
) -> None:
    takeover = console.takeover(None)
    audit_file = tmp_path / "audit.log"
    logging.config.dictConfig(_uvicorn_config(audit_file))

    logging.getLogger("uvicorn.error").info("Application startup complete.")
    _access_line()
    logging.getLogger("beacon_test.audit").info("refund approved")

    lines = console.lines()
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("uvicorn.error", "Application startup complete."),
        ("uvicorn.access", '127.0.0.1:5000 - "GET /x HTTP/1.1" 200'),
    ]
    assert lines[1]["http.response.status_code"] == 200 and lines[1]["client.port"] == 5000
    assert console.err.getvalue() == ""
    assert _console_handlers() == []
    assert logging.getLogger().handlers.count(takeover.handler) == 1
    (file_handler,) = logging.getLogger("beacon_test.audit").handlers
    assert isinstance(file_handler, logging.FileHandler)
    file_handler.flush()
    assert audit_file.read_text().strip() == "refund approved"


def test_dict_config_console_and_file_handler_on_one_logger(console: Console, tmp_path: Path) -> None:
    console.takeover(None)
    config = _uvicorn_config(tmp_path / "audit.log")
    config["loggers"]["uvicorn.access"]["handlers"].append("audit_file")
    logging.config.dictConfig(config)
    _access_line()
    assert [line["logger"] for line in console.lines()] == ["uvicorn.access"]


def test_warnings_become_one_line(console: Console) -> None:
    console.takeover(None)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old_api() is deprecated", DeprecationWarning, stacklevel=1)
    (line,) = console.lines()
    assert (line["logger"], line["level"]) == ("py.warnings", "warning")
    assert "DeprecationWarning: old_api() is deprecated" in line["event"]
    assert console.err.getvalue() == ""


# --- setup.configure_logging ------------------------------------------------------------------------


def test_configure_logging_none_touches_nothing(logging_state: None) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    basic_config: Callable[..., None] = logging.basicConfig
    dict_config = logging.config.dictConfig
    settings = load_settings({"BEACON_OTEL_LOG_FORMAT": "none"})
    assert configure_logging(settings, None) is None
    assert root.handlers == handlers and root.level == level
    assert logging.basicConfig is basic_config and logging.config.dictConfig is dict_config
    assert not any(isinstance(handler, PipelineHandler) for handler in root.handlers)


# --- access.AccessLineShortcut ------------------------------------------------------------------------


@dataclass
class Access:
    """uvicorn's access logger with the shortcut, the takeover's handler the only one on root."""

    console: Console
    logger: logging.Logger
    handler: PipelineHandler
    records_made: list[str]

    def standard(self, *args: Any) -> None:
        logging.Logger.info(self.logger, ACCESS_FORMAT, *args)


@pytest.fixture
def access_setup(console: Console, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Access]:
    """Call it in the test itself: pytest re-installs its capture streams and handlers when the
    test starts."""

    def setup() -> Access:
        takeover = console.takeover(None)
        root = logging.getLogger()
        monkeypatch.setattr(root, "handlers", [takeover.handler])  # pytest's capture handler aside
        logger = logging.getLogger(ACCESS_LOGGER)
        for node in (logger, logging.getLogger("uvicorn")):  # as other tests may have left them
            monkeypatch.setattr(node, "handlers", [])
            monkeypatch.setattr(node, "filters", [])
            node.propagate, node.disabled = True, False
            node.setLevel(logging.NOTSET)
        logger.setLevel(logging.INFO)  # as uvicorn's logging config sets it
        logger.info = AccessLineShortcut(logger, takeover.handler).info  # type: ignore[method-assign]
        records_made: list[str] = []
        make_record = logging.Logger.makeRecord

        def counting_make_record(
            self: logging.Logger, name: str, *args: Any, **kwargs: Any
        ) -> logging.LogRecord:
            records_made.append(name)
            return make_record(self, name, *args, **kwargs)

        monkeypatch.setattr(logging.Logger, "makeRecord", counting_make_record)
        return Access(console, logger, takeover.handler, records_made)

    return setup


ACCESS_ARGS = ("10.1.2.3:40100", "GET", "/providers?region=eu-west", "1.1", 200)


def test_access_shortcut_prints_the_line_the_record_would(access_setup: Callable[[], Access]) -> None:
    access = access_setup()
    tracer = TracerProvider().get_tracer("beacon-test")
    with tracer.start_as_current_span("GET /providers") as span:
        access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)
        assert access.records_made == [], "the shortcut makes no LogRecord"
        access.standard(*ACCESS_ARGS)
        assert access.records_made == [ACCESS_LOGGER]
    shortcut, standard = access.console.lines()
    assert shortcut.pop("timestamp") <= standard.pop("timestamp")
    assert shortcut == standard
    assert (shortcut["trace_id"], shortcut["span_id"]) == ids(span.get_span_context())
    assert shortcut["url.query"] == "region=eu-west" and shortcut["client.port"] == 40100


def test_access_shortcut_leaves_other_calls_and_record_factories_to_the_standard_path(
    access_setup: Callable[[], Access], monkeypatch: pytest.MonkeyPatch
) -> None:
    access = access_setup()
    access.logger.info("%(client)s left", {"client": "10.1.2.3"})  # one mapping: LogRecord's rule
    assert access.console.lines()[-1]["event"] == "10.1.2.3 left"
    standard_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = standard_factory(*args, **kwargs)
        record.request_id = "req-1"
        return record

    monkeypatch.setattr(logging, "_logRecordFactory", factory)
    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)
    assert access.console.lines()[-1]["request_id"] == "req-1", "the app's factory saw the record"
    assert access.records_made == [ACCESS_LOGGER, ACCESS_LOGGER]


def test_access_shortcut_fallback_names_the_callers_line(access_setup: Callable[[], Access]) -> None:
    access = access_setup()
    seen: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = seen.append  # type: ignore[method-assign]
    access.logger.addHandler(collector)
    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)  # the caller the record must name
    access.logger.removeHandler(collector)
    (record,) = seen
    assert (record.filename, record.funcName) == (
        Path(__file__).name,
        "test_access_shortcut_fallback_names_the_callers_line",
    )


def test_access_shortcut_keeps_a_malformed_call_as_the_record_would(
    access_setup: Callable[[], Access],
) -> None:
    access = access_setup()
    malformed = ("%s %s %s %s %s %s", "a", "b", "c", "d", "e")  # five arguments, six placeholders
    access.logger.info(*malformed)
    assert access.records_made == []
    logging.Logger.info(access.logger, *malformed)
    shortcut, standard = access.console.lines()
    assert shortcut["event"] == standard["event"] == "%s %s %s %s %s %s ('a', 'b', 'c', 'd', 'e')"


def test_access_shortcut_steps_aside_for_anything_else_that_would_see_the_record(
    access_setup: Callable[[], Access],
) -> None:
    access = access_setup()
    seen: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = seen.append  # type: ignore[method-assign]
    access.logger.addHandler(collector)
    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)
    access.logger.removeHandler(collector)
    assert [record.getMessage() for record in seen] == [
        '10.1.2.3:40100 - "GET /providers?region=eu-west HTTP/1.1" 200'
    ]
    assert len(access.console.lines()) == 1, "printed once, by the root handler"

    class NoHealth(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "/health" not in record.getMessage()

    for holder in (access.logger, access.handler):
        holder.addFilter(NoHealth())
        access.logger.info(ACCESS_FORMAT, "10.1.2.3:40100", "GET", "/health", "1.1", 200)
        holder.filters.clear()
    access.logger.setLevel(logging.WARNING)
    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)
    access.logger.setLevel(logging.INFO)
    access.logger.disabled = True
    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)
    access.logger.disabled = False
    access.logger.propagate = False
    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)
    access.logger.propagate = True
    assert len(access.console.lines()) == 1, "the filters, level, disabled flag and propagation held"

    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS, extra={"tenant": "beacon"})
    assert access.console.lines()[-1]["tenant"] == "beacon", "a call with keywords takes the standard path"
    access.records_made.clear()
    access.logger.info(ACCESS_FORMAT, *ACCESS_ARGS)
    assert access.records_made == [] and len(access.console.lines()) == 3, "and the shortcut is back"


@pytest.mark.parametrize(("export", "installed"), [("false", True), ("true", False)])
def test_configure_logging_installs_the_access_shortcut_unless_access_lines_are_exported(
    logging_state: None, export: str, installed: bool
) -> None:
    settings = load_settings({"BEACON_OTEL_LOG_FORMAT": "json", "BEACON_OTEL_EXPORT_ACCESS_LOGS": export})
    logging.getLogger(ACCESS_LOGGER).__dict__.pop("info", None)
    configure_logging(settings, None)
    importlib.import_module("uvicorn.protocols.http.h11_impl")  # installed once uvicorn loads it
    assert ("info" in logging.getLogger(ACCESS_LOGGER).__dict__) is installed
