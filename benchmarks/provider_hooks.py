"""Cost of the provider hooks: a health sweep over 6 providers, with and without them.

The demo router (``demo_router.router.HybridRouter``, 3 golem and 3 modal providers read from
``DEMO_PROVIDERS``) sweeps its providers with ``await router.health_check_providers()``: 6
concurrent httpx calls to one fake-provider process on loopback. Three variants run the same
child code in fresh processes, in the same session, against the same fake providers and the
same OTLP receiver (a separate, counting-only process):

* ``uninstrumented``: ``python -m benchmarks.provider_hooks --child ...``, no telemetry;
* ``beacon-otel-run, no provider hooks``: the same under ``beacon-otel-run`` with
  ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=providers``: httpx client spans only;
* ``beacon-otel-run, provider hooks``: the same with ``BEACON_OTEL_PROVIDER_HOOKS=demo_router.router``:
  a sweep span, 6 check spans, the check metrics, and the httpx spans under them.

Both instrumented variants export traces, metrics and logs over OTLP/HTTP. Two provider sets
are measured: all 6 healthy, and 2 of the 6 failing (one golem answering 500, one modal
reporting itself unhealthy), where the router and the hooks also log the failures. Each child
warms up, then times ``--sweeps`` sweeps (wall clock and the process's CPU time, all threads,
so the export threads count); each figure is the median of ``--rounds`` children, the order
of the variants rotating from round to round. The hook overhead is the hooked variant against
the one without hooks, divided by the 6 checks of a sweep.

Before timing, one short child of each instrumented variant exports to an in-process receiver:
the hooked one must deliver the sweep span, a ``provider.health_check`` span per provider (with
``beacon.provider.name`` and the right outcome) and the check metrics, the other no provider
span but the httpx client spans; otherwise the run stops.

    python -m benchmarks.provider_hooks [--sweeps 200] [--rounds 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BIN,
    ROOT,
    base_env,
    free_port,
    machine_line,
    median,
    replace_section,
    running,
    wait_http,
)

BASELINE = "uninstrumented"
NO_HOOKS = "beacon-otel-run, no provider hooks"
HOOKS = "beacon-otel-run, provider hooks"
VARIANTS = (BASELINE, NO_HOOKS, HOOKS)
CHECKS_PER_SWEEP = 6
RESULT = "provider-hooks-result "

# name -> (type, fake-provider mode); the failing scenario swaps two healthy ones for these
HEALTHY = {
    "golem-us-1": ("golem", "healthy"),
    "golem-us-2": ("golem", "healthy"),
    "golem-eu-1": ("golem", "healthy"),
    "modal-us-1": ("modal", "healthy"),
    "modal-eu-1": ("modal", "healthy"),
    "modal-ap-1": ("modal", "healthy"),
}
FAILING = {
    **{name: HEALTHY[name] for name in ("golem-us-1", "golem-us-2", "modal-us-1", "modal-eu-1")},
    "golem-500": ("golem", "fail500"),
    "modal-sick": ("modal", "unhealthy"),
}
SCENARIOS = {"6 healthy": HEALTHY, "4 healthy, 2 failing": FAILING}
EXPECTED_ERROR = {"fail500": "http_500", "unhealthy": "unhealthy_status"}


# --- the child process ----------------------------------------------------------------------------


async def sweeps(count: int, warmup: int) -> dict[str, Any]:
    """Time ``count`` sweeps of a demo router over the providers in DEMO_PROVIDERS."""
    import httpx
    from demo_router.router import HybridRouter, providers_from_env

    providers = providers_from_env()
    async with httpx.AsyncClient() as client:
        router = HybridRouter(providers, client=client, timeout=5.0)
        for _ in range(warmup):
            await router.health_check_providers()
        gc.collect()
        wall_started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(count):
            await router.health_check_providers()
        wall, cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
    return {
        "wall_us": wall / count * 1e6,
        "cpu_us": cpu / count * 1e6,
        "healthy": {provider.name: provider.healthy for provider in providers},
        "hooked": bool(getattr(HybridRouter.health_check_providers, "_beacon_otel_patched", False)),
    }


def telemetry_state() -> dict[str, Any]:
    """What is instrumented in this process; flushes the SDK providers (after the timing)."""
    import httpx
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    from beacon_otel.instrumentation.httpx_client import is_instrumented

    tracer_provider: Any = trace.get_tracer_provider()
    sdk = hasattr(tracer_provider, "force_flush")
    if sdk:
        tracer_provider.force_flush(10_000)
        meter_provider: Any = metrics.get_meter_provider()
        meter_provider.force_flush(10_000)
    upstream = bool(HTTPXClientInstrumentor().is_instrumented_by_opentelemetry)
    return {"sdk": sdk, "httpx_spans": upstream or is_instrumented(httpx)}


def child(count: int, warmup: int) -> int:
    result = asyncio.run(sweeps(count, warmup))
    result.update(telemetry_state())
    print(RESULT + json.dumps(result), flush=True)  # the log pipeline may write lines of its own
    return 0


# --- the parent process ---------------------------------------------------------------------------


def provider_spec(providers: dict[str, tuple[str, str]], port: int) -> str:
    return ",".join(
        f"{name}|{kind}|{'eu-west' if '-eu-' in name else 'us-east'}|http://127.0.0.1:{port}/p/{name}"
        for name, (kind, _) in providers.items()
    )


def variant_command(name: str, count: int, warmup: int) -> list[str]:
    child_args = [sys.executable, "-m", "benchmarks.provider_hooks", "--child"]
    child_args += ["--sweeps", str(count), "--warmup", str(warmup)]
    return child_args if name == BASELINE else [str(BIN / "beacon-otel-run"), *child_args]


def variant_env(name: str, providers: str, otlp_endpoint: str) -> dict[str, str]:
    env = base_env(DEMO_PROVIDERS=providers)
    if name == BASELINE:
        return env
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="bench-router",
    )
    if name == HOOKS:
        env["BEACON_OTEL_PROVIDER_HOOKS"] = "demo_router.router"
    else:
        env["OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"] = "providers"
    return env


def run_child(
    name: str, providers: dict[str, tuple[str, str]], port: int, otlp: str, count: int, warmup: int
) -> dict[str, Any]:
    done = subprocess.run(
        variant_command(name, count, warmup),
        env=variant_env(name, provider_spec(providers, port), otlp),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr}{done.stdout[-4000:]}")
    result = dict(json.loads(lines[-1][len(RESULT) :]))
    problems = []
    expected_health = {provider: mode == "healthy" for provider, (_, mode) in providers.items()}
    if result["healthy"] != expected_health:
        problems.append(f"provider health {result['healthy']}, expected {expected_health}")
    if result["hooked"] is not (name == HOOKS):
        problems.append(f"router hooked: {result['hooked']}")
    instrumented = name != BASELINE
    if result["sdk"] is not instrumented or result["httpx_spans"] is not instrumented:
        problems.append(f"SDK installed: {result['sdk']}, httpx instrumented: {result['httpx_spans']}")
    if problems:
        raise SystemExit(f"{name}: {'; '.join(problems)}\n{done.stderr[-4000:]}")
    return result


VERIFY_SWEEPS = 3  # 2 timed + 1 warm-up


def telemetry_problems(name: str, spans: list[Any], metric_names: set[str]) -> list[str]:
    """What differs from the telemetry the variant is supposed to produce for VERIFY_SWEEPS sweeps."""
    checks = [span for span in spans if span.name == "provider.health_check"]
    sweep_ids = {span.span_id for span in spans if span.name == "providers.health_check"}
    clients = [span for span in spans if span.kind == 3]  # SPAN_KIND_CLIENT: the httpx calls
    problems = []
    if len(clients) != CHECKS_PER_SWEEP * VERIFY_SWEEPS:
        problems.append(f"{len(clients)} httpx client spans, not {CHECKS_PER_SWEEP * VERIFY_SWEEPS}")
    if name == NO_HOOKS:
        if checks or sweep_ids:
            problems.append(f"{len(checks)} check and {len(sweep_ids)} sweep spans without the hooks")
        return problems
    if len(sweep_ids) != VERIFY_SWEEPS:
        problems.append(f"{len(sweep_ids)} sweep spans, not {VERIFY_SWEEPS}")
    per_provider = {provider: 0 for provider in FAILING}
    for span in checks:
        provider = span.attributes.get("beacon.provider.name")
        if provider not in FAILING:
            problems.append(f"a check span for provider {provider!r}")
            continue
        per_provider[provider] += 1
        expected_error = EXPECTED_ERROR.get(FAILING[provider][1])
        if span.attributes.get("error.type") != expected_error:
            problems.append(f"{provider}: error.type {span.attributes.get('error.type')!r}")
        if span.parent_span_id not in sweep_ids:
            problems.append(f"{provider}: a check span outside the sweep span")
    if any(count != VERIFY_SWEEPS for count in per_provider.values()):
        problems.append(f"check spans per provider: {per_provider}")
    for metric in ("beacon.provider.up", "beacon.provider.health_check.duration"):
        if metric not in metric_names:
            problems.append(f"no {metric} metric")
    return problems


def verify_telemetry(port: int) -> str:
    """One short child of each instrumented variant against an in-process receiver."""
    from beacon_otel.testing.otlp_receiver import OtlpReceiver

    seen = []
    for name in (NO_HOOKS, HOOKS):
        per_sweep = CHECKS_PER_SWEEP if name == NO_HOOKS else 2 * CHECKS_PER_SWEEP + 1
        expected = per_sweep * VERIFY_SWEEPS
        with OtlpReceiver() as receiver:
            run_child(name, FAILING, port, receiver.http_endpoint, count=VERIFY_SWEEPS - 1, warmup=1)
            spans = receiver.wait_for_spans(lambda got, n=expected: len(got) >= n, timeout=10)
            metric_names = {metric.name for metric in receiver.metrics()}
        problems = telemetry_problems(name, spans, metric_names)
        if len(spans) != expected:
            problems.append(f"{len(spans)} spans, not {expected}")
        if problems:
            raise SystemExit(f"{name}: the telemetry is not what is measured: {'; '.join(problems)}")
        checks = sum(span.name == "provider.health_check" for span in spans)
        seen.append(
            f"{name}: {len(spans)} spans for {VERIFY_SWEEPS} sweeps ({checks} `provider.health_check`)"
        )
    return "; ".join(seen)


@contextlib.contextmanager
def otlp_receiver_process(grpc_port: int, http_port: int) -> Iterator[dict[str, Any]]:
    """The counting receiver as a separate process; yields its summary (filled in when it stops)."""
    command = [sys.executable, "-m", "beacon_otel.testing.otlp_receiver", "--quiet"]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    process = subprocess.Popen(command, env=base_env(), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    summary: dict[str, Any] = {}
    try:
        ready = process.stdout.readline() if process.stdout else ""
        if not ready.startswith("ready"):
            raise RuntimeError(f"the OTLP receiver did not start: {ready!r}")
        yield summary
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        for line in output.splitlines():
            if line.startswith("{"):
                summary.update(json.loads(line))


def render(
    figures: dict[str, dict[str, dict[str, float]]],
    count: int,
    warmup: int,
    rounds: int,
    checked: str,
    received: str,
) -> str:
    cpu_share = [row["cpu_us"] / row["wall_us"] for rows in figures.values() for row in rows.values()]
    lines = [
        "## Provider hooks: a health sweep over 6 providers, with and without the hooks",
        "",
        "Command: `python -m benchmarks.provider_hooks "
        f"--sweeps {count} --warmup {warmup} --rounds {rounds}` "
        f"(machine: {machine_line()}). The demo router's `health_check_providers()` over 3 golem and "
        "3 modal providers (6 concurrent httpx calls to one fake-provider process on loopback), "
        f"{count} sweeps timed after {warmup} warm-up sweeps in a fresh process per variant and round, "
        f"median of {rounds} rounds; CPU is the router process's own (all threads, export included). "
        "Both beacon-otel-run variants export traces, metrics and logs over OTLP/HTTP to a local "
        "receiver; without hooks they record the 6 httpx client spans of a sweep, with hooks also "
        "the sweep span, 6 `provider.health_check` spans and the check metrics.",
        "",
        "| providers | variant | wall µs/sweep | ratio | CPU µs/sweep | ratio "
        "| hooks: µs per check, wall / CPU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scenario, by_variant in figures.items():
        base = by_variant[BASELINE]
        for name in VARIANTS:
            wall, cpu = by_variant[name]["wall_us"], by_variant[name]["cpu_us"]
            added = ""
            if name == HOOKS:
                extra_wall = (wall - by_variant[NO_HOOKS]["wall_us"]) / CHECKS_PER_SWEEP
                extra_cpu = (cpu - by_variant[NO_HOOKS]["cpu_us"]) / CHECKS_PER_SWEEP
                added = f"{extra_wall:.0f} / {extra_cpu:.0f}"
            lines.append(
                f"| {scenario} | {name} | {wall:,.0f} | {wall / base['wall_us']:.2f}x | {cpu:,.0f} | "
                f"{cpu / base['cpu_us']:.2f}x | {added} |"
            )
    lines += [
        "",
        "The failing set has one golem provider answering 500 (the router logs a warning) and one modal "
        "provider reporting itself unhealthy; with the hooks, each failed check also logs a line, counts "
        "a failure and sets the span's error status. The last column is (hooked - no hooks) / 6. "
        + (
            f"CPU time is at least {min(cpu_share):.1%} of wall time in every variant: the sweep is bound "
            "by the router process's own CPU (httpx's client code), not by the fake providers. "
            if min(cpu_share) >= 0.9
            else f"CPU time is {min(cpu_share):.0%} to {max(cpu_share):.0%} of wall time. "
        )
        + "Under beacon-otel-run both variants also write and export httpx's INFO line "
        "(`HTTP Request: GET ...`) for every check, which the uninstrumented process drops.",
        "",
        f"Checked before timing, against an in-process receiver: {checked}. {received}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweeps", type=int, default=200, help="timed sweeps per child")
    parser.add_argument("--warmup", type=int, default=50, help="untimed sweeps first")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (each variant once per round)")
    parser.add_argument("--write", type=Path, help="update this markdown file's section with the results")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.sweeps, args.warmup)

    started = time.perf_counter()
    providers_port, receiver_grpc, receiver_http = (free_port() for _ in range(3))
    modes = [f"{name}={mode}" for name, (_, mode) in FAILING.items() if mode != "healthy"]
    fakes = [sys.executable, "-m", "demo_router.fake_providers", "--port", str(providers_port)]
    fakes += [arg for mode in modes for arg in ("--mode", mode)]
    samples = {scenario: {name: {"wall_us": [], "cpu_us": []} for name in VARIANTS} for scenario in SCENARIOS}
    with running(fakes, base_env()) as fake_process:
        wait_http(f"http://127.0.0.1:{providers_port}/control", process=fake_process)
        checked = verify_telemetry(providers_port)
        print(f"checked: {checked}")
        with otlp_receiver_process(receiver_grpc, receiver_http) as summary:
            otlp = f"http://127.0.0.1:{receiver_http}"
            for round_number in range(args.rounds):
                order = VARIANTS[round_number % 3 :] + VARIANTS[: round_number % 3]
                for scenario, providers in SCENARIOS.items():
                    for name in order:
                        result = run_child(name, providers, providers_port, otlp, args.sweeps, args.warmup)
                        samples[scenario][name]["wall_us"].append(result["wall_us"])
                        samples[scenario][name]["cpu_us"].append(result["cpu_us"])
                        print(
                            f"round {round_number + 1} | {scenario} | {name}: "
                            f"{result['wall_us']:.0f} µs wall, {result['cpu_us']:.0f} µs CPU per sweep"
                        )
    sweeps_per_child = args.sweeps + args.warmup
    expected_spans = args.rounds * len(SCENARIOS) * sweeps_per_child * (6 + 13)
    print(f"OTLP receiver: {json.dumps(summary)}; spans expected {expected_spans}")
    if summary.get("spans") != expected_spans:
        print(
            f"warning: the receiver got {summary.get('spans')} spans, not {expected_spans}", file=sys.stderr
        )
    received = (
        f"During the timed runs the OTLP receiver got {summary.get('spans', 0):,} spans "
        f"({expected_spans:,} expected: 6 per sweep without hooks, 13 with), "
        f"{summary.get('logs', 0):,} log records and {summary.get('data_points', 0):,} metric data points."
    )

    figures = {
        scenario: {
            name: {key: median(values) for key, values in by_key.items()} for name, by_key in rows.items()
        }
        for scenario, rows in samples.items()
    }
    report = render(figures, args.sweeps, args.warmup, args.rounds, checked, received)
    print(report)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.write:
        replace_section(args.write, "provider-hooks", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
