"""With the backend down, memory stays bounded by the queue limits and the loss is reported."""

from __future__ import annotations

import json
import subprocess

from beacon_otel.testing.otlp_receiver import OtlpReceiver
from tests.support.processes import free_port, otlp_env

SCRIPT = """
import json, sys
from opentelemetry import metrics, trace

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

tracer = trace.get_tracer("load")
attributes = {"http.request.method": "GET", "url.path": "/providers", "beacon.provider.name": "golem-us"}
def burst(count):
    for _ in range(count):
        with tracer.start_as_current_span("GET /providers", attributes=attributes):
            pass

import time
burst(1_000)
deadline = time.monotonic() + 20
while "requests" not in sys.modules and time.monotonic() < deadline:
    time.sleep(0.05)  # the export thread imports its HTTP client on its first attempt: a one-off
samples = []
for _ in range(int(sys.argv[1]) // 25_000):
    burst(25_000)
    samples.append(rss_kib())
metrics.get_meter_provider().force_flush(5000)
print("FIGURES", json.dumps(samples))
"""

SPANS = 150_000


def test_dead_backend_keeps_memory_bounded_and_reports_the_drops(receiver: OtlpReceiver) -> None:
    env = otlp_env(
        receiver.http_endpoint,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{free_port()}/v1/traces",
        OTEL_LOGS_EXPORTER="none",
    )
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "60000"  # one export, at the script's flush
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", SCRIPT, str(SPANS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("FIGURES "))
    samples = json.loads(line.removeprefix("FIGURES "))  # RSS in KiB after every 25,000 spans
    # The queue holds at most OTEL_BSP_MAX_QUEUE_SIZE (2048) encoded spans of ~200 bytes and
    # drops the rest, so once the exporter is loaded RSS stays flat: no growth trend over
    # 100,000 more spans (2 MiB is allocator noise; 100,000 queued spans would be 20 MiB+).
    assert max(samples[1:]) - samples[1] < 2 * 1024, samples

    output = result.stderr.splitlines()  # beacon-otel's own trouble, as plain lines
    queue_full = [line for line in output if "queue is full" in line]
    assert len(queue_full) == 1, queue_full
    (total,) = [line for line in output if "dropped in all" in line]  # the exact count, at shutdown
    metrics = receiver.wait_for_metrics(lambda got: any(m.name == "beacon.telemetry.dropped" for m in got))
    dropped = next(m for m in metrics if m.name == "beacon.telemetry.dropped")
    counts = {attributes["reason"]: value for attributes, value in dropped.data_points}
    assert {attributes["signal"] for attributes, _ in dropped.data_points} == {"traces"}
    assert SPANS - 4096 <= counts["queue_full"] <= SPANS, (
        "every span beyond the queue and the batch in flight"
    )
    assert counts["queue_full"] + counts.get("export_failed", 0) <= SPANS
    assert f"{counts['queue_full']} traces were dropped in all" in total
