"""Steady HTTP load on a running app, and RSS samples of its process, for the fault suite.

Each worker thread keeps one keep-alive ``httpx.Client`` and sends one request after another
(with a short pause, so the load does not starve the app of CPU on a 2-core machine), each with
its own ``X-Trace-Id`` UUID so that the spans of a given request can be found afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass(frozen=True, slots=True)
class Sent:
    """One request: when it started and ended (monotonic), its status (0 = transport error)."""

    path: str
    trace_id: str
    started: float
    ended: float
    status: int
    error: str = ""

    @property
    def latency(self) -> float:
        return self.ended - self.started


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def rss_kib(pid: int) -> int:
    """VmRSS of a live process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@dataclass
class Load:
    """Background request loops on ``paths`` (one thread per path) plus an RSS sampler of ``pid``."""

    base_url: str
    paths: Sequence[str]
    pid: int
    pause: float = 0.01
    timeout: float = 10.0
    sent: list[Sent] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for path in self.paths:
            self._threads.append(threading.Thread(target=self._requests, args=(path,), daemon=True))
        self._threads.append(threading.Thread(target=self._sample_rss, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        assert not any(thread.is_alive() for thread in self._threads), "a load thread hangs"

    def _requests(self, path: str) -> None:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout) as client:
            while not self._stop.is_set():
                trace_id = str(uuid.uuid4())
                started = time.monotonic()
                try:
                    status, error = client.get(path, headers={"X-Trace-Id": trace_id}).status_code, ""
                except httpx.HTTPError as exc:
                    status, error = 0, f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self.sent.append(Sent(path, trace_id, started, time.monotonic(), status, error))
                self._stop.wait(self.pause)

    def _sample_rss(self) -> None:
        while not self._stop.is_set():
            try:
                self.rss.append((time.monotonic(), rss_kib(self.pid)))
            except (OSError, AssertionError):
                return  # the process is gone: the test sees it through failed requests
            self._stop.wait(0.25)

    def between(self, start: float, end: float) -> list[Sent]:
        """Requests that started at or after ``start`` and ended before ``end``."""
        with self._lock:
            return [s for s in self.sent if s.started >= start and s.ended <= end]

    def failures(self) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if not 200 <= s.status < 300]

    def wait_for(self, count: int, after: float, timeout: float = 30.0) -> None:
        """Block until ``count`` requests started after ``after`` have completed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if sum(1 for s in self.sent if s.started >= after) >= count:
                    return
            time.sleep(0.05)
        raise AssertionError(f"fewer than {count} requests completed within {timeout} s")
