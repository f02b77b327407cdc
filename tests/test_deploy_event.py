"""``beacon-otel deploy-event``: what a CI step records, and that it never fails the step."""

from __future__ import annotations

import subprocess
import time

import pytest

from beacon_otel.testing.otlp_receiver import OtlpReceiver
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
