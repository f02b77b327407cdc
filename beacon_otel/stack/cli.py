"""``beacon-otel stack build`` and ``beacon-otel stack up``: the local stack without Docker."""

from __future__ import annotations

import argparse
import os
from typing import Any

from beacon_otel.stack.up import DEFAULT_DESTINATION, DEFAULT_SAMPLING

DESCRIPTION = """\
build: compile the OpenTelemetry Collector (collector/distribution/manifest.yaml) and Jaeger v2
  from their Go modules into ~/.cache/beacon-otel/bin (BEACON_OTEL_STACK_CACHE); needs Go 1.26+.
up: run Jaeger, the Collector (collector/otelcol.yaml + one destinations/ and one sampling/ file),
  the sink and a throwaway Postgres (unless DATABASE_URL is set) on 127.0.0.1, in the foreground.
  Collector OTLP 4317/4318, health 13133, Prometheus 8889, sink 4320, Jaeger query API 16686;
  each address is a variable (BEACON_COLLECTOR_OTLP_GRPC_ENDPOINT, ..., see collector/README.md).
  The uptime checks probe BEACON_COLLECTOR_HEALTH_URL / BEACON_COLLECTOR_READY_URL every
  BEACON_COLLECTOR_CHECK_INTERVAL (default: the router on 127.0.0.1:8080, every 30s).
"""


def add_parser(commands: Any) -> None:
    stack = commands.add_parser(
        "stack",
        help="build and run the Collector, Jaeger, the sink and Postgres locally, without Docker",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = stack.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="build the Collector and Jaeger from their Go modules")
    build.set_defaults(run=_build)
    up = actions.add_parser("up", help="run the stack in the foreground until Ctrl-C or SIGTERM")
    up.add_argument(
        "--destination",
        default=os.environ.get("BEACON_COLLECTOR_DESTINATION") or DEFAULT_DESTINATION,
        help="a file of collector/destinations/ without .yaml (BEACON_COLLECTOR_DESTINATION; "
        f"default {DEFAULT_DESTINATION})",
    )
    up.add_argument(
        "--sampling",
        default=os.environ.get("BEACON_COLLECTOR_SAMPLING") or DEFAULT_SAMPLING,
        help=f"off or on: a file of collector/sampling/ (BEACON_COLLECTOR_SAMPLING; "
        f"default {DEFAULT_SAMPLING})",
    )
    up.set_defaults(run=_up)


def _build(args: argparse.Namespace) -> int:
    from beacon_otel.stack import build

    return build.main()


def _up(args: argparse.Namespace) -> int:
    from beacon_otel.stack.up import StackOptions, run

    return run(StackOptions(destination=args.destination, sampling=args.sampling))
