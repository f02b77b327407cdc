"""``examples/demo.sh`` as the README runs it: each signal goes where its variables say."""

from __future__ import annotations

import time
from pathlib import Path

from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import EXAMPLES, Launched, clean_env, free_port, launch

HANG_GUARD = 30.0  # seconds; only stops a wait that would never end, nothing is timed


def _demo(tmp_path: Path, **env: str) -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    variables = clean_env(DEMO_PORT=str(port), DEMO_FAKES_PORT=str(free_port()), **env)
    return ["sh", str(EXAMPLES / "demo.sh")], variables, port


def _server_span(spans: list[ReceivedSpan]) -> bool:
    return any(span.name == "GET /providers" for span in spans)


def test_a_per_signal_endpoint_gets_that_signal(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """The README's sink example sets only OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the spans must be
    sent there, not printed; metrics, with OTEL_METRICS_EXPORTER=none set explicitly, and logs,
    with no endpoint, go nowhere."""
    command, env, port = _demo(
        tmp_path,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.http_url("traces"),
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=receiver.http_url("metrics"),
        OTEL_METRICS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    with launch(command, env, tmp_path, port=port) as demo:
        assert demo.get("/providers").status_code == 200
        spans = receiver.wait_for_spans(_server_span, timeout=HANG_GUARD)
    assert any(span.name == "provider.health_check" for span in spans)
    assert receiver.request_counts()["metrics"] == receiver.request_counts()["logs"] == 0
    output = demo.output()
    assert '"name":"GET /providers"' not in output, "spans were printed instead of sent"
    assert "traces: otlp, metrics: none, logs: none" in output


def test_without_an_endpoint_spans_are_printed(tmp_path: Path) -> None:
    command, env, port = _demo(tmp_path)
    with launch(command, env, tmp_path, port=port) as demo:
        assert demo.get("/providers").status_code == 200
        _wait_for_output(demo, '"name":"GET /providers"')
    assert "traces: console, metrics: none, logs: none" in demo.output()


def _wait_for_output(demo: Launched, text: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while text not in demo.output():
        assert time.monotonic() < deadline, f"never printed {text!r}:\n{demo.output()[-3000:]}"
        time.sleep(0.05)
