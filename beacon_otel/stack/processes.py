"""One child process of the stack: started with its output in a log file, waited for until it
answers, stopped with SIGTERM (then SIGKILL), and restartable."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from beacon_otel.stack.paths import StackError

STOP_GRACE_SECONDS = 10.0


@dataclass
class Child:
    """A program of the stack and how to tell that it is ready."""

    name: str
    command: list[str]
    env: Mapping[str, str]
    log: Path
    ready_url: str | None = None  # answers 200 once ready
    ready_address: tuple[str, int] | None = None  # or: accepts TCP connections
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until ready; a StackError naming this child and its last lines otherwise."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                env=dict(self.env),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the stack, which stops its children in order
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise StackError(f"{self.name} exited with code {code} while starting:\n{self.tail()}")
            if self._ready():
                return
            time.sleep(0.1)
        self.stop()
        raise StackError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.tail()}")

    def _ready(self) -> bool:
        if self.ready_url is not None:
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as response:
                    return bool(response.status == 200)
            except (OSError, urllib.error.URLError):
                return False
        if self.ready_address is not None:
            try:
                socket.create_connection(self.ready_address, timeout=1).close()
            except OSError:
                return False
        return True

    def exit_code(self) -> int | None:
        """The code it exited with, or None while it runs (or was never started)."""
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return f"    (no log at {self.log})"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])
