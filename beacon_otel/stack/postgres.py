"""A throwaway PostgreSQL server from Debian's packages, for ``beacon-otel stack up``, the tests
and the benchmarks.

Postgres refuses to run as root, so when the tests run as root (as CI does) every server
command goes through ``runuser -u postgres --``. The data folder lives in a fresh temporary
directory, the server listens on 127.0.0.1 only, and durability is switched off for speed.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

_DURABILITY_OFF = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def postgres_bindir() -> Path:
    """The newest installed server's bin folder (``/usr/lib/postgresql/<version>/bin``)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if candidates:
        return Path(candidates[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
        if (bindir / "postgres").exists():
            return bindir
    raise RuntimeError("no PostgreSQL server found: install Debian's 'postgresql' package")


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PostgresServer:
    """One server process on 127.0.0.1; ``stop()``/``start()`` let tests restart it."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="beacon-otel-pg-")))
    port: int = field(default_factory=_free_port)
    bindir: Path = field(default_factory=postgres_bindir)
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PostgresServer:
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_server_user(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            cwd=self.root,
        )
        return self

    def start(self, timeout: float = 20.0) -> PostgresServer:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
        command = [
            str(self.bindir / "postgres"),
            "-D", str(self.datadir),
            "-p", str(self.port),
            "-k", str(self.root),
            "-c", "listen_addresses=127.0.0.1",
            *_DURABILITY_OFF,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            _as_server_user(command), stdout=log, stderr=log, cwd=self.root, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited early:\n{(self.root / 'server.log').read_text()[-2000:]}"
                )
            probe = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if probe.returncode == 0:
                return self
            time.sleep(0.1)
        raise TimeoutError(f"postgres did not accept connections within {timeout} s")

    def stop(self) -> None:
        """Fast shutdown: open connections are closed, the data stays. Through pg_ctl, because
        runuser does not pass signals on to the server it started."""
        if self.process is None:
            return
        subprocess.run(
            _as_server_user(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "-t", "20", "stop"]
            ),
            capture_output=True,
            cwd=self.root,
        )
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str) -> str:
        """Run SQL with psql and return its unaligned output."""
        result = subprocess.run(
            [str(self.bindir / "psql"), self.dsn, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()


def start_postgres() -> PostgresServer:
    return PostgresServer().init().start()
