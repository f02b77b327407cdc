"""From Prometheus samples to what a status page says: uptime bars, incidents, deployments.

Pure functions of the samples and of ``now``, so they are tested without a Prometheus.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# (label, number of bars, seconds per bar)
WINDOWS = (("24 hours", 24, 3600), ("7 days", 7, 86400), ("30 days", 30, 86400))

# The alerts a public page shows, in words for its readers. The others (lost telemetry, the
# Collector, deployments) are for operators; deployments have a section of their own.
PUBLIC_ALERTS = {
    "BeaconRouterDown": "Router down",
    "BeaconRouterNotReady": "Inference unavailable",
    "BeaconRegionNoHealthyProvider": "No provider available in a region",
    "BeaconProviderDown": "Provider down",
    "BeaconProviderChecksFlapping": "Provider unstable",
    "BeaconHighErrorRatio": "Elevated error rate",
    "BeaconHighLatency": "Slow responses",
    "BeaconInferenceSlow": "Slow inference",
    "BeaconInferenceFailures": "Inference failures",
}


@dataclass(frozen=True)
class Bar:
    start: float
    end: float
    uptime: float | None  # 0..1; None: no data for this period


@dataclass(frozen=True)
class Window:
    label: str
    bars: tuple[Bar, ...]
    uptime: float | None


@dataclass
class Component:
    name: str
    detail: str
    state: str  # up | down | unknown
    windows: list[Window] = field(default_factory=list)


@dataclass(frozen=True)
class Incident:
    title: str
    alertname: str
    severity: str
    start: float
    end: float | None  # None: still going on


@dataclass(frozen=True)
class Deployment:
    at: float
    environment: str
    status: str  # succeeded | failed
    duration: float | None


@dataclass(frozen=True)
class DeploymentStats:
    total: int
    succeeded: int
    success_rate: float | None
    median_duration: float | None
    mean_time_to_recovery: float | None
    recoveries: int


def state_of(value: float | None) -> str:
    if value is None:
        return "unknown"
    return "up" if value >= 1 else "down"


def bars(values: Iterable[Sequence[Any]], end: float, count: int, step: float) -> tuple[Bar, ...]:
    """One bar per ``step`` ending at ``end``, from a range query's ``values`` evaluated at the
    bars' ends (each value covering the period before it)."""
    by_time = {round(float(t)): float(v) for t, v in values}
    result = []
    for index in range(count):
        bar_end = end - (count - 1 - index) * step
        value = by_time.get(round(bar_end))
        result.append(Bar(bar_end - step, bar_end, None if value is None else min(max(value, 0.0), 1.0)))
    return tuple(result)


def _spacing(times: Sequence[float], default: float) -> float:
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(gaps) if gaps else default


def alert_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def incidents(
    series: Iterable[Mapping[str, Any]],
    firing: set[tuple[tuple[str, str], ...]],
    default_spacing: float = 60.0,
) -> list[Incident]:
    """Incidents from ``ALERTS{alertstate="firing"}[range]`` (raw samples, one per evaluation):
    a run of samples without a gap of more than three evaluations is one incident. The last run
    of an alert that is ``firing`` now (its ``alert_key``) is still going on. Newest first."""
    found = []
    for item in series:
        labels = item["metric"]
        name = labels.get("alertname", "")
        if name not in PUBLIC_ALERTS:
            continue
        times = sorted(float(t) for t, _ in item["values"])
        if not times:
            continue
        spacing = _spacing(times, default_spacing)
        start = previous = times[0]
        runs = []
        for moment in times[1:]:
            if moment - previous > 3 * spacing:
                runs.append((start, previous))
                start = moment
            previous = moment
        runs.append((start, previous))
        title = _title(name, labels)
        ongoing = alert_key(labels) in firing
        for index, (first, last) in enumerate(runs):
            end = None if ongoing and index == len(runs) - 1 else last
            found.append(Incident(title, name, labels.get("severity", ""), first, end))
    return sorted(found, key=lambda incident: incident.start, reverse=True)


def _title(alertname: str, labels: Mapping[str, str]) -> str:
    where = [labels[key] for key in ("beacon_provider_name", "http_route", "error_type") if labels.get(key)]
    region = labels.get("beacon_provider_region")
    text = PUBLIC_ALERTS[alertname]
    if where:
        text += ": " + ", ".join(where)
    if region:
        text += f" ({region})" if where else f": {region}"
    return text


def deployments(
    counts: Iterable[Mapping[str, Any]], durations: Iterable[Mapping[str, Any]]
) -> list[Deployment]:
    """One deployment per ``beacon-otel deploy-event`` run (its own ``instance``), at its first
    sample, from ``beacon_deployments_total[range]`` and ``..._duration_seconds_sum[range]``.
    Newest first."""
    seconds = {
        item["metric"].get("instance"): float(item["values"][-1][1]) for item in durations if item["values"]
    }
    found = []
    for item in counts:
        labels = item["metric"]
        if not item["values"]:
            continue
        found.append(
            Deployment(
                at=min(float(t) for t, _ in item["values"]),
                environment=labels.get("deployment_environment_name", "unknown"),
                status=labels.get("deployment_status", "unknown"),
                duration=seconds.get(labels.get("instance")),
            )
        )
    return sorted(found, key=lambda deployment: deployment.at, reverse=True)


def deployment_stats(history: Sequence[Deployment]) -> DeploymentStats:
    """Success rate, median duration, and time to recovery: from the first failed deployment
    after a success (per environment) to the next successful one."""
    succeeded = [d for d in history if d.status == "succeeded"]
    durations = [d.duration for d in history if d.duration is not None]
    recoveries = []
    failing_since: dict[str, float] = {}
    for deployment in sorted(history, key=lambda d: d.at):
        if deployment.status == "failed":
            failing_since.setdefault(deployment.environment, deployment.at)
        elif deployment.status == "succeeded" and deployment.environment in failing_since:
            recoveries.append(deployment.at - failing_since.pop(deployment.environment))
    return DeploymentStats(
        total=len(history),
        succeeded=len(succeeded),
        success_rate=len(succeeded) / len(history) if history else None,
        median_duration=statistics.median(durations) if durations else None,
        mean_time_to_recovery=statistics.fmean(recoveries) if recoveries else None,
        recoveries=len(recoveries),
    )


def overall(components: Sequence[Component], ongoing: Sequence[Incident]) -> str:
    """major (the router or inference down), partial (a provider down, or an incident going on),
    ok, or unknown (no current data about the router)."""
    core = [c for c in components if c.detail == "router"]
    if any(c.state == "down" for c in core):
        return "major"
    if not core or any(c.state == "unknown" for c in core):
        return "unknown"
    if any(c.state == "down" for c in components) or ongoing:
        return "partial"
    return "ok"


def bar_ends(now: float, step: int) -> float:
    """The end of the last bar: the end of the current clock hour or UTC day, so that bars
    cover whole hours and days (the last one up to now)."""
    return (now // step + 1) * step
