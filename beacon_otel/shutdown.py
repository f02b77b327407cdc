"""The process's exit, bounded: every pipeline flushed and shut down together within one deadline.

Platforms give a stopping process a few seconds before SIGKILL (Railway and Docker: 10 s), and a
SIGKILL loses everything still queued. So at exit the trace, metric and log pipelines shut down
in parallel, each export bounded by what is left of ``BEACON_OTEL_SHUTDOWN_TIMEOUT`` (5 s), with
one attempt per batch and no retries; whatever could not be sent is counted and named in one
line, on stderr and in the log pipeline (which may itself be what is down).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from beacon_otel.export import deadline

if TYPE_CHECKING:
    from beacon_otel.sdk import Telemetry

_SIGNALS = ("traces", "metrics", "logs")
_lock = threading.Lock()
_done: set[tuple[int, int]] = set()  # (pid, id) of each Telemetry shut down


def shut_down(telemetry: Telemetry) -> None:
    """Shut ``telemetry`` down within its deadline, once per process; report what was lost."""
    with _lock:
        key = (os.getpid(), id(telemetry))
        if key in _done:
            return
        _done.add(key)
    seconds = telemetry.settings.shutdown_timeout
    until = deadline.begin_shutdown(seconds)
    for exporter in telemetry.exporters:
        one_attempt = getattr(exporter, "one_attempt_per_export", None)
        if one_attempt is not None:
            one_attempt()
    reporter = telemetry.reporter
    failed_before = {signal: reporter.failed_total(signal) for signal in _SIGNALS}
    jobs: dict[str, Callable[[], object]] = {
        "traces": telemetry.tracer_provider.shutdown,
        "metrics": lambda: telemetry.meter_provider.shutdown(timeout_millis=seconds * 1000),
        "logs": telemetry.logger_provider.shutdown,
    }
    threads = {signal: _start(signal, job) for signal, job in jobs.items()}
    for thread in threads.values():
        thread.join(max(0.0, until - time.monotonic()))
    late = [signal for signal, thread in threads.items() if thread.is_alive()]
    lost = {
        signal: reporter.failed_total(signal)
        - failed_before[signal]
        + sum(queue.pending() for queue in telemetry.queues if queue.signal == signal)
        for signal in _SIGNALS
    }
    if lost["traces"] or lost["logs"] or lost["metrics"] or late:
        reporter.tell(
            "beacon-otel: %d spans, %d log records%s dropped at shutdown because %s.",
            lost["traces"],
            lost["logs"],
            ", the last metrics" if lost["metrics"] or "metrics" in late else "",
            _reason(telemetry, late, seconds),
        )


def _start(signal: str, job: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(Exception):  # a failing pipeline must not stop the others
            job()

    # A daemon: an export stuck past the deadline does not keep the process alive.
    thread = threading.Thread(target=run, name=f"beacon-otel-shutdown-{signal}", daemon=True)
    thread.start()
    return thread


def _reason(telemetry: Telemetry, late: list[str], seconds: float) -> str:
    failing = telemetry.reporter.failing()
    causes = [f"exporting {signal} to {where} failed: {why}" for signal, (where, why) in failing.items()]
    if late:
        causes.append(
            f"the shutdown deadline ({seconds:g} s, BEACON_OTEL_SHUTDOWN_TIMEOUT) passed while "
            f"{' and '.join(late)} were still exporting"
        )
    return "; ".join(causes) or "their exports did not complete"
