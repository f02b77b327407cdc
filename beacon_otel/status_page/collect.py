"""What the status page shows, read from Prometheus: the recording rules of
``collector/prometheus/rules/`` (``beacon:httpcheck_up:latest``, ``beacon:provider_up:max``),
the ``ALERTS`` series Prometheus keeps of every alert, and the deploy-event metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from beacon_otel.status_page import history
from beacon_otel.status_page.prometheus import Prometheus

ROUTER_CHECKS = (("Router API", ".*/health"), ("Inference", ".*/ready"))
PROVIDERS = "beacon:provider_up:max"
HISTORY = "30d"


@dataclass
class Report:
    title: str
    generated: float
    overall: str
    components: list[history.Component]
    incidents: list[history.Incident]
    deployments: list[history.Deployment]
    stats: history.DeploymentStats


def _scalar(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if result else None


def _router_check(url: str) -> str:
    return f'beacon:httpcheck_up:latest{{http_url=~"{url}"}}'


def _windows(prometheus: Prometheus, uptime: str, now: float) -> dict[str, list[history.Window]]:
    """``uptime`` has ``$span`` where the averaging range goes; one list of windows per series
    key (``""`` for a query without labels, else the provider's name)."""
    found: dict[str, list[history.Window]] = {}
    for label, count, step in history.WINDOWS:
        end = history.bar_ends(now, step)
        ranged = prometheus.range(uptime.replace("$span", f"{step}s"), end - (count - 1) * step, end, step)
        whole = prometheus.instant(uptime.replace("$span", f"{count * step}s"), now)
        totals = {item["metric"].get("beacon_provider_name", ""): float(item["value"][1]) for item in whole}
        for item in ranged:
            key = item["metric"].get("beacon_provider_name", "")
            window = history.Window(label, history.bars(item["values"], end, count, step), totals.get(key))
            found.setdefault(key, []).append(window)
    return found


def _empty_windows(now: float) -> list[history.Window]:
    return [
        history.Window(label, history.bars([], history.bar_ends(now, step), count, step), None)
        for label, count, step in history.WINDOWS
    ]


def components(prometheus: Prometheus, now: float) -> list[history.Component]:
    found = []
    for name, url in ROUTER_CHECKS:
        current = _scalar(prometheus.instant(f"min({_router_check(url)})", now))
        windows = _windows(prometheus, f"min(avg_over_time({_router_check(url)}[$span]))", now)
        found.append(
            history.Component(name, "router", history.state_of(current), windows.get("", _empty_windows(now)))
        )
    now_up = {
        item["metric"].get("beacon_provider_name"): float(item["value"][1])
        for item in prometheus.instant(PROVIDERS, now)
    }
    seen = prometheus.instant(f"last_over_time({PROVIDERS}[{HISTORY}])", now)
    windows = _windows(prometheus, f"avg_over_time({PROVIDERS}[$span])", now)
    providers = []
    for item in seen:
        labels = item["metric"]
        name = labels.get("beacon_provider_name", "unknown")
        detail = " · ".join(
            filter(None, (labels.get("beacon_provider_type"), labels.get("beacon_provider_region")))
        )
        state = history.state_of(now_up.get(name))
        providers.append(history.Component(name, detail, state, windows.get(name, _empty_windows(now))))
    return found + sorted(providers, key=lambda c: (c.detail.split(" · ")[-1], c.name))


def collect(prometheus: Prometheus, now: float, title: str) -> Report:
    parts = components(prometheus, now)
    firing = {
        history.alert_key(item["metric"]) for item in prometheus.instant('ALERTS{alertstate="firing"}', now)
    }
    incidents = history.incidents(
        prometheus.instant(f'ALERTS{{alertstate="firing"}}[{HISTORY}]', now), firing
    )
    deployments = history.deployments(
        prometheus.instant(f"beacon_deployments_total[{HISTORY}]", now),
        prometheus.instant(f"beacon_deployment_duration_seconds_sum[{HISTORY}]", now),
    )
    return Report(
        title=title,
        generated=now,
        overall=history.overall(parts, [incident for incident in incidents if incident.end is None]),
        components=parts,
        incidents=incidents,
        deployments=deployments,
        stats=history.deployment_stats(deployments),
    )
