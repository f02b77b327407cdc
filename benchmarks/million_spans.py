"""The memory-bound child of ``benchmarks.e2e --million``: run under ``beacon-otel-run``.

It creates N spans as fast as it can and prints its RSS every 100,000. It imports nothing but
the OpenTelemetry API, so the RSS it reports is the distro's and the spans', not the
benchmark's own libraries.

    beacon-otel-run python -m benchmarks.million_spans 1000000
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process, in MiB."""
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    """VmRSS of a live process, in MiB."""
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def create_spans(total: int) -> int:
    from opentelemetry import trace

    tracer = trace.get_tracer("benchmarks.million_spans")
    step = 100_000
    started = time.perf_counter()
    for index in range(total):
        with tracer.start_as_current_span("provider.call", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("beacon.job_id", f"job-{index}")
            span.set_attribute("beacon.provider.region", "us-east")
            span.set_attribute("http.response.status_code", 200)
        if index == 9_999:
            time.sleep(1.0)  # let the exporter try (and fail) once before the baseline
            print(f"baseline spans={index + 1} rss_mb={rss_mb(os.getpid()):.1f}", flush=True)
        if (index + 1) % step == 0:
            print(
                f"spans={index + 1} rss_mb={rss_mb(os.getpid()):.1f} "
                f"elapsed_s={time.perf_counter() - started:.1f}",
                flush=True,
            )
    time.sleep(3.0)  # two metric intervals, so beacon.telemetry.dropped is exported
    print(f"done peak_mb={peak_rss_mb(os.getpid()):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(create_spans(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
