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
import re
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
    parser.add_argument(
        "--duration",
        required=True,
        type=parse_duration,
        metavar="TIME",
        help="how long it took: seconds (90, 93.5) or with units (90s, 1m30s, 1h2m)",
    )
    parser.add_argument("--environment", help="deployment.environment.name (default: RAILWAY_ENVIRONMENT)")
    parser.add_argument("--revision", help="the deployed commit (default: RAILWAY_GIT_COMMIT_SHA)")
    parser.add_argument(
        "--timeout",
        type=parse_duration,
        default=5.0,
        metavar="TIME",
        help="how long to wait for the export, like --duration (default 5)",
    )
    parser.set_defaults(run=run)


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``93.5``, ``90s``, ``1m30s`` or ``1h``: what a CI script has at hand
    (``$(( end - start ))``) or what a person types."""
    value = text.strip().lower()
    seconds: float | None = None
    try:
        seconds = float(value)
    except ValueError:
        match = _DURATION.fullmatch(value)
        if value and match:
            seconds = sum(
                float(part) * _UNITS[unit] for part, unit in zip(match.groups(), "hms", strict=True) if part
            )
    if seconds is None or not 0 <= seconds < float("inf"):
        # ArgumentTypeError: argparse then prints this text, not the function's name.
        raise argparse.ArgumentTypeError(
            f"expected seconds (90, 93.5) or a duration such as 90s, 1m30s, 1h, not {text!r}"
        )
    return seconds


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        for problem in error.problems:
            print(f"beacon-otel deploy-event: {problem}", file=sys.stderr)
        return 2
    from beacon_otel.export.exporters import metric_exporters
    from beacon_otel.sdk import build_telemetry
    from beacon_otel.tools.one_shot_metrics import one_shot_meter_provider

    # A CI step must not wait out the exporters' usual retry budget: both signals get --timeout.
    settings = settings._replace(
        otlp={
            signal: otlp._replace(timeout_seconds=min(otlp.timeout_seconds, args.timeout))
            for signal, otlp in settings.otlp.items()
        },
    )
    # The reporter's own lines would say the same thing per signal; one summary follows instead.
    logging.getLogger("beacon_otel.export").setLevel(logging.CRITICAL)
    # The metrics go through a pipeline of their own that exports once (see one_shot_metrics);
    # the usual one, with its periodic reader, gets no exporter.
    telemetry = build_telemetry(settings._replace(exporters={**settings.exporters, "metrics": ()}))
    telemetry.reporter.echo_to_stderr = False  # this command prints its own one-line summary
    meter_provider = one_shot_meter_provider(
        telemetry.tracer_provider.resource, metric_exporters(settings, telemetry.reporter)
    )
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

    meter = meter_provider.get_meter(SCOPE)
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
        threading.Thread(target=meter_provider.force_flush, args=(timeout_ms,)),  # the one export
    ]
    for flush in flushes:  # side by side: the slowest signal bounds the wait, not their sum
        flush.start()
    for flush in flushes:
        flush.join()
    failing = telemetry.reporter.failing()
    telemetry.shutdown()
    meter_provider.shutdown()
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
