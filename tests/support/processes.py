"""Launch real commands (``beacon-otel-run uvicorn ...``) for black-box tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without telemetry variables, the venv first on PATH,
    the demo router importable, and the given overrides."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "BEACON_OTEL_"))}
    env.pop("DATABASE_URL", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(EXAMPLES)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def otlp_env(endpoint: str, protocol: str = "http/protobuf", **extra: str) -> dict[str, str]:
    """Environment exporting every signal to a test receiver, with short export delays."""
    return clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_BLRP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="300",
        **extra,
    )


@dataclass
class Launched:
    """A running command, with its combined output captured to a file."""

    process: subprocess.Popen[bytes]
    output_path: Path
    base_url: str | None = None

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        assert self.base_url
        return httpx.get(f"{self.base_url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def wait_until_serving(launched: Launched, path: str = "/health", timeout: float = 30.0) -> None:
    assert launched.base_url
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if launched.process.poll() is not None:
            raise AssertionError(
                f"the app exited with {launched.process.returncode}:\n{launched.output()[-3000:]}"
            )
        try:
            if httpx.get(f"{launched.base_url}{path}", timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the app did not serve {path} within {timeout} s:\n{launched.output()[-3000:]}")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM the process group (workers included) and wait; SIGKILL if it hangs."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


@contextmanager
def launch(
    command: list[str],
    env: Mapping[str, str],
    tmp_path: Path,
    port: int | None = None,
    ready_path: str | None = "/health",
    cwd: Path | None = None,
) -> Iterator[Launched]:
    """Run ``command`` in its own process group; wait until it serves ``ready_path``."""
    output_path = tmp_path / f"output-{time.monotonic_ns()}.log"
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            command,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd or ROOT,
            start_new_session=True,
        )
    launched = Launched(process, output_path, f"http://127.0.0.1:{port}" if port else None)
    try:
        if port and ready_path:
            wait_until_serving(launched, ready_path)
        yield launched
    finally:
        stop(process)


def uvicorn_command(port: int, *extra: str, app: str = "demo_router.app:app") -> list[str]:
    return ["beacon-otel-run", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *extra]


def run_python(
    script: str, env: Mapping[str, str], timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -c script`` under ``beacon-otel-run``, to its end, output captured as text."""
    return subprocess.run(
        ["beacon-otel-run", "python", "-c", script],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
