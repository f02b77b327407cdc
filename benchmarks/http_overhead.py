"""Request throughput, latency and start-up time of the demo router, with and without telemetry.

Five variants run in the same session against the same fake providers and the same local
OTLP receiver (a separate process, on loopback):

* ``uninstrumented``: ``uvicorn demo_router.app:app`` (run as the router runs in production:
  default log level, access log on, output to a file);
* ``beacon-otel-run``: the same command under beacon-otel, exporting traces, metrics and logs;
* ``beacon-otel-run (excluded URLs, captured headers)``: the same, with the standard variables'
  features at work on every request (``FEATURE_VARIABLES``);
* ``opentelemetry-instrument``: the vanilla auto-instrumentation (opentelemetry-distro's
  configurator) with the same instrumentations (FastAPI, httpx, asyncpg), exporting the same;
* ``opentelemetry-instrument (tuned)``: the same, with the FastAPI instrumentation applied by
  ``benchmarks/upstream_tuned_app.py`` with ``exclude_spans=["send", "receive"]`` (one span per
  request, as beacon-otel records), as a careful user would; 0.66b1 has no environment variable
  for it, so the auto-instrumentation's own FastAPI instrumentation is disabled
  (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=fastapi``). Excluding the health URL, the upstream
  documentation's other advice for a lighter load, would not be a fair comparison here.

Endpoints: ``GET /health`` (trivial) and ``GET /fanout`` (3 concurrent httpx calls to the fake
providers). Each figure is the median of ``--runs`` wrk runs; the ratios are against the
uninstrumented router of the same session.

    python -m benchmarks.http_overhead [--seconds 8] [--runs 3] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from benchmarks.common import (
    BIN,
    ROOT,
    LoadResult,
    base_env,
    compile_sources,
    free_port,
    machine_line,
    median,
    median_result,
    replace_section,
    running,
    wait_http,
    wrk,
)

STARTS = 7  # cold starts per variant for the time to the first served request, taken in turn

# The upstream instrumentations tuned as a careful user would: send/receive spans excluded.
TUNED = "opentelemetry-instrument (tuned)"
# beacon-otel with the standard variables' features at work on every request: an excluded-URL
# list that the benchmarked paths do not match (so each request pays the check), request and
# response headers captured on the server and client spans; exemplars are on by default.
FEATURES = "beacon-otel-run (excluded URLs, captured headers)"
FEATURE_VARIABLES = {
    "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "/metrics,/ready,/debug/.*",
    "OTEL_PYTHON_HTTPX_EXCLUDED_URLS": "/internal",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "user-agent,accept",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": "content-type",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": "content-type",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE": "content-type",
}
TUNED_APP = "benchmarks.upstream_tuned_app:app"

PROVIDERS = ("golem-us|golem|us-east", "modal-eu|modal|eu-west", "modal-ap|modal|asia-pacific")


def variant_commands(app_port: int) -> dict[str, list[str]]:
    uvicorn = [
        "uvicorn",
        "demo_router.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(app_port),
    ]
    return {
        "uninstrumented": [str(BIN / "uvicorn"), *uvicorn[1:]],
        "beacon-otel-run": [str(BIN / "beacon-otel-run"), *uvicorn],
        FEATURES: [str(BIN / "beacon-otel-run"), *uvicorn],
        "opentelemetry-instrument": [str(BIN / "opentelemetry-instrument"), *uvicorn],
        TUNED: [str(BIN / "opentelemetry-instrument"), uvicorn[0], TUNED_APP, *uvicorn[2:]],
    }


def variant_env(name: str, otlp_endpoint: str, providers_port: int) -> dict[str, str]:
    providers = ",".join(
        f"{spec}|http://127.0.0.1:{providers_port}/p/{spec.split('|')[0]}" for spec in PROVIDERS
    )
    env = base_env(DEMO_PROVIDERS=providers)
    if name == "uninstrumented":
        return env
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="bench-router",
    )
    if name in ("opentelemetry-instrument", TUNED):
        env.update(
            OTEL_PYTHON_DISTRO="distro",
            OTEL_PYTHON_CONFIGURATOR="configurator",
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_METRICS_EXPORTER="otlp",
            OTEL_LOGS_EXPORTER="otlp",
            OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
        )
    if name == TUNED:
        env.update(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="fastapi")  # TUNED_APP instruments it
    if name == FEATURES:
        env.update(FEATURE_VARIABLES)
    return env


def times_to_first_request(
    variants: Mapping[str, tuple[list[str], Mapping[str, str]]], app_port: int
) -> dict[str, float]:
    """Each variant's median cold start. The variants start in turn, STARTS times over, so that
    the machine's drift over the run (the baseline's start moves by 20 % between runs) touches
    them all alike."""
    startups: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(STARTS):
        for name, (command, env) in variants.items():
            with running(command, env) as process:
                startups[name].append(wait_http(f"http://127.0.0.1:{app_port}/health", process=process))
    return {name: median(times) for name, times in startups.items()}


def measure_variant(
    name: str, command: list[str], env: Mapping[str, str], app_port: int, seconds: float, runs: int
) -> dict[str, object]:
    base = f"http://127.0.0.1:{app_port}"
    results: dict[str, object] = {}
    log = ROOT / ".benchmarks" / f"{name.replace(' ', '-').replace('(', '').replace(')', '')}.log"
    with running(command, env, log=log) as process:
        wait_http(f"{base}/health", process=process)
        wrk(f"{base}/health", 2, pid=process.pid)  # warm-up
        for endpoint in ("/health", "/fanout"):
            load = [wrk(f"{base}{endpoint}", seconds, pid=process.pid) for _ in range(runs)]
            results[endpoint] = median_result(load)
    return results


def render(results: dict[str, dict[str, object]], seconds: float, runs: int) -> str:
    base = results["uninstrumented"]
    lines = [
        "## HTTP overhead: demo router, uninstrumented vs beacon-otel-run vs opentelemetry-instrument",
        "",
        f"Command: `python -m benchmarks.http_overhead --seconds {seconds:g} --runs {runs}` "
        f"(machine: {machine_line()}). wrk with 2 threads and 16 connections, median of {runs} runs of "
        f"{seconds:g} s, on the same 2 cores as the app and the OTLP receiver. Every instrumented variant "
        "exports traces, metrics and logs over OTLP/HTTP to a local receiver. beacon-otel and the demo "
        "router run from bytecode compiled beforehand, as from an installed wheel. "
        f'{TUNED}: the FastAPI instrumentation with `exclude_spans=["send", "receive"]` '
        "(`benchmarks/upstream_tuned_app.py`; 0.66b1 reads no variable for it), one span per request. "
        f"{FEATURES}: "
        + ", ".join(f"`{name}={value}`" for name, value in FEATURE_VARIABLES.items())
        + " (no benchmarked path is excluded: every request pays the check); exemplars are on in both "
        "beacon-otel variants (`trace_based`, the default).",
        "",
        "| variant | endpoint | requests/s | ratio | p50 ms | p99 ms | app CPU µs/request | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in results.items():
        for endpoint in ("/health", "/fanout"):
            load = figures[endpoint]
            assert isinstance(load, LoadResult)
            baseline = base[endpoint]
            assert isinstance(baseline, LoadResult)
            ratio = load.requests_per_second / baseline.requests_per_second
            lines.append(
                f"| {name} | `GET {endpoint}` | {load.requests_per_second:,.0f} | {ratio:.2f}x | "
                f"{load.p50_ms:.2f} | {load.p99_ms:.2f} | {load.cpu_us_per_request:.0f} | {load.errors} |"
            )
    lines += [
        "",
        f"| variant | time to first served request (median of {STARTS} cold starts, variants in turn) "
        "| ratio |",
        "|---|---:|---:|",
    ]
    base_start = float(base["time_to_first_request_s"])  # type: ignore[arg-type]
    for name, figures in results.items():
        start = float(figures["time_to_first_request_s"])  # type: ignore[arg-type]
        lines.append(f"| {name} | {start:.2f} s | {start / base_start:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per endpoint and variant")
    parser.add_argument("--only", action="append", help="run only these variants (and the baseline)")
    parser.add_argument("--write", type=Path, help="update this markdown file's section with the results")
    args = parser.parse_args(argv)
    compile_sources()

    receiver_grpc, receiver_http, providers_port, app_port = (free_port() for _ in range(4))
    receiver = [
        sys.executable, "-m", "beacon_otel.testing.otlp_receiver",
        "--grpc-port", str(receiver_grpc), "--http-port", str(receiver_http), "--quiet",
    ]  # fmt: skip
    fakes = [sys.executable, "-m", "demo_router.fake_providers", "--port", str(providers_port)]
    results: dict[str, dict[str, object]] = {}
    with running(receiver, base_env()), running(fakes, base_env()):
        wait_http(f"http://127.0.0.1:{providers_port}/control")
        variants = {
            name: (command, variant_env(name, f"http://127.0.0.1:{receiver_http}", providers_port))
            for name, command in variant_commands(app_port).items()
            if not args.only or name == "uninstrumented" or name in args.only
        }
        starts = times_to_first_request(variants, app_port)
        for name, (command, env) in variants.items():
            results[name] = {"time_to_first_request_s": starts[name]}
            results[name].update(measure_variant(name, command, env, app_port, args.seconds, args.runs))
            print(
                name,
                json.dumps(
                    {k: asdict(v) if isinstance(v, LoadResult) else v for k, v in results[name].items()}
                ),
            )

    report = render(results, args.seconds, args.runs)
    print(report)
    if args.write:
        replace_section(args.write, "http-overhead", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
