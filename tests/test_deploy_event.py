"""``beacon-otel deploy-event``: what a CI step records, and that it never fails the step."""

from __future__ import annotations

import subprocess
import time

import pytest

from beacon_otel.testing.otlp_receiver import OtlpReceiver
from beacon_otel.tools.deploy_event import parse_duration
from tests.support.processes import clean_env, free_port


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_span_and_both_metrics_arrive(protocol: str, receiver: OtlpReceiver) -> None:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    result = subprocess.run(
        [
            "beacon-otel", "deploy-event", "--status", "failure", "--duration", "93.5",
            "--environment", "staging", "--revision", "4f2a9c1",
        ],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "recorded a failed deployment to staging" in result.stdout
    (span,) = receiver.wait_for_spans(lambda got: any(s.name == "deployment" for s in got))
    assert span.attributes["deployment.status"] == "failed"
    assert span.attributes["deployment.environment.name"] == "staging"
    assert span.attributes["vcs.ref.head.revision"] == "4f2a9c1"
    assert span.status_code == 2
    assert (span.end_ns - span.start_ns) / 1e9 == pytest.approx(93.5, abs=0.01)
    metrics = receiver.wait_for_metrics(
        lambda got: {"beacon.deployments", "beacon.deployment.duration"} <= {m.name for m in got}
    )
    counter = next(m for m in metrics if m.name == "beacon.deployments")
    ((attributes, value),) = counter.data_points
    assert attributes == {"deployment.status": "failed", "deployment.environment.name": "staging"}
    assert value == 1 and counter.is_monotonic
    duration = next(m for m in metrics if m.name == "beacon.deployment.duration")
    assert duration.unit == "s"
    ((_, histogram),) = duration.data_points
    assert histogram["count"] == 1 and histogram["sum"] == pytest.approx(93.5)


def test_backend_down_exits_zero_with_one_warning() -> None:
    started = time.monotonic()
    result = subprocess.run(
        ["beacon-otel", "deploy-event", "--status", "success", "--duration", "12", "--timeout", "2"],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "warning: the deployment was not recorded" in lines[0] and "Connection refused" in lines[0]
    assert elapsed < 20, "bounded by --timeout, not by the exporters' own retry budget"


def test_bad_arguments_and_configuration() -> None:
    bad_status = subprocess.run(
        ["beacon-otel", "deploy-event", "--status", "maybe", "--duration", "1"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad_status.returncode == 2 and "--status" in bad_status.stderr
    bad_env = subprocess.run(
        ["beacon-otel", "deploy-event", "--status", "success", "--duration", "1"],
        env=clean_env(OTEL_TRACES_EXPORTER="zipkin"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad_env.returncode == 2 and "OTEL_TRACES_EXPORTER" in bad_env.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("93.5", 93.5), ("90s", 90.0), ("1m30s", 90.0), ("2m", 120.0), ("1h", 3600.0),
     ("1h2m3s", 3723.0), ("1.5m", 90.0), (" 0 ", 0.0), ("1M30S", 90.0)],
)  # fmt: skip
def test_durations_in_seconds_or_with_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "m", "1m30", "30s1m", "-5", "inf", "nan", "1 m", "s"])
def test_a_bad_duration_is_one_clear_usage_error(text: str) -> None:
    result = subprocess.run(
        ["beacon-otel", "deploy-event", "--status", "success", "--duration", text],
        env=clean_env(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    (error,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert error == (
        "beacon-otel deploy-event: error: argument --duration: expected seconds (90, 93.5) or a "
        f"duration such as 90s, 1m30s, 1h, not {text!r}"
    )


def test_each_signal_is_exported_once(receiver: OtlpReceiver) -> None:
    """One request per signal: the metrics are not sent again when the command shuts down."""
    result = subprocess.run(
        ["beacon-otel", "deploy-event", "--status", "success", "--duration", "1m30s"],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (span,) = receiver.wait_for_spans(lambda got: any(s.name == "deployment" for s in got))
    assert (span.end_ns - span.start_ns) / 1e9 == pytest.approx(90.0, abs=0.01)
    # The command has exited: every request it made has been answered, so the counts are final.
    assert receiver.request_counts() == {"traces": 1, "metrics": 1, "logs": 0}
    assert {metric.name for metric in receiver.metrics()} == {
        "beacon.deployments",
        "beacon.deployment.duration",
    }


def test_the_console_shows_the_metrics_once() -> None:
    result = subprocess.run(
        ["beacon-otel", "deploy-event", "--status", "success", "--duration", "5"],
        env=clean_env(
            OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="console", OTEL_LOGS_EXPORTER="none"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"resource_metrics"') == 1, result.stdout
    assert result.stdout.count('"name":"deployment"') == 1, result.stdout
