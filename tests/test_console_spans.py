"""The console span exporter: one short line per span on a terminal, one JSON object per span
otherwise or when BEACON_OTEL_LOG_FORMAT=json asks for it; scrubbed either way."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from beacon_otel.export.console import compact_span_line, wants_compact_spans
from beacon_otel.scrubbing import Scrubber
from tests.support.processes import clean_env

HANG_GUARD = 60  # seconds; only stops a hung command, nothing is timed


def _spans() -> tuple[ReadableSpan, ReadableSpan]:
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("test")
    with tracer.start_as_current_span("GET /providers", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("http.route", "/providers")
        parent.set_attribute("http.response.status_code", 200)
        parent.set_attribute("user_agent.original", "curl/8")  # not a key attribute
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as child:
            child.set_attribute("url.full", "http://p:9001/health?api_key=SECRETK")
            child.set_attribute("http.response.status_code", 500)
            child.set_attribute("error.type", "500")
            child.set_status(Status(StatusCode.ERROR, "token=SECRETT refused"))
    return parent, child  # type: ignore[return-value]


def test_a_compact_line_has_what_a_person_looks_for() -> None:
    parent, child = _spans()
    context, parent_context = child.get_span_context(), parent.get_span_context()
    assert context is not None and parent_context is not None
    line = compact_span_line(child, Scrubber())
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert "SECRETK" not in line and "SECRETT" not in line
    when, rest = line.split(" [span     ] ", 1)
    assert when.endswith("Z") and when[:4].isdigit()
    name, duration, status, fields = rest.strip().split("  ", 3)
    assert (name, status) == ("GET", "ERROR (token=[scrubbed] refused)")
    assert duration.endswith(" ms")
    assert fields.split(" ") == [
        "kind=client",
        f"trace_id={trace_api.format_trace_id(context.trace_id)}",  # bare hex, as in the log lines
        f"span_id={trace_api.format_span_id(context.span_id)}",
        f"parent_span_id={trace_api.format_span_id(parent_context.span_id)}",
        "url.full=http://p:9001/health?api_key=[scrubbed]",
        "http.response.status_code=500",
        "error.type=500",
    ]
    assert "0x" not in line
    server = compact_span_line(parent, Scrubber())
    assert "  ok  kind=server " in server and "http.route=/providers" in server
    assert "user_agent" not in server and "parent_span_id" not in server


@pytest.mark.parametrize(
    ("log_format", "terminal", "compact"),
    [("auto", True, True), ("auto", False, False), ("none", True, True), ("json", True, False),
     ("console", False, True)],
)  # fmt: skip
def test_the_log_format_decides_for_spans_too(log_format: str, terminal: bool, compact: bool) -> None:
    read, write = pty.openpty() if terminal else os.pipe()
    try:
        with os.fdopen(os.dup(write), "w") as stream:
            assert wants_compact_spans(log_format, stream) is compact
    finally:
        os.close(read)
        os.close(write)


def _deploy_event(on_terminal: bool, **env: str) -> str:
    """``beacon-otel deploy-event`` with its span on the console; its stdout, from a pseudo
    terminal or from a pipe."""
    command = [
        "beacon-otel",
        "deploy-event",
        "--status",
        "failure",
        "--duration",
        "2",
        "--environment",
        "prod",
    ]
    env = clean_env(
        OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **env
    )
    if not on_terminal:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=HANG_GUARD).stdout
    main, child_side = pty.openpty()
    process = subprocess.Popen(command, env=env, stdout=child_side, stderr=child_side)
    os.close(child_side)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.wait(timeout=HANG_GUARD) == 0
    return output.decode().replace("\r\n", "\n")


def test_on_a_terminal_each_span_is_one_short_line() -> None:
    lines = _deploy_event(on_terminal=True).splitlines()
    (span_line,) = [line for line in lines if " [span     ] " in line]
    assert " deployment  2.00 s  ERROR (deployment to prod failed)  kind=internal trace_id=" in span_line
    assert not [line for line in lines if line.startswith("{")]


def test_json_without_a_terminal_or_when_asked() -> None:
    for output in (_deploy_event(on_terminal=False), _deploy_event(True, BEACON_OTEL_LOG_FORMAT="json")):
        (line,) = [line for line in output.splitlines() if line.startswith("{")]
        assert json.loads(line)["name"] == "deployment"
        assert "[span" not in output
