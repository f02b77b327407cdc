"""``beacon-otel``: the operator commands. Each one registers its sub-command here; the help
texts below are what ``--help`` prints, so they are plain text, not reStructuredText."""

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
    from beacon_otel.tools.config_view import effective_variables, render_text

    try:
        settings = load_settings()
    except ConfigError as error:
        for problem in error.problems:
            print(f"invalid: {problem}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(dict(effective_variables(settings)), indent=2))
    else:
        print(render_text(settings), end="")
    return 0


DESCRIPTION = """\
beacon-otel's operator commands. The app itself runs under the other command,
beacon-otel-run (e.g. beacon-otel-run uvicorn app:app), configured by environment
variables alone: `beacon-otel config` shows what they amount to, `beacon-otel doctor`
whether it works."""

EPILOG = "`beacon-otel COMMAND --help` describes a command, its options and the variables it reads."

CONFIG_DESCRIPTION = """\
Validate every variable beacon-otel-run reads, exactly as it reads them, and print the
effective settings, one VARIABLE=value line each: defaults included, the per-signal OTLP
endpoint, protocol, headers and timeout resolved from the generic OTEL_EXPORTER_OTLP_*
ones, header values masked. An empty value is an unset variable (for
BEACON_OTEL_LEGACY_TRACE_HEADER: the bridge is off, as when it is set empty).

Exit status: 0, or 2 with one line per invalid variable on stderr."""

SINK_DESCRIPTION = """\
The DB route: receive OTLP/HTTP traces (POST /v1/traces, from the Collector or straight
from an app) and write them to the Postgres table trace_spans. Needs the sink extra:
pip install 'beacon-otel[sink]'.

actions:
  serve     (the default) listen and write; reads
              DATABASE_URL                      the Postgres DSN (required, never printed)
              BEACON_OTEL_SINK_TOKEN            bearer token senders must present (required)
              BEACON_OTEL_SINK_ALLOW_NO_TOKEN   true, with the token unset: accept anyone
              BEACON_OTEL_SINK_ADDRESS          host:port to listen on (127.0.0.1:4320)
            and the limits, each with a default (docs/sink.md):
              BEACON_OTEL_SINK_MAX_BODY_BYTES, _MAX_DECOMPRESSED_BYTES, _MAX_ELEMENTS,
              _MAX_INFLIGHT, _DB_POOL, _SERVICE_MAP, _MAX_HEADER_BYTES, _MAX_CONNECTIONS,
              _HEADER_TIMEOUT, _BODY_TIMEOUT, _IDLE_TIMEOUT, _DB_TIMEOUT, _SHUTDOWN_TIMEOUT
  migrate   make the table ready for the sink, once: the unique index on span_id (built
            CONCURRENTLY), and trace_spans itself on a fresh database; reads DATABASE_URL
            only

Exit status: 0; 1 Postgres failed (migrate); 2 invalid configuration; 3 the address
is taken (serve)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beacon-otel",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"beacon-otel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config = commands.add_parser(
        "config",
        help="validate the environment and print the effective settings, by variable name",
        description=CONFIG_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config.add_argument("--json", action="store_true", help="one JSON object, variable -> value")
    config.set_defaults(run=_config)
    sink = commands.add_parser(
        "sink",
        help="receive OTLP/HTTP traces and write them to Postgres trace_spans (serve | migrate)",
        description=SINK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sink.add_argument(
        "action",
        nargs="?",
        choices=("serve", "migrate"),
        default="serve",
        help="serve (default): receive and write; migrate: prepare the table",
    )
    sink.set_defaults(run=_sink)
    for module_name in ("doctor", "traces", "deploy_event", "status_page"):
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
