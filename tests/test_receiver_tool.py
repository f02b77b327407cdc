"""``python -m beacon_otel.testing.otlp_receiver``: the local OTLP target shipped in the package.

It is documented in docs/tools.md as the quickest way to see that an app exports at all: it
listens on loopback, counts what arrives and prints the counts when stopped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.support.processes import otlp_env, run_python


def test_the_receiver_tool_counts_what_an_instrumented_command_sends() -> None:
    receiver = subprocess.Popen(
        [sys.executable, "-m", "beacon_otel.testing.otlp_receiver", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        ready = receiver.stdout.readline().split()
        assert ready[0] == "ready", ready
        ports = dict(part.split("=") for part in ready[1:])
        script = (
            "from opentelemetry import trace\n"
            "for name in ('one', 'two', 'three'):\n"
            "    trace.get_tracer('t').start_span(name).end()\n"
            "assert trace.get_tracer_provider().force_flush(10_000)\n"
        )
        endpoint = f"http://127.0.0.1:{ports['http']}"
        result = run_python(script, otlp_env(endpoint, BEACON_OTEL_LOG_FORMAT="none"))
        assert result.returncode == 0, result.stderr
    finally:
        receiver.send_signal(signal.SIGTERM)
        output, errors = receiver.communicate(timeout=15)
    assert receiver.returncode == 0, errors
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["spans"] == 3, summary
    assert summary["requests"]["traces"] >= 1 and summary["rejected"]["traces"] == 0
