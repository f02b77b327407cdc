"""Traces from ``trace_spans`` rows: the span tree, the team's anomaly rules, text and JSON views.

Pure functions, no I/O: ``beacon_otel.tools.traces`` queries Postgres and hands the rows here,
so that every rule below is testable on plain data and the output depends only on its input.

The anomaly rules are those of the team's SQL diagnostics (``diagnose_execution_trace``):

- *slow*: the span took over 3x the average ``duration_ms`` of its (service, operation);
- *gap*: the next span (in start order within the trace) started over 5 s after this one ended
  (``LEAD(started_at) - completed_at``);
- *error*: status ``failed`` or ``timeout``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

SLOW_FACTOR = 3
GAP_THRESHOLD = timedelta(seconds=5)
ERROR_STATUSES = ("failed", "timeout")

AnomalyKind = Literal["slow", "gap", "error"]
MARKERS: dict[AnomalyKind, str] = {"slow": "S", "gap": "G", "error": "E"}
LEGEND: dict[AnomalyKind, str] = {
    "slow": "over 3x the average duration of its service+operation",
    "gap": "gap over 5 s before the next span",
    "error": "status failed or timeout",
}
# How bad a status is, to name a trace by its worst span; words the table does not define rank
# with "started" (unknown outcome).
_SEVERITY = {"completed": 0, "started": 1, "timeout": 2, "failed": 3}

_DURATION_WIDTH = 9
_STATUS_WIDTH = 9
_FLAGS_WIDTH = len(MARKERS)
# label, space, duration, space, status, space, flags, space, "|", bar, "|"
_FIXED_WIDTH = 1 + _DURATION_WIDTH + 1 + _STATUS_WIDTH + 1 + _FLAGS_WIDTH + 1 + 2
MIN_BAR_WIDTH = 10
MIN_LABEL_WIDTH = 12
MIN_WIDTH = MIN_LABEL_WIDTH + _FIXED_WIDTH + MIN_BAR_WIDTH


@dataclass(eq=False)
class Span:
    """One ``trace_spans`` row, and its place in the tree once :func:`build_forest` ran.
    Compared by identity: two rows may well carry the same span_id (no unique index before
    ``beacon-otel sink migrate``)."""

    row_id: int
    trace_id: UUID
    span_id: UUID
    parent_span_id: UUID | None
    service: str
    operation: str
    started_at: datetime
    completed_at: datetime | None
    duration_ms: int | None
    status: str
    job_id: str | None = None
    execution_id: int | None = None
    model_id: str | None = None
    region: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    url: str | None = None  # the sink's rows: the span's url.full (scrubbed) or server.address
    children: list[Span] = field(default_factory=list, repr=False)
    anomalies: list[Anomaly] = field(default_factory=list, repr=False)

    @property
    def elapsed_ms(self) -> float | None:
        """``duration_ms``, or completed_at - started_at when a writer left the column empty."""
        if self.duration_ms is not None:
            return float(self.duration_ms)
        if self.completed_at is not None:
            return _ms(self.completed_at - self.started_at)
        return None

    @property
    def ended_at(self) -> datetime | None:
        """When the span ended; None while it is still ``started`` with no timing at all."""
        if self.completed_at is not None:
            return self.completed_at
        if self.duration_ms is not None:
            return self.started_at + timedelta(milliseconds=self.duration_ms)
        return None

    @property
    def is_error(self) -> bool:
        return self.status in ERROR_STATUSES

    def label(self) -> str:
        return f"{self.service} {self.operation}"


@dataclass(frozen=True)
class Average:
    """The history of one (service, operation): mean ``duration_ms`` over ``samples`` rows."""

    mean_ms: float
    samples: int


@dataclass(frozen=True)
class Anomaly:
    """One flag on one span; ``details`` holds the figures that triggered it (for JSON and text)."""

    kind: AnomalyKind
    span: Span
    details: Mapping[str, Any]
    next_span: Span | None = None

    def describe(self) -> str:
        """One human line, the way the team's ``anomaly_reason`` column words it."""
        span, details = self.span, self.details
        if self.kind == "slow":
            ratio = details["ratio"]
            times = "over 3x" if ratio is None else f"{ratio:.1f}x"
            return (
                f"{format_ms(details['duration_ms'])}, {times} the average "
                f"{format_ms(details['average_ms'])} of {details['samples']} spans"
            )
        if self.kind == "gap":
            following = self.next_span.label() if self.next_span is not None else "?"
            return f"gap of {format_ms(details['gap_ms'])} before the next span ({following})"
        return f"{span.status} ({error_text(span)})"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "span_id": str(self.span.span_id),
            "service": self.span.service,
            "operation": self.span.operation,
            **self.details,
        }


@dataclass(frozen=True)
class TraceSummary:
    """One line of the list: what a trace is, at a glance."""

    trace_id: UUID
    started_at: datetime
    ended_at: datetime
    span_count: int
    services: tuple[str, ...]
    status: str

    @property
    def duration_ms(self) -> float:
        return _ms(self.ended_at - self.started_at)

    def as_json(self) -> dict[str, Any]:
        return {
            "trace_id": str(self.trace_id),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "duration_ms": _number(self.duration_ms),
            "span_count": self.span_count,
            "services": list(self.services),
            "status": self.status,
        }


@dataclass
class Trace:
    """All rows of one trace_id: runner rows and sink rows together, as a forest."""

    trace_id: UUID
    spans: list[Span]
    roots: list[Span]
    anomalies: list[Anomaly]

    @property
    def started_at(self) -> datetime:
        return self.spans[0].started_at

    @property
    def ended_at(self) -> datetime:
        return max(span.ended_at or span.started_at for span in self.spans)

    def summary(self) -> TraceSummary:
        return TraceSummary(
            trace_id=self.trace_id,
            started_at=self.started_at,
            ended_at=self.ended_at,
            span_count=len(self.spans),
            services=tuple(sorted({span.service for span in self.spans})),
            status=worst_status(span.status for span in self.spans),
        )


def worst_status(statuses: Iterable[str]) -> str:
    """The status that names a trace in the list: failed > timeout > started > completed."""
    return max(statuses, key=lambda status: (_SEVERITY.get(status, 1), status), default="completed")


def _start_key(span: Span) -> tuple[datetime, int]:
    """Start order, ties broken by row id: the same order every run, as the SQL's ORDER BY."""
    return (span.started_at, span.row_id)


def build_trace(trace_id: UUID, rows: Sequence[Span], averages: Mapping[tuple[str, str], Average]) -> Trace:
    """The tree and the anomalies of one trace; ``rows`` all carry ``trace_id``."""
    spans = sorted(rows, key=_start_key)
    roots = build_forest(spans)
    anomalies = find_anomalies(spans, averages)
    return Trace(trace_id=trace_id, spans=spans, roots=roots, anomalies=anomalies)


def build_forest(spans: Sequence[Span]) -> list[Span]:
    """Attach each span to its parent; the roots are returned in start order.

    A root has no parent, or a parent that is not in the trace: the Go runner's rows (parent
    NULL) and the topmost OTel span (its parent lives in another process or was not exported)
    are roots side by side. Rows that point at each other in a cycle would be reachable from no
    root; the earliest of them becomes a root so that no row is ever hidden.
    """
    by_id: dict[UUID, Span] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    roots: list[Span] = []
    for span in sorted(spans, key=_start_key):
        parent = by_id.get(span.parent_span_id) if span.parent_span_id is not None else None
        if parent is None or parent is span:
            roots.append(span)
        else:
            parent.children.append(span)
    reached = {id(span) for span, _ in walk(roots)}
    for span in sorted(spans, key=_start_key):
        if id(span) not in reached:
            assert span.parent_span_id is not None
            by_id[span.parent_span_id].children.remove(span)
            roots.append(span)
            reached.update(id(node) for node, _ in walk([span]))
    roots.sort(key=_start_key)
    return roots


def walk(roots: Sequence[Span]) -> Iterator[tuple[Span, int]]:
    """Depth-first, children in start order, with each span's depth; iterative, so a very deep
    chain of spans cannot hit the recursion limit."""
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        yield span, depth
        stack.extend((child, depth + 1) for child in reversed(span.children))


def find_anomalies(spans: Sequence[Span], averages: Mapping[tuple[str, str], Average]) -> list[Anomaly]:
    """The team's three rules, applied to spans in start order; each span's ``anomalies`` is
    filled too, and the list comes back in start order, rule by rule."""
    anomalies: list[Anomaly] = []
    for index, span in enumerate(spans):
        following = spans[index + 1] if index + 1 < len(spans) else None
        found = [
            _slow(span, averages.get((span.service, span.operation))),
            _gap(span, following),
            _error(span),
        ]
        span.anomalies = [anomaly for anomaly in found if anomaly is not None]
        anomalies.extend(span.anomalies)
    return anomalies


def _slow(span: Span, average: Average | None) -> Anomaly | None:
    """Over 3x the mean of its (service, operation) over the whole table."""
    elapsed = span.elapsed_ms
    if elapsed is None or average is None or average.samples == 0:
        return None
    if elapsed <= SLOW_FACTOR * average.mean_ms:
        return None
    ratio = elapsed / average.mean_ms if average.mean_ms > 0 else None
    return Anomaly(
        "slow",
        span,
        {
            "duration_ms": _number(elapsed),
            "average_ms": average.mean_ms,
            "samples": average.samples,
            "ratio": ratio,
        },
    )


def _gap(span: Span, following: Span | None) -> Anomaly | None:
    """The next span in start order began over 5 s after this one ended."""
    ended = span.ended_at
    if following is None or ended is None:
        return None
    gap = following.started_at - ended
    if gap <= GAP_THRESHOLD:
        return None
    details = {"gap_ms": _number(_ms(gap)), "next_span_id": str(following.span_id)}
    return Anomaly("gap", span, details, next_span=following)


def _error(span: Span) -> Anomaly | None:
    if not span.is_error:
        return None
    return Anomaly(
        "error",
        span,
        {"status": span.status, "error_type": span.error_type, "error_message": span.error_message},
    )


# --- text ---------------------------------------------------------------------------------------


def format_ms(value: float | None) -> str:
    """A duration short enough for a 9-character column: 950 ms, 12.35 s, 4m05s, 2h10m."""
    if value is None:
        return "?"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.2f} s"
    seconds = int(value // 1000)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_time(moment: datetime) -> str:
    """UTC to the millisecond: the same text on every operator's machine."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def error_text(span: Span) -> str:
    """What went wrong, on one line: ``error_type: error_message``, without saying the type twice
    when the message starts with it (the provider spans' ``http_500: HTTP 500``), a bare status
    code as ``HTTP 500``, and the URL the span called when the row has one."""
    kind = " ".join((span.error_type or "").split())
    message = " ".join((span.error_message or "").split())
    if len(kind) == 3 and kind.isdigit():  # error.type of an HTTP client span: the status code
        kind = f"HTTP {kind}"
    if kind and (message == kind or message.startswith(f"{kind}:")):
        kind = ""
    text = ": ".join(part for part in (kind, message) if part) or "(no error recorded)"
    return f"{text} ({span.url})" if span.url else text


def fit(text: str, width: int) -> str:
    """Cut to ``width`` characters, a ``~`` showing that something was cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "~"


def _column_widths(trace: Trace, width: int) -> tuple[int, int]:
    """(label, bar) widths: labels as wide as needed up to half of what is left, the bar gets
    the rest, and neither falls below its minimum (the line then exceeds ``width``)."""
    needed = max(len("  " * depth + span.label()) for span, depth in walk(trace.roots))
    room = width - _FIXED_WIDTH
    label = max(MIN_LABEL_WIDTH, min(max(needed, len("span")), room // 2))
    return label, max(MIN_BAR_WIDTH, room - label)


def _bar(span: Span, start: datetime, total_us: int, width: int) -> str:
    """The span's bar: from its start offset, as long as its duration, on a scale where the
    whole trace fills ``width``; at least one character, so that no span is invisible."""
    offset_us = _us(span.started_at - start)
    ended = span.ended_at
    end_us = _us(ended - start) if ended is not None else offset_us
    first = min(offset_us * width // total_us, width - 1)
    last = min(max(-(-end_us * width // total_us), first + 1), width)
    char = "#" if span.is_error else ("=" if ended is not None else ".")
    return " " * first + char * (last - first) + " " * (width - last)


def render_trace(trace: Trace, width: int) -> list[str]:
    """The waterfall of one trace, ``width`` columns wide: a header, one line per span (with
    its error under a failed one), then the anomalies and their legend."""
    label_width, bar_width = _column_widths(trace, width)
    summary = trace.summary()
    total_us = max(_us(summary.ended_at - summary.started_at), 1)
    total = format_ms(summary.duration_ms)
    lines = [
        fit(
            f"trace {summary.trace_id}  {format_time(summary.started_at)} UTC  {total}  "
            f"{summary.span_count} spans  {summary.status}",
            width,
        ),
        fit(f"services: {', '.join(summary.services)}", width),
        f"{'span':<{label_width}} {'duration':>{_DURATION_WIDTH}} {'status':<{_STATUS_WIDTH}} "
        f"{'':<{_FLAGS_WIDTH}} |{'0':<{bar_width - len(total)}}{total}|",
    ]
    for span, depth in walk(trace.roots):
        label = fit("  " * depth + span.label(), label_width)
        kinds = {anomaly.kind for anomaly in span.anomalies}
        flags = "".join(marker if kind in kinds else " " for kind, marker in MARKERS.items())
        lines.append(
            f"{label:<{label_width}} {format_ms(span.elapsed_ms):>{_DURATION_WIDTH}} "
            f"{fit(span.status, _STATUS_WIDTH):<{_STATUS_WIDTH}} {flags} "
            f"|{_bar(span, summary.started_at, total_us, bar_width)}|"
        )
        if span.is_error:
            lines.append(fit(f"{'  ' * depth}  ! {error_text(span)}", width))
    lines.extend(_anomaly_lines(trace, width))
    return lines


def _anomaly_lines(trace: Trace, width: int) -> list[str]:
    if not trace.anomalies:
        return ["anomalies: none"]
    lines = [f"anomalies: {len(trace.anomalies)}"]
    for anomaly in trace.anomalies:
        marker = MARKERS[anomaly.kind]
        lines.append(fit(f"  {marker} {anomaly.span.label()}: {anomaly.describe()}", width))
    kinds = {anomaly.kind for anomaly in trace.anomalies}
    legend = [f"{MARKERS[kind]} = {LEGEND[kind]}" for kind in MARKERS if kind in kinds]
    lines.extend(
        fit(f"{'legend:' if index == 0 else '':<8}{text}", width) for index, text in enumerate(legend)
    )
    return lines


def render_summaries(summaries: Sequence[TraceSummary]) -> list[str]:
    """The list: one line per trace, newest first, columns aligned for reading and grep."""
    lines = [
        f"{'trace_id':<36}  {'start (UTC)':<23}  {'duration':>{_DURATION_WIDTH}}  {'spans':>5}  "
        f"{'status':<{_STATUS_WIDTH}}  services"
    ]
    for summary in summaries:
        lines.append(
            f"{summary.trace_id!s:<36}  {format_time(summary.started_at):<23}  "
            f"{format_ms(summary.duration_ms):>{_DURATION_WIDTH}}  {summary.span_count:>5}  "
            f"{fit(summary.status, _STATUS_WIDTH):<{_STATUS_WIDTH}}  {','.join(summary.services)}"
        )
    return lines


# --- JSON -----------------------------------------------------------------------------------------


def trace_json(trace: Trace) -> dict[str, Any]:
    """The exact data of one trace: summary fields, the span tree nested, the anomaly list."""
    start = trace.started_at
    return {
        **trace.summary().as_json(),
        "spans": [_span_json(root, start) for root in trace.roots],
        "anomalies": [anomaly.as_json() for anomaly in trace.anomalies],
    }


def _span_json(root: Span, trace_start: datetime) -> dict[str, Any]:
    """A span and its descendants; built without recursion, like :func:`walk`."""
    nodes: dict[int, dict[str, Any]] = {}
    for span, _ in walk([root]):
        node = {
            "id": span.row_id,
            "span_id": str(span.span_id),
            "parent_span_id": None if span.parent_span_id is None else str(span.parent_span_id),
            "service": span.service,
            "operation": span.operation,
            "started_at": span.started_at.isoformat(),
            "completed_at": None if span.completed_at is None else span.completed_at.isoformat(),
            "offset_ms": _number(_ms(span.started_at - trace_start)),
            "duration_ms": None if span.elapsed_ms is None else _number(span.elapsed_ms),
            "status": span.status,
            "job_id": span.job_id,
            "execution_id": span.execution_id,
            "model_id": span.model_id,
            "region": span.region,
            "error_type": span.error_type,
            "error_message": span.error_message,
            "url": span.url,
            "anomalies": [anomaly.kind for anomaly in span.anomalies],
        }
        nodes[id(span)] = node
    for span, _ in walk([root]):
        nodes[id(span)]["children"] = [nodes[id(child)] for child in span.children]
    return nodes[id(root)]


# --- units ----------------------------------------------------------------------------------------


def _us(delta: timedelta) -> int:
    """Whole microseconds: Postgres's resolution, so that bar positions are exact integers."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _ms(delta: timedelta) -> float:
    return _us(delta) / 1000


def _number(value: float) -> int | float:
    """Whole milliseconds as an int in JSON (the column's own type), fractions kept otherwise."""
    return int(value) if float(value).is_integer() else value
