"""Cost of one log call: beacon-otel's pipeline vs python-json-logger and structlog.

Every variant makes the same call in a tight loop (message "Health check failed for %s" with
one argument, plus the fields provider and region) inside an active, sampled SDK span, and
writes one flushed JSON line per call to a text-mode file opened on ``os.devnull``:

* ``stdlib + python-json-logger``: a stdlib logger, a ``StreamHandler`` on the sink and
  python-json-logger's ``JsonFormatter`` (timestamp, level, name, message and the extras);
* ``structlog JSON (bare)``: ``add_log_level``, ``TimeStamper(fmt="iso", utc=True)`` and
  ``JSONRenderer``, written by ``WriteLoggerFactory`` to the sink;
* ``structlog JSON + OTel ids``: the same plus a processor adding the current span's
  trace_id and span_id;
* ``beacon-otel, stdlib logger`` and ``beacon-otel, structlog logger``: the real pipeline
  (``configure_logging`` with JSON output and no OTLP log export), ``sys.stdout`` pointed at
  the sink, called through ``logging.getLogger`` and ``structlog.get_logger``.

``configure_logging`` patches process-wide logging state, so every measurement runs in a fresh
subprocess (``--variant NAME``); the rounds alternate between the variants and the median of
``--rounds`` is reported, as µs per call and as a ratio to python-json-logger. Before timing,
each variant logs one line to a temporary file, which must be one valid JSON object with the
same message and fields (and, for the last three, the span's trace id), or the run stops.

    python -m benchmarks.log_pipeline [--calls 20000] [--rounds 7] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from benchmarks.common import ROOT, machine_line, median, replace_section

MESSAGE = "Health check failed for %s"
NAME = "golem-us"
EXPECTED_MESSAGE = MESSAGE % NAME
FIELDS = {"provider": "golem-us", "region": "us-east"}

BASELINE = "stdlib + python-json-logger"
VARIANTS = (
    BASELINE,
    "structlog JSON (bare)",
    "structlog JSON + OTel ids",
    "beacon-otel, stdlib logger",
    "beacon-otel, structlog logger",
)
WITH_TRACE_IDS = frozenset(VARIANTS[2:])

Run = Callable[[int], None]


# --- the variants (each built in a fresh process) ------------------------------------------------


def stdlib_json_logger(sink: TextIO) -> Run:
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler(sink)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level"},
            timestamp=True,
        )
    )
    logger = logging.getLogger("bench")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def run(calls: int) -> None:
        for _ in range(calls):
            logger.info(MESSAGE, NAME, extra=FIELDS)

    return run


def add_otel_ids(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


def structlog_json(sink: TextIO, *, otel_ids: bool) -> Run:
    import structlog

    processors: list[Any] = [structlog.processors.add_log_level]
    if otel_ids:
        processors.append(add_otel_ids)
    processors += [structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=sink),
        cache_logger_on_first_use=True,
    )
    return structlog_run(structlog.get_logger("bench"))


def structlog_run(log: Any) -> Run:
    provider, region = FIELDS["provider"], FIELDS["region"]

    def run(calls: int) -> None:
        for _ in range(calls):
            log.info(MESSAGE, NAME, provider=provider, region=region)

    return run


def beacon(sink: TextIO, *, via_structlog: bool) -> Run:
    import structlog

    from beacon_otel.logs import configure_logging
    from beacon_otel.settings import load_settings

    settings = load_settings(
        {
            "BEACON_OTEL_LOG_FORMAT": "json",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "bench",
        }
    )
    if configure_logging(settings, None) is None:
        raise RuntimeError("configure_logging installed no pipeline")
    sys.stdout = sink  # LineWriter writes to whatever sys.stdout is at call time
    if via_structlog:
        return structlog_run(structlog.get_logger("bench"))
    logger = logging.getLogger("bench")

    def run(calls: int) -> None:
        for _ in range(calls):
            logger.info(MESSAGE, NAME, extra=FIELDS)

    return run


BUILDERS: dict[str, Callable[[TextIO], Run]] = {
    VARIANTS[0]: stdlib_json_logger,
    VARIANTS[1]: lambda sink: structlog_json(sink, otel_ids=False),
    VARIANTS[2]: lambda sink: structlog_json(sink, otel_ids=True),
    VARIANTS[3]: lambda sink: beacon(sink, via_structlog=False),
    VARIANTS[4]: lambda sink: beacon(sink, via_structlog=True),
}


@contextmanager
def sampled_span() -> Iterator[str]:
    """An active, recording SDK span (no processors); yields its trace id in hex."""
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("bench")
    with tracer.start_as_current_span("GET /health") as span:
        span_context = span.get_span_context()
        if not (span.is_recording() and span_context.trace_flags.sampled):
            raise RuntimeError("the benchmark span is not sampled")
        yield format(span_context.trace_id, "032x")


# --- the child process ----------------------------------------------------------------------------


def check(variant: str) -> dict[str, Any]:
    """Log one line to a temporary file and make sure it is what the comparison assumes."""
    stdout = sys.stdout
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "line.json"
        with open(path, "w") as sink, sampled_span() as trace_id:
            run = BUILDERS[variant](sink)
            run(1)
            sys.stdout = stdout
        lines = path.read_text().splitlines()
    problems = []
    if len(lines) != 1:
        problems.append(f"one call wrote {len(lines)} lines, not 1")
    try:
        line = json.loads(lines[0]) if lines else {}
    except ValueError as error:
        raise SystemExit(f"{variant}: the line is not valid JSON ({error}): {lines[0]!r}") from None
    if not isinstance(line, dict):
        raise SystemExit(f"{variant}: the line is not a JSON object: {lines[0]!r}")
    if line.get("message", line.get("event")) != EXPECTED_MESSAGE:
        problems.append(f"message is not {EXPECTED_MESSAGE!r}")
    if str(line.get("level", "")).lower() != "info":
        problems.append("level is not info")
    if not line.get("timestamp"):
        problems.append("no timestamp")
    for key, value in FIELDS.items():
        if line.get(key) != value:
            problems.append(f"{key} is not {value!r}")
    if variant in WITH_TRACE_IDS:
        if line.get("trace_id") != trace_id:
            problems.append(f"trace_id is {line.get('trace_id')!r}, not the span's {trace_id!r}")
        if not line.get("span_id"):
            problems.append("no span_id")
    if problems:
        raise SystemExit(f"{variant}: {'; '.join(problems)}\n  line: {lines[0] if lines else ''}")
    return line


def measure(variant: str, calls: int) -> float:
    """µs per call, after a warm-up, all in one active span."""
    stdout = sys.stdout
    with open(os.devnull, "w") as sink, sampled_span():
        run = BUILDERS[variant](sink)
        run(max(calls // 10, 500))
        gc.collect()
        started = time.perf_counter()
        run(calls)
        elapsed = time.perf_counter() - started
        sys.stdout = stdout
    return elapsed / calls * 1e6


def child(variant: str, calls: int, check_only: bool) -> int:
    if check_only:
        print(json.dumps({"variant": variant, "line": check(variant)}))
    else:
        print(json.dumps({"variant": variant, "us_per_call": measure(variant, calls)}))
    return 0


def in_child(variant: str, *options: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.log_pipeline", "--variant", variant, *options]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed (exit {done.returncode}):\n{done.stderr}{done.stdout}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the parent process ---------------------------------------------------------------------------


def render(figures: dict[str, float], calls: int, rounds: int) -> str:
    base = figures[BASELINE]
    lines = [
        "## Log pipeline: cost per log call, beacon-otel vs python-json-logger and structlog",
        "",
        f"Command: `python -m benchmarks.log_pipeline --calls {calls} --rounds {rounds}` "
        f'(machine: {machine_line()}). {calls:,} calls of `info("Health check failed for %s", name)` '
        "with the fields provider and region, inside an active sampled span, each line written and "
        "flushed to a text file on `/dev/null`; one fresh process per variant and round, median of "
        f"{rounds} rounds.",
        "",
        "| variant | µs per call | ratio vs python-json-logger |",
        "|---|---:|---:|",
    ]
    for name in VARIANTS:
        lines.append(f"| {name} | {figures[name]:.1f} | {figures[name] / base:.2f}x |")
    lines += [
        "",
        "python-json-logger writes timestamp, level, logger name, message and the extra fields; "
        "bare structlog writes level, timestamp, message and the fields; the OTel-ids variant adds "
        "trace_id and span_id. The beacon-otel lines also carry the logger name, service.name, "
        "trace_id and span_id, and their message and field values go through the scrubber; no OTLP "
        "log export is configured (`OTEL_LOGS_EXPORTER=none`) and INFO lines add no span event.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per variant and round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (each variant once per round)")
    parser.add_argument("--write", type=Path, help="update this markdown file's section with the results")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        return child(args.variant, args.calls, args.check)

    for name in VARIANTS:
        print(f"{name}: {json.dumps(in_child(name, '--check')['line'])}")
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_number in range(args.rounds):
        order = VARIANTS[round_number % len(VARIANTS) :] + VARIANTS[: round_number % len(VARIANTS)]
        for name in order:
            samples[name].append(float(in_child(name, "--calls", str(args.calls))["us_per_call"]))
    for name, values in samples.items():
        print(f"{name}: " + ", ".join(f"{value:.1f}" for value in values) + " µs/call")

    report = render({name: median(values) for name, values in samples.items()}, args.calls, args.rounds)
    print(report)
    if args.write:
        replace_section(args.write, "log-pipeline", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
