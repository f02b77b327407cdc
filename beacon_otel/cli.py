"""``beacon-otel``: operator commands: ``config``, ``sink``, ``doctor``, ``traces``, ``deploy-event``,
``stack``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from beacon_otel import __version__
from beacon_otel.scrubbing import Scrubber
from beacon_otel.settings import ConfigError, Settings, load_settings


def mask_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, with header values scrubbed: they usually carry credentials."""
    scrubber = Scrubber()
    data: dict[str, Any] = settings._asdict()
    data["otlp"] = {
        signal: {
            **otlp._asdict(),
            "headers": {name: scrubber.scrub_header(name, value) for name, value in otlp.headers.items()},
        }
        for signal, otlp in settings.otlp.items()
    }
    data["span_batch"] = settings.span_batch._asdict()
    data["log_batch"] = settings.log_batch._asdict()
    data["resource_attributes"] = dict(settings.resource_attributes)
    data["exporters"] = dict(settings.exporters)
    data["disabled_instrumentations"] = sorted(settings.disabled_instrumentations)
    return data


def _config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        for problem in error.problems:
            print(f"invalid: {problem}", file=sys.stderr)
        return 2
    print(json.dumps(mask_settings(settings), indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beacon-otel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"beacon-otel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="validate the environment and print the effective settings")
    config.set_defaults(run=_config)
    sink = commands.add_parser(
        "sink", help="receive OTLP/HTTP traces and write them to Postgres trace_spans (DATABASE_URL)"
    )
    sink.add_argument("action", nargs="?", choices=("serve", "migrate"), default="serve")
    sink.set_defaults(run=_sink)
    for module_name in ("doctor", "traces", "deploy_event"):
        _add_tool(commands, module_name)
    from beacon_otel.stack import cli as stack_cli

    stack_cli.add_parser(commands)
    return parser


def _add_tool(commands: Any, module_name: str) -> None:
    """Each operator tool (``beacon_otel.tools.<name>``) adds its own sub-command."""
    import importlib

    importlib.import_module(f"beacon_otel.tools.{module_name}").add_parser(commands)


def _sink(args: argparse.Namespace) -> int:
    from beacon_otel.sink import cli

    return cli.migrate() if args.action == "migrate" else cli.serve()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
