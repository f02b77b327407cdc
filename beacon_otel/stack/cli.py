"""``beacon-otel stack build`` and ``beacon-otel stack up``: the local stack without Docker."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from beacon_otel.stack.up import DEFAULT_DESTINATION, DEFAULT_SAMPLING

DESCRIPTION = """\
build: compile the OpenTelemetry Collector (collector/distribution/manifest.yaml), Jaeger v2,
  Prometheus, promtool and Alertmanager from their Go modules into ~/.cache/beacon-otel/bin
  (BEACON_OTEL_STACK_CACHE); needs Go 1.26+.
up: run Jaeger, the Collector (collector/otelcol.yaml + one destinations/ and one sampling/ file),
  the sink and a throwaway Postgres (unless DATABASE_URL is set), then Alertmanager and Prometheus
  (collector/prometheus/: scrapes the Collector, evaluates the alert rules) on 127.0.0.1, in the
  foreground. Collector OTLP 4317/4318, health 13133, Prometheus endpoint 8889, sink 4320, Jaeger
  query API 16686, Prometheus 9090, Alertmanager 9093; each address is a variable
  (BEACON_COLLECTOR_OTLP_GRPC_ENDPOINT, ..., see collector/README.md). Alerts go to
  BEACON_ALERT_SLACK_WEBHOOK_URL and/or BEACON_ALERT_WEBHOOK_URL (docs/alerts.md).
  The uptime checks probe BEACON_COLLECTOR_HEALTH_URL / BEACON_COLLECTOR_READY_URL every
  BEACON_COLLECTOR_CHECK_INTERVAL (default: the router on 127.0.0.1:8080, every 30s).
alertmanager-config: write Alertmanager's config for these variables (for Compose or a server).
"""


def add_parser(commands: Any) -> None:
    stack = commands.add_parser(
        "stack",
        help="build and run the Collector, Jaeger, the sink, Postgres, Prometheus and Alertmanager "
        "locally, without Docker",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = stack.add_subparsers(dest="action", required=True)
    build = actions.add_parser(
        "build", help="build the Collector, Jaeger, Prometheus and Alertmanager from their Go modules"
    )
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
    up.add_argument(
        "--no-alerting",
        dest="alerting",
        action="store_false",
        help="start neither Prometheus nor Alertmanager",
    )
    up.set_defaults(run=_up)
    config = actions.add_parser(
        "alertmanager-config",
        help="write Alertmanager's config (and the webhook URLs, each in a file of its own) for "
        "BEACON_ALERT_* variables",
    )
    config.add_argument("--out", required=True, type=Path, help="folder to write alertmanager.yml into")
    config.add_argument(
        "--templates",
        type=Path,
        help="the folder of the Slack message templates as Alertmanager will see it "
        "(default: collector/alertmanager/templates of this checkout)",
    )
    config.set_defaults(run=_alertmanager_config)


def _build(args: argparse.Namespace) -> int:
    from beacon_otel.stack import build

    return build.main()


def _up(args: argparse.Namespace) -> int:
    from beacon_otel.stack.up import StackOptions, run

    return run(StackOptions(destination=args.destination, sampling=args.sampling, alerting=args.alerting))


def _alertmanager_config(args: argparse.Namespace) -> int:
    from beacon_otel.stack import alertmanager_config
    from beacon_otel.stack.paths import StackError, collector_dir

    try:
        templates = args.templates or collector_dir() / "alertmanager" / "templates"
        path = alertmanager_config.write(os.environ, args.out, templates)
    except StackError as error:
        print(f"beacon-otel stack alertmanager-config: {error}", file=sys.stderr)
        return 1
    kinds = alertmanager_config.receivers(os.environ)
    print(f"wrote {path} (notifies: {', '.join(kinds) or 'nobody'})")
    return 0
