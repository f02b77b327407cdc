"""``beacon-otel deploy-event``: record one deployment as a span and two metrics, from CI.

The span ``deployment`` covers the deployment's duration (it ends now); the counter
``beacon.deployments`` (by ``deployment.status`` and ``deployment.environment.name``) gives
the success rate, and the histogram ``beacon.deployment.duration`` (s) how long deployments
take. Everything goes through the exporters configured by the usual variables, is flushed
before the command exits, and an unreachable backend costs one warning, never a failed CI step.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from beacon_otel.settings import ConfigError, load_settings

SCOPE = "beacon_otel.deploy"
_STATUS_WORDS = {"success": "succeeded", "failure": "failed"}


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "deploy-event",
        help="record a deployment (span beacon deployment, metrics beacon.deployments/.duration)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--status", required=True, choices=sorted(_STATUS_WORDS), help="how the deploy ended")
    parser.add_argument("--duration", required=True, type=_seconds, help="how long it took, in seconds")
    parser.add_argument("--environment", help="deployment.environment.name (default: RAILWAY_ENVIRONMENT)")
    parser.add_argument("--revision", help="the deployed commit (default: RAILWAY_GIT_COMMIT_SHA)")
    parser.add_argument(
        "--timeout", type=_seconds, default=5.0, help="seconds to wait for the export (default 5)"
    )
    parser.set_defaults(run=run)


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        for problem in error.problems:
            print(f"beacon-otel deploy-event: {problem}", file=sys.stderr)
        return 2
    from beacon_otel.sdk import build_telemetry

    # A CI step must not wait out the exporters' usual retry budget: both signals get --timeout.
    settings = settings._replace(
        otlp={
            signal: otlp._replace(timeout_seconds=min(otlp.timeout_seconds, args.timeout))
            for signal, otlp in settings.otlp.items()
        },
    )
    # The reporter's own lines would say the same thing per signal; one summary follows instead.
    logging.getLogger("beacon_otel.export").setLevel(logging.CRITICAL)
    telemetry = build_telemetry(settings)
    telemetry.reporter.echo_to_stderr = False  # this command prints its own one-line summary
    environment = args.environment or settings.railway_environment or "unknown"
    revision = args.revision or settings.railway_commit_sha
    status = _STATUS_WORDS[args.status]
    attributes: dict[str, Any] = {
        "deployment.status": status,
        "deployment.environment.name": environment,
        "beacon.deployment.duration_s": args.duration,
    }
    if revision:
        attributes["vcs.ref.head.revision"] = revision

    end_ns = time.time_ns()
    tracer = telemetry.tracer_provider.get_tracer(SCOPE)
    span = tracer.start_span(
        "deployment",
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        start_time=end_ns - int(args.duration * 1e9),
    )
    if status == "failed":
        span.set_status(Status(StatusCode.ERROR, f"deployment to {environment} failed"))
    span.end(end_time=end_ns)

    meter = telemetry.meter_provider.get_meter(SCOPE)
    labels = {"deployment.status": status, "deployment.environment.name": environment}
    meter.create_counter(
        "beacon.deployments", unit="{deployment}", description="Deployments, by outcome."
    ).add(1, labels)
    meter.create_histogram(
        "beacon.deployment.duration", unit="s", description="How long deployments take."
    ).record(args.duration, labels)

    timeout_ms = int(args.timeout * 1000)
    flushes = [
        threading.Thread(target=telemetry.tracer_provider.force_flush, args=(timeout_ms,)),
        threading.Thread(target=telemetry.meter_provider.force_flush, args=(timeout_ms,)),
    ]
    for flush in flushes:  # side by side: the slowest signal bounds the wait, not their sum
        flush.start()
    for flush in flushes:
        flush.join()
    failing = telemetry.reporter.failing()
    telemetry.shutdown()
    if failing:
        where = "; ".join(
            f"{signal} to {dest}: {reason}" for signal, (dest, reason) in sorted(failing.items())
        )
        print(
            f"beacon-otel deploy-event: warning: the deployment was not recorded ({where})", file=sys.stderr
        )
    else:
        print(f"beacon-otel deploy-event: recorded a {status} deployment to {environment}")
    return 0
