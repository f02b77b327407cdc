"""Shared pieces of the benchmarks: processes on loopback, wrk runs, and figures.

Every benchmark measures its baseline in the same run and reports ratios, so the figures mean
something on any machine. Loads are always bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compile_sources() -> None:
    """Write the bytecode of beacon-otel and the demo router, as an install from a wheel does.

    An editable install imports them from source; with ``PYTHONDONTWRITEBYTECODE`` set (as on
    the CI machines) every process would then compile them again at start-up, which is not what
    a deployed app pays. Both sides of every comparison get the same treatment.
    """
    import compileall

    for folder in (ROOT / "beacon_otel", EXAMPLES / "demo_router"):
        compileall.compile_dir(folder, quiet=1)


def base_env(**extra: str) -> dict[str, str]:
    """The environment for launched processes: this venv first on PATH, the demo importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "BEACON_OTEL_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(EXAMPLES)
    env.update(extra)
    return env


def wait_http(url: str, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> float:
    """Poll until url answers 2xx; return the seconds it took."""
    started = time.perf_counter()
    deadline = started + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.perf_counter() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"process exited with {process.returncode} before serving {url}")
            try:
                if client.get(url).is_success:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def running(
    args: list[str], env: Mapping[str, str], log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process and make sure it is gone afterwards."""
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(args, env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_request: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        raise ValueError(f"wrk printed no {percentile}% latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str, seconds: float, connections: int = 16, threads: int = 2, pid: int | None = None
) -> LoadResult:
    """One bounded wrk run; CPU of ``pid`` (the server) is sampled around it."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk')")
    cpu_before = cpu_seconds(pid) if pid else 0.0
    output = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    cpu_after = cpu_seconds(pid) if pid else 0.0
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(group) for group in socket_errors.groups())
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return LoadResult(
        requests_per_second=rps,
        p50_ms=_latency_ms(output, "50"),
        p99_ms=_latency_ms(output, "99"),
        requests=total,
        errors=errors,
        cpu_us_per_request=(cpu_after - cpu_before) / max(total, 1) * 1e6,
    )


def median_result(results: list[LoadResult]) -> LoadResult:
    """The run with the median throughput (its latencies belong to the same run)."""
    ordered = sorted(results, key=lambda result: result.requests_per_second)
    return ordered[len(ordered) // 2]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine_line() -> str:
    return f"{os.cpu_count()} cores, {_cpu_model()}, Python {sys.version.split()[0]}"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else ():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def replace_section(path: Path, marker: str, body: str) -> None:
    """Rewrite the part of a markdown file between ``<!-- marker:start -->`` and ``:end``."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
