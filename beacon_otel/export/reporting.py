"""One clear line about export trouble per interval, instead of one per batch or per span.

The upstream exporters and batch processors log every failed batch and every dropped item.
With a dead collector and a busy app that is thousands of lines a minute, each one costing the
app CPU. This module silences those records, keeps their text as the failure reason, and lets
:class:`ExportReporter` speak for them: once when exports start failing, then at most once per
interval with counts, and once when they recover.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass

from beacon_otel import _upstream

logger = logging.getLogger("beacon_otel.export")

# Loggers whose warnings and errors describe failed exports or dropped items.
_EXPORTER_LOGGERS = _upstream.EXPORTER_LOGGERS
_QUEUE_LOGGERS = _upstream.QUEUE_LOGGERS
_METRIC_READER_LOGGERS = _upstream.METRIC_READER_LOGGERS


def tell(message: str, *args: object, echo: bool = True) -> None:
    """A line about beacon-otel's own trouble: a record of the log pipeline (JSON on stdout, and
    OTLP), and the same text on stderr (unless ``echo`` is off), where operators watch a
    process's own trouble and which works when the log pipeline is what is down."""
    logger.warning(message, *args)
    # Without any handler (BEACON_OTEL_LOG_FORMAT=none), logging's last resort already writes the
    # line to stderr: writing it again would double it.
    if echo and logger.hasHandlers():
        with contextlib.suppress(Exception):  # a closed or broken stderr must not break the app
            sys.stderr.write((message % args if args else message) + "\n")
            sys.stderr.flush()


_VAGUE = "no successful answer within the export timeout, retries included"


def failure_reason(message: str) -> str:
    """Reduce an upstream exporter log message to its cause, e.g. ``[Errno 111] Connection refused``."""
    errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", message)
    if errno:
        return errno.group(0).strip()
    grpc = re.search(r"(StatusCode\.[A-Z_]+)", message)
    if grpc:
        details = re.search(r"[Ee]rror details: (.+?)(?:\.?$)", message, re.DOTALL)
        return grpc.group(1) + (f" ({details.group(1).strip()})" if details else "")
    http = re.search(r"code: (\d+), reason: (.+)$", message)
    if http:
        return f"HTTP {http.group(1)} {http.group(2).strip()}"
    if "timeout, max retries or shutdown" in message:
        return _VAGUE
    transient = re.match(r"Transient error (.+?) encountered while exporting", message, re.DOTALL)
    if transient:
        return transient.group(1).strip()
    return message.strip().rstrip(".")


@dataclass(slots=True)
class _Trouble:
    destination: str
    since: float
    reason: str = "unknown error"
    failed_batches: int = 0
    failed_items: int = 0
    last_report: float = 0.0


class ExportReporter:
    """Aggregates export failures and drops, and reports them at most once per interval."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._trouble: dict[str, _Trouble] = {}
        self._dropped: dict[str, int] = {}
        self._failed_items: dict[str, int] = {}
        self._dropped_reported: dict[str, float] = {}
        self._reasons = threading.local()
        self.echo_to_stderr = True

    def tell(self, message: str, *args: object) -> None:
        """One of this reporter's lines: see :func:`tell`; :attr:`echo_to_stderr` off keeps it
        off stderr (a command-line tool that prints its own summary)."""
        tell(message, *args, echo=self.echo_to_stderr)

    # -- fed by the log filter -------------------------------------------------------------
    def remember_reason(self, text: str) -> None:
        """Keep the first useful failure text of this thread's export: it explains the batch."""
        reason = failure_reason(text)
        current = getattr(self._reasons, "text", None)
        if current is None or (current == _VAGUE and reason != _VAGUE):
            self._reasons.text = reason

    def take_reason(self) -> str | None:
        text = getattr(self._reasons, "text", None)
        self._reasons.text = None
        return text

    def dropped(self, signal: str, count: int = 1) -> None:
        """Items dropped because the queue is full: counted, reported once per interval."""
        now = time.monotonic()
        with self._lock:
            self._dropped[signal] = self._dropped.get(signal, 0) + count
            last = self._dropped_reported.get(signal)
            if last is not None and now - last < self.interval:
                return
            self._dropped_reported[signal] = now
            total = self._dropped[signal]
        self.tell(
            "beacon-otel: the %s export queue is full, so new %s are dropped (%d so far); "
            "the app is not affected. Check that the telemetry backend is reachable and fast enough.",
            signal,
            signal,
            total,
        )

    def report_total_dropped(self, signal: str) -> None:
        """At shutdown: the whole count, since the periodic line may have said "1 so far"."""
        total = self.dropped_total(signal)
        if total:
            self.tell(
                "beacon-otel: %d %s were dropped in all because the export queue was full.", total, signal
            )

    def dropped_total(self, signal: str) -> int:
        """Items dropped because the queue was full, since the start."""
        with self._lock:
            return self._dropped.get(signal, 0)

    def failed_total(self, signal: str) -> int:
        """Items lost in exports that failed for good (retries exhausted), since the start."""
        with self._lock:
            return self._failed_items.get(signal, 0)

    def failing(self) -> dict[str, tuple[str, str]]:
        """Signals whose exports are failing now: ``{signal: (destination, reason)}``."""
        with self._lock:
            return {signal: (t.destination, t.reason) for signal, t in self._trouble.items()}

    # -- fed by the exporters --------------------------------------------------------------
    def failed(self, signal: str, destination: str, items: int, reason: str | None = None) -> None:
        now = time.monotonic()
        reason = reason or self.take_reason() or "the exporter gave no reason"
        with self._lock:
            self._failed_items[signal] = self._failed_items.get(signal, 0) + items
            trouble = self._trouble.get(signal)
            if trouble is None:
                trouble = self._trouble[signal] = _Trouble(destination=destination, since=now)
            trouble.reason = reason
            trouble.failed_batches += 1
            trouble.failed_items += items
            if trouble.last_report and now - trouble.last_report < self.interval:
                return
            first = trouble.last_report == 0.0
            trouble.last_report = now
            batches, count = trouble.failed_batches, trouble.failed_items
        if first:
            self.tell(
                "beacon-otel: cannot export %s to %s: %s. The app is not affected; %s are dropped "
                "until the backend answers, and this is reported at most every %g s.",
                signal,
                destination,
                reason,
                signal,
                self.interval,
            )
        else:
            self.tell(
                "beacon-otel: still cannot export %s to %s: %s (%d batches, %d %s lost since the "
                "first failure).",
                signal,
                destination,
                reason,
                batches,
                count,
                signal,
            )

    def succeeded(self, signal: str) -> None:
        if signal not in self._trouble:
            return
        with self._lock:
            trouble = self._trouble.pop(signal, None)
        if trouble is not None:
            self.tell(
                "beacon-otel: exporting %s to %s works again after %.0f s (%d batches, %d %s lost).",
                signal,
                trouble.destination,
                time.monotonic() - trouble.since,
                trouble.failed_batches,
                trouble.failed_items,
                signal,
            )


class _CaptureExporterLogs(logging.Filter):
    """Swallows upstream exporter warnings, keeping their text as the failure reason."""

    def __init__(self, reporter: ExportReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        with contextlib.suppress(Exception):  # a malformed record must not escape from a filter
            self.reporter.remember_reason(record.getMessage())
        return False


class _CountQueueDrops(logging.Filter):
    """Turns the batch processors' per-item 'Queue full' warnings into a counter."""

    def __init__(self, reporter: ExportReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and str(record.msg).startswith(_upstream.QUEUE_FULL_PREFIX):
            exporting = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
            self.reporter.dropped("logs" if exporting.lower().startswith("log") else "traces")
            return False
        return True


class _QuietMetricReader(logging.Filter):
    """The periodic metric reader logs a traceback per failed collection; keep the text only."""

    def __init__(self, reporter: ExportReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.reporter.remember_reason(record.getMessage())
            return False
        return True


def install_log_capture(reporter: ExportReporter) -> None:
    """Attach the filters once; later calls replace the reporter they feed."""
    for name in _EXPORTER_LOGGERS:
        _replace_filter(logging.getLogger(name), _CaptureExporterLogs(reporter))
    for name in _QUEUE_LOGGERS:
        _replace_filter(logging.getLogger(name), _CountQueueDrops(reporter))
    for name in _METRIC_READER_LOGGERS:
        _replace_filter(logging.getLogger(name), _QuietMetricReader(reporter))


def _replace_filter(target: logging.Logger, new: logging.Filter) -> None:
    for existing in list(target.filters):
        if type(existing) is type(new):
            target.removeFilter(existing)
    target.addFilter(new)
