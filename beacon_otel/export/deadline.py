"""The process's shutdown deadline, which every export still running must respect.

Once shutdown starts, an export may use at most what is left of it, whatever its own timeout:
the HTTP transport reads :func:`export_deadline` for each request, and the gRPC exporters'
timeouts are capped when shutdown begins.
"""

from __future__ import annotations

import time

_shutdown_deadline: float | None = None


def begin_shutdown(seconds: float) -> float:
    """Start the countdown (once: a second call keeps the first deadline); returns the deadline."""
    global _shutdown_deadline
    if _shutdown_deadline is None:
        _shutdown_deadline = time.monotonic() + seconds
    return _shutdown_deadline


def remaining(default: float) -> float:
    """Seconds left before the shutdown deadline, or ``default`` when not shutting down."""
    if _shutdown_deadline is None:
        return default
    return max(0.0, _shutdown_deadline - time.monotonic())


def export_deadline(timeout: float) -> float:
    """The monotonic time by which an export starting now must be over, its answer read."""
    deadline = time.monotonic() + timeout
    return deadline if _shutdown_deadline is None else min(deadline, _shutdown_deadline)


def capped(at: float) -> float:
    """``at``, or the shutdown deadline if that comes first: an export already running when
    shutdown begins gets no more than the rest of the process."""
    return at if _shutdown_deadline is None else min(at, _shutdown_deadline)
