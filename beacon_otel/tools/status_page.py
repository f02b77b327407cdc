"""``beacon-otel status-page``: write a static status page from Prometheus's history.

Run it from cron or a CI schedule and publish the folder (GitHub Pages, any static host): the
page is one HTML file that fetches nothing, plus ``status.json``. Prometheus must run the rules of
``collector/prometheus/rules/`` (``beacon-otel stack up`` and the Compose file do), and keep 30
days for the longest bars (the stack keeps 35).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "status-page",
        help="write a static status page (uptime, incidents, deployments) from Prometheus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--prometheus", required=True, help="Prometheus's base URL, e.g. http://127.0.0.1:9090"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="folder to write index.html and status.json into"
    )
    parser.add_argument(
        "--title", default="Project Beacon", help="the page's heading (default: Project Beacon)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from beacon_otel.status_page.collect import collect
    from beacon_otel.status_page.prometheus import Prometheus, PrometheusError
    from beacon_otel.status_page.render import write

    try:
        report = collect(Prometheus(args.prometheus), time.time(), args.title)
    except PrometheusError as error:
        print(f"beacon-otel status-page: {error}", file=sys.stderr)
        return 2
    try:
        index = write(report, args.out)
    except OSError as error:
        print(f"beacon-otel status-page: --out {args.out}: cannot write ({error.strerror})", file=sys.stderr)
        return 2
    print(
        f"beacon-otel status-page: wrote {index} ({report.overall}; {len(report.components)} components, "
        f"{len(report.incidents)} incidents, {len(report.deployments)} deployments)"
    )
    return 0
