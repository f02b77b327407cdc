"""End to end: the demo router under load, router -> OTLP -> sink -> Postgres, beside its baselines.

One run starts a throwaway Postgres (``beacon_otel.stack.postgres.start_postgres``, durability off,
``track_commit_timestamp`` on), ``beacon-otel sink`` on a freshly migrated ``trace_spans`` table,
the fake providers, and then, one after the other and for ``--rounds`` rounds (the fan-out's
cost moves from one run to the next, with the state of httpx's connection pool), four variants
of the demo router (uvicorn, one process, access log on, output to a file), each loaded by
``wrk`` (a separate process, 2 threads, 16 connections, loopback) on ``GET /fanout`` (3
concurrent httpx calls to the fake providers per request, so every request makes client spans):

* ``uninstrumented``: the router alone;
* ``opentelemetry-instrument``: the vanilla auto-instrumentation (opentelemetry-distro's
  configurator), traces, metrics and logs over OTLP/HTTP to a local receiver process;
* ``beacon-otel-run -> sink``: traces straight to the sink
  (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:<sink>/v1/traces`` with the bearer token),
  metrics and logs over OTLP/HTTP to a local receiver process;
* ``legacy tracer``: uninstrumented, with ``DEMO_LEGACY_TRACER=1``: per request, an INSERT of a
  ``started`` row, then after the response an UPDATE by span_id, on the legacy table (no index on
  span_id), in its own database of the same server.

Figures per variant: requests/s, p50/p99, CPU and peak RSS (``VmHWM``) of the router, the sink,
the receiver, Postgres CPU (postmaster and backends), and for the DB route: spans/s committed
(rows before and after the load window), export lag (span end to commit: the commit timestamp of
the row's transaction, ``pg_xact_commit_timestamp(xmin)``, minus ``completed_at``, over rows
committed during the window; for the sink also ``created_at - completed_at``), and spans lost
after the router was stopped with SIGTERM (its lifespan shutdown flushes what is queued).

``--million`` adds the memory-bound run: a script under ``beacon-otel-run`` creates 1,000,000 spans
while the traces endpoint is a closed port, printing its RSS every 100,000 spans; metrics go to an
in-process receiver, which reports ``beacon.telemetry.dropped``.

    python -m benchmarks.e2e [--seconds 10] [--rounds 5] [--million] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

# The one way the project starts a throwaway Postgres (see benchmarks/sink_throughput.py).
from beacon_otel.stack.postgres import PostgresServer, start_postgres
from benchmarks.common import (
    BIN,
    ROOT,
    LoadResult,
    base_env,
    compile_sources,
    cpu_seconds,
    free_port,
    machine_line,
    replace_section,
    running,
    wait_http,
    wrk,
)
from benchmarks.http_overhead import PROVIDERS, variant_env
from benchmarks.million_spans import peak_rss_mb
from benchmarks.sink_throughput import (
    LEGACY_DDL,
    TOKEN,
    database_dsn,
    migrate,
    postgres_cpu,
    run_sql,
    running_sink,
)

VARIANTS = ("uninstrumented", "opentelemetry-instrument", "beacon-otel-run -> sink", "legacy tracer")
SINK, LEGACY = VARIANTS[2], VARIANTS[3]
MILLION = 1_000_000


# --- processes ------------------------------------------------------------------------------------


def postgres_backend_peak_mb(server: PostgresServer) -> float:
    """The largest VmHWM among the postmaster's children (it counts the shared memory they touched)."""
    postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
    peak = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                peak = max(peak, peak_rss_mb(int(stat.parent.name)))
        except (OSError, ValueError):
            continue
    return peak


def provider_hits(port: int) -> int:
    """Requests the fake providers have answered so far (every httpx call of the router)."""
    state = httpx.get(f"http://127.0.0.1:{port}/control", timeout=5).json()
    return sum(int(provider["hits"]) for provider in state["providers"].values())


@contextlib.contextmanager
def receiver_process(log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, dict[str, Any]]]:
    """The counting OTLP receiver as its own process; its final counters land in the dict."""
    http_port = free_port()
    command = [
        sys.executable, "-m", "beacon_otel.testing.otlp_receiver",
        "--grpc-port", str(free_port()), "--http-port", str(http_port), "--quiet",
    ]  # fmt: skip
    stats: dict[str, Any] = {}
    with running(command, base_env(), log=log) as process:
        deadline = time.monotonic() + 20
        while "ready" not in (log.read_text() if log.exists() else ""):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the OTLP receiver did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield process, f"http://127.0.0.1:{http_port}", stats
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    for line in reversed(log.read_text().splitlines()):
        if line.startswith("{"):
            stats.update(json.loads(line))
            break


# --- variants -------------------------------------------------------------------------------------


def router_command(port: int, name: str) -> list[str]:
    uvicorn = ["uvicorn", "demo_router.app:app", "--host", "127.0.0.1", "--port", str(port)]
    if name == "opentelemetry-instrument":
        return [str(BIN / "opentelemetry-instrument"), *uvicorn]
    if name == SINK:
        return [str(BIN / "beacon-otel-run"), *uvicorn]
    return [str(BIN / "uvicorn"), *uvicorn[1:]]


def router_env(name: str, providers_port: int, receiver: str | None, sink_url: str, legacy_dsn: str) -> dict:
    """The http_overhead benchmark's environment for each variant, plus the DB route's parts."""
    if name == LEGACY:
        env = variant_env("uninstrumented", "", providers_port)
        env.update(DEMO_LEGACY_TRACER="1", DATABASE_URL=legacy_dsn)
        return env
    if name == "uninstrumented":
        return variant_env(name, "", providers_port)
    assert receiver is not None
    env = variant_env("beacon-otel-run" if name == SINK else name, receiver, providers_port)
    env["OTEL_SERVICE_NAME"] = "hybrid-router"
    if name == SINK:
        env.update(
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=sink_url,
            OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"authorization=Bearer%20{TOKEN}",
        )
    return env


@dataclass
class Outcome:
    name: str
    load: LoadResult
    window_s: float
    router_cpu_s: float
    router_peak_mb: float
    stop_s: float
    exit_code: int | None
    served: int  # HTTP requests the router handled (so server spans): 1 /health + the /fanout requests
    client_calls: int  # provider hits over the router's lifetime: one httpx call, so one client span, each
    startup_calls: int  # of which the lifespan's health checks (before the first request)
    sink_cpu_s: float | None = None
    sink_peak_mb: float | None = None
    receiver_cpu_s: float | None = None
    receiver_peak_mb: float | None = None
    receiver_stats: dict[str, Any] = field(default_factory=dict)
    postgres_cpu_s: float | None = None
    postgres_backend_peak_mb: float | None = None
    committed_in_window: int | None = None
    lag: dict[str, float] = field(default_factory=dict)
    rows_by_kind: dict[str, int] = field(default_factory=dict)
    rows_final: int | None = None
    rows_unfinished: int | None = None


LAG_SQL = """
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM commit_ts - completed_at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM commit_ts - completed_at)),
       max(extract(epoch FROM commit_ts - completed_at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - completed_at))
FROM (SELECT pg_xact_commit_timestamp(xmin) AS commit_ts, completed_at, created_at FROM trace_spans
      WHERE completed_at IS NOT NULL) AS rows
WHERE commit_ts >= $1 AND commit_ts < $2
"""


async def _fetch(dsn: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


def fetch(dsn: str, sql: str, *args: Any) -> list[Any]:
    return asyncio.run(_fetch(dsn, sql, *args))


def committed_rows(dsn: str) -> int:
    """Rows that hold a finished span (the legacy tracer's 'started' rows are not finished yet)."""
    return int(fetch(dsn, "SELECT count(*) FROM trace_spans WHERE status <> 'started'")[0][0])


def measure(
    name: str,
    seconds: float,
    directory: Path,
    providers_port: int,
    server: PostgresServer,
    sink: tuple[subprocess.Popen[bytes], str] | None,
    sink_dsn: str,
    legacy_dsn: str,
) -> Outcome:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    dsn = {SINK: sink_dsn, LEGACY: legacy_dsn}.get(name)
    with contextlib.ExitStack() as stack:
        receiver = None
        if name in ("opentelemetry-instrument", SINK):
            receiver = stack.enter_context(receiver_process(directory / f"receiver-{name[:6]}.log"))
        env = router_env(
            name, providers_port, receiver[1] if receiver else None, sink[1] if sink else "", legacy_dsn
        )
        if dsn:
            run_sql(dsn, "TRUNCATE trace_spans")  # each round's rows are counted on their own
        hits_before = provider_hits(providers_port)
        log = directory / f"router-{name.split()[0]}.log"
        with running(router_command(port, name), env, log=log) as router:
            wait_http(f"{base}/health", process=router)  # one /health request once it serves
            startup_calls = provider_hits(providers_port) - hits_before
            wrk(f"{base}/fanout", 1, pid=router.pid)  # warm-up
            pids = {"router": router.pid}
            if receiver:
                pids["receiver"] = receiver[0].pid
            if sink and name == SINK:
                pids["sink"] = sink[0].pid
            rows_before = committed_rows(dsn) if dsn else 0
            cpu_before = {key: cpu_seconds(pid) for key, pid in pids.items()}
            pg_before = postgres_cpu(server)
            started_at, clock = datetime.now(UTC), time.perf_counter()
            load = wrk(f"{base}/fanout", seconds, pid=router.pid)
            window, ended_at = time.perf_counter() - clock, datetime.now(UTC)
            cpu = {key: cpu_seconds(pid) - cpu_before[key] for key, pid in pids.items()}
            pg_cpu = postgres_cpu(server) - pg_before
            rows_after = committed_rows(dsn) if dsn else 0
            peaks = {key: peak_rss_mb(pid) for key, pid in pids.items()}
            pg_peak = postgres_backend_peak_mb(server)
            # Stop with SIGTERM so the shutdown flushes what is queued; time it.
            stopping = time.perf_counter()
            router.send_signal(signal.SIGTERM)
            try:
                exit_code: int | None = router.wait(60)
            except subprocess.TimeoutExpired:
                exit_code = None
            stop_s = time.perf_counter() - stopping
        client_calls = provider_hits(providers_port) - hits_before
    # Every /fanout request makes exactly 3 provider calls; wait_http made one /health request.
    served = 1 + (client_calls - startup_calls) // len(PROVIDERS)
    outcome = Outcome(
        name,
        load,
        window,
        cpu["router"],
        peaks["router"],
        stop_s,
        exit_code,
        served,
        client_calls,
        startup_calls,
    )
    if receiver:
        outcome.receiver_cpu_s, outcome.receiver_peak_mb = cpu["receiver"], peaks["receiver"]
        outcome.receiver_stats = receiver[2]
    if "sink" in cpu:
        outcome.sink_cpu_s, outcome.sink_peak_mb = cpu["sink"], peaks["sink"]
    outcome.postgres_cpu_s, outcome.postgres_backend_peak_mb = pg_cpu, pg_peak
    if dsn:
        outcome.committed_in_window = rows_after - rows_before
        count, p50, p99, worst, created_p99 = fetch(dsn, LAG_SQL, started_at, ended_at)[0]
        outcome.lag = {
            "rows": float(count),
            "p50_ms": float(p50 or 0) * 1000,
            "p99_ms": float(p99 or 0) * 1000,
            "max_ms": float(worst or 0) * 1000,
            "created_p99_ms": float(created_p99 or 0) * 1000,
        }
        kinds = fetch(
            dsn, "SELECT coalesce(metadata->>'kind', 'legacy'), count(*) FROM trace_spans GROUP BY 1"
        )
        outcome.rows_by_kind = {str(kind).lower(): int(n) for kind, n in kinds}
        outcome.rows_final = int(fetch(dsn, "SELECT count(*) FROM trace_spans")[0][0])
        outcome.rows_unfinished = int(
            fetch(dsn, "SELECT count(*) FROM trace_spans WHERE status = 'started'")[0][0]
        )
    return outcome


def lost_spans(outcome: Outcome) -> tuple[int, int, str]:
    """(created, committed, method) for the DB-route variants."""
    if outcome.name == LEGACY:
        committed = (outcome.rows_final or 0) - (outcome.rows_unfinished or 0)
        return outcome.served, committed, "requests handled (one span each) vs rows not left 'started'"
    kinds = outcome.rows_by_kind
    created = outcome.served + outcome.client_calls
    committed = sum(kinds.values())
    return created, committed, "server spans = requests handled; client spans = provider hits"


# --- the memory bound -----------------------------------------------------------------------------


def million_run(directory: Path) -> dict[str, Any]:
    from beacon_otel.testing.otlp_receiver import OtlpReceiver

    closed = free_port()
    with OtlpReceiver(keep=True) as receiver:
        env = base_env(
            OTEL_SERVICE_NAME="million",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.http_endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{closed}/v1/traces",
            OTEL_METRIC_EXPORT_INTERVAL="1000",
            OTEL_LOGS_EXPORTER="none",
        )
        env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env['PYTHONPATH']}"
        started = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "beacon-otel-run"), sys.executable, "-m", "benchmarks.million_spans", str(MILLION)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        elapsed = time.perf_counter() - started
        (directory / "million.log").write_text(done.stdout + done.stderr)
        dropped = 0
        for metric in receiver.metrics():
            if metric.name == "beacon.telemetry.dropped":
                for attributes, value in metric.data_points:
                    if attributes.get("signal") == "traces":
                        dropped = max(dropped, int(value))
    samples = [
        (int(m.group(1)), float(m.group(2)))
        for m in re.finditer(r"^spans=(\d+) rss_mb=([\d.]+)", done.stdout, re.MULTILINE)
    ]
    baseline = re.search(r"^baseline spans=\d+ rss_mb=([\d.]+)", done.stdout, re.MULTILINE)
    peak = re.search(r"^done peak_mb=([\d.]+)", done.stdout, re.MULTILINE)
    log_lines = [line for line in (done.stdout + done.stderr).splitlines() if "dropped" in line]
    if done.returncode != 0 or not baseline or not samples:
        raise SystemExit(
            f"the million-span run failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}"
        )
    return {
        "exit_code": done.returncode,
        "elapsed_s": elapsed,
        "baseline_mb": float(baseline.group(1)),
        "samples": samples,
        "peak_mb": float(peak.group(1)) if peak else None,
        "dropped": dropped,
        "log_lines": log_lines,
    }


# --- report ---------------------------------------------------------------------------------------


def _opt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def _event(line: str) -> str:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return str(json.loads(line)["event"])
    return line


def median_round(rounds: list[list[Outcome]], index: int) -> Outcome:
    """A variant's round with the median requests/s (the lower middle one for an even count)."""
    ranked = sorted((r[index] for r in rounds), key=lambda o: o.load.requests_per_second)
    return ranked[(len(ranked) - 1) // 2]


def render(rounds: list[list[Outcome]], million: dict[str, Any] | None, args: argparse.Namespace) -> str:
    command = f"python -m benchmarks.e2e --seconds {args.seconds:g} --rounds {args.rounds}" + (
        " --million" if args.million else ""
    )
    outcomes = [median_round(rounds, index) for index in range(len(rounds[0]))]
    base = outcomes[0]
    lines = [
        "## End to end: router -> OTLP -> sink -> Postgres, beside its baselines",
        "",
        f"Command: `{command}` (machine: {machine_line()}). Everything runs on these cores: Postgres "
        "(throwaway, fsync, synchronous_commit and full_page_writes off, track_commit_timestamp on), "
        "`beacon-otel sink` (default settings, table migrated), the fake providers, the router (uvicorn, "
        "one process, access log to a file), the OTLP receiver and wrk (2 threads, 16 connections, "
        f"`GET /fanout`: 3 concurrent httpx calls per request) for {args.seconds:g} s per variant after a "
        f"1 s warm-up; the variants ran in turn, {len(rounds)} rounds, and each row below is the "
        "variant's median round (by requests/s; its ratio is to the baseline's median round). "
        "Vanilla: traces, metrics and logs over OTLP/HTTP to the receiver. beacon-otel-run: "
        "traces straight to the sink, metrics and logs to the receiver. Legacy tracer: uninstrumented "
        "router plus an INSERT ('started') and an UPDATE by span_id per request, one span per request, "
        "on the legacy table (no index on span_id, empty at the start), through the app's asyncpg pool "
        "(4 connections).",
        "",
        "| variant | requests/s | ratio | p50 ms | p99 ms | errors | router CPU (cores) | router µs/request "
        "| router peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for outcome in outcomes:
        load = outcome.load
        lines.append(
            f"| {outcome.name} | {load.requests_per_second:,.0f} | "
            f"{load.requests_per_second / base.load.requests_per_second:.2f}x | {load.p50_ms:.2f} | "
            f"{load.p99_ms:.2f} | {load.errors} | {outcome.router_cpu_s / outcome.window_s:.2f} | "
            f"{load.cpu_us_per_request:.0f} | {outcome.router_peak_mb:.0f} |"
        )
    lines += ["", "Every round (requests/s, and the ratio to the baseline of the same round):", ""]
    lines += ["| variant | " + " | ".join(f"round {n}" for n in range(1, len(rounds) + 1)) + " |"]
    lines += ["|---|" + "---:|" * len(rounds)]
    for index, outcome in enumerate(outcomes):
        cells = []
        for round_ in rounds:
            rate = round_[index].load.requests_per_second
            cells.append(f"{rate:,.0f} ({rate / round_[0].load.requests_per_second:.2f}x)")
        lines.append(f"| {outcome.name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Other processes over the same load window (CPU in cores; peak RSS is VmHWM; for Postgres, the "
        "largest VmHWM among its backends, which counts the shared buffers they touched):",
        "",
        "| variant | sink CPU | sink peak RSS MiB | receiver CPU | receiver peak RSS MiB | Postgres CPU "
        "| Postgres backend peak MiB | stop after SIGTERM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        w = o.window_s
        lines.append(
            f"| {o.name} | {_opt(o.sink_cpu_s and o.sink_cpu_s / w)} | {_opt(o.sink_peak_mb, '{:.0f}')} | "
            f"{_opt(o.receiver_cpu_s and o.receiver_cpu_s / w)} | {_opt(o.receiver_peak_mb, '{:.0f}')} | "
            f"{_opt(o.postgres_cpu_s and o.postgres_cpu_s / w)} | "
            f"{_opt(o.postgres_backend_peak_mb, '{:.0f}')} | {o.stop_s:.2f} s (exit {o.exit_code}) |"
        )
    db = [o for o in outcomes if o.name in (SINK, LEGACY)]
    legacy = next((o for o in db if o.name == LEGACY), None)
    lines += [
        "",
        "The DB route. Spans/s committed: finished rows after minus before the load window, over its "
        "length. Export lag: commit time of the row's transaction (`pg_xact_commit_timestamp(xmin)`; "
        "for the legacy tracer that is the UPDATE's) minus the span's `completed_at`, over the rows "
        "committed during the window. Spans lost: after the router was stopped with SIGTERM (its "
        "lifespan shutdown flushes what is queued) and the sink answered, spans created minus rows "
        "committed. Created: one "
        "server span per request handled (the one `/health` request that found the router up, plus "
        "the `/fanout` requests, which are the provider calls after start-up divided by 3, since "
        "each makes exactly 3) and, for beacon-otel, one client span per provider call (the fake "
        "providers count the requests they answer, the lifespan's start-up health checks included). "
        "A stop column exit code of -15 means the process ended on the SIGTERM that uvicorn re-raises "
        "after its graceful shutdown.",
        "",
        "| variant | spans/request | spans/s committed | ratio | lag p50 ms | lag p99 ms | lag max ms "
        "| created_at - completed_at p99 ms | created | committed (by kind) | lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for o in db:
        created, committed, _ = lost_spans(o)
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(o.rows_by_kind.items()))
        rate = (o.committed_in_window or 0) / o.window_s
        legacy_rate = (legacy.committed_in_window or 0) / legacy.window_s if legacy else 0
        ratio = f"{rate / legacy_rate:.1f}x" if legacy_rate else "-"
        per_request = committed / max(o.served, 1)
        created_lag = "-" if o.name == LEGACY else f"{o.lag.get('created_p99_ms', 0):.0f}"
        lines.append(
            f"| {o.name} | {per_request:.2f} | {rate:,.0f} | {ratio} | {o.lag.get('p50_ms', 0):.0f} | "
            f"{o.lag.get('p99_ms', 0):.0f} | {o.lag.get('max_ms', 0):.0f} | {created_lag} | {created:,} | "
            f"{committed:,} ({kinds}) | {created - committed:,} |"
        )
    for index, outcome in enumerate(outcomes):
        if outcome.name not in (SINK, LEGACY):
            continue
        totals = [lost_spans(round_[index]) for round_ in rounds]
        created = sum(t[0] for t in totals)
        committed = sum(t[1] for t in totals)
        lines += [
            "",
            f"{outcome.name}, all {len(rounds)} rounds: {created:,} spans created, {committed:,} committed, "
            f"{created - committed:,} lost.",
        ]
    vanilla = next((o for o in outcomes if o.name == "opentelemetry-instrument"), None)
    if vanilla:
        received = int(vanilla.receiver_stats.get("spans", 0))
        lines += [
            "",
            f"Vanilla, for comparison: the receiver got {received:,} spans for {vanilla.served:,} requests "
            f"handled and {vanilla.client_calls:,} provider calls ({received / max(vanilla.served, 1):.2f} "
            "spans per request: its ASGI middleware adds internal `http send` spans, so the spans it "
            "created cannot be counted independently here).",
        ]
    if million:
        samples = million["samples"]
        growth = max(rss for _, rss in samples) - million["baseline_mb"]
        lines += [
            "",
            f"Memory bound with the traces endpoint down (a closed port): a script under `beacon-otel-run` "
            f"created {MILLION:,} spans (3 attributes each) in {million['elapsed_s']:.0f} s; RSS after the "
            f"first 10,000 spans and one failed export: {million['baseline_mb']:.1f} MiB; growth after that: "
            f"{growth:+.1f} MiB (peak VmHWM {_opt(million['peak_mb'], '{:.1f}')} MiB). "
            f"`beacon.telemetry.dropped{{signal=traces}}` as exported to the receiver: "
            f"{million['dropped']:,}. Log lines naming the drops: {len(million['log_lines'])}"
            + (f", the first: `{_event(million['log_lines'][0])}`" if million["log_lines"] else "")
            + ".",
            "",
            "| spans created | " + " | ".join(f"{n // 1000}k" for n, _ in samples) + " |",
            "|---|" + "---:|" * len(samples),
            "| RSS MiB | " + " | ".join(f"{rss:.1f}" for _, rss in samples) + " |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument(
        "--rounds", type=int, default=5, help="times every variant runs, in turn (the median round is shown)"
    )
    parser.add_argument("--million", action="store_true", help="add the 1,000,000-span memory-bound run")
    parser.add_argument("--million-only", action="store_true", help="only the memory-bound run")
    parser.add_argument("--only", action="append", choices=VARIANTS, help="run only these (and the baseline)")
    parser.add_argument("--write", type=Path, help="update this markdown file's section with the results")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    compile_sources()

    directory = Path(tempfile.mkdtemp(prefix="beacon-e2e-"))
    print(f"logs in {directory}", flush=True)
    rounds: list[list[Outcome]] = []
    if not args.million_only:
        run_variants(args, directory, rounds)
    million = None
    if args.million or args.million_only:
        million = million_run(directory)
        print("million", json.dumps(million), flush=True)
    if args.million_only:
        return 0
    report = render(rounds, million, args)
    print(report)
    if args.write:
        replace_section(args.write, "e2e", report)
    return 0


def run_variants(args: argparse.Namespace, directory: Path, rounds: list[list[Outcome]]) -> None:
    """Every variant in turn, ``--rounds`` times: drift over the run (the fake providers' and
    Postgres's state, the machine) then touches all variants alike."""
    server = start_postgres()
    try:
        server.psql("ALTER SYSTEM SET track_commit_timestamp = on")
        server.stop()
        server.start()
        server.psql("CREATE DATABASE e2e_sink")
        server.psql("CREATE DATABASE e2e_legacy")
        sink_dsn, legacy_dsn = database_dsn(server, "e2e_sink"), database_dsn(server, "e2e_legacy")
        run_sql(sink_dsn, LEGACY_DDL)
        run_sql(legacy_dsn, LEGACY_DDL)
        migrate(sink_dsn)
        providers_port = free_port()
        fakes = [sys.executable, "-m", "demo_router.fake_providers", "--port", str(providers_port)]
        with (
            running(fakes, base_env(), log=directory / "providers.log"),
            running_sink(sink_dsn, directory / "sink.log") as sink,
        ):
            wait_http(f"http://127.0.0.1:{providers_port}/control")
            for number in range(1, args.rounds + 1):
                outcomes: list[Outcome] = []
                logs = directory / f"round-{number}"  # each round's router and receiver logs
                logs.mkdir()
                for name in VARIANTS:
                    if args.only and name != "uninstrumented" and name not in args.only:
                        continue
                    outcome = measure(
                        name, args.seconds, logs, providers_port, server, sink, sink_dsn, legacy_dsn
                    )
                    outcomes.append(outcome)
                    figures = json.dumps(outcome, default=lambda o: o.__dict__)
                    print(f"round {number}", name, figures, flush=True)
                rounds.append(outcomes)
        if "Traceback" in (directory / "sink.log").read_text():
            print(f"warning: the sink logged a traceback, see {directory / 'sink.log'}", flush=True)
    finally:
        server.destroy()


if __name__ == "__main__":
    raise SystemExit(main())
