"""The status page's arithmetic and HTML, on samples shaped like Prometheus's answers (the page
on the real Prometheus, in Chromium, is tests/test_alerting.py), and the command's errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from beacon_otel.status_page import history
from beacon_otel.status_page.collect import Report
from beacon_otel.status_page.render import duration, page, percent
from tests.support.processes import BIN, clean_env, free_port

HOUR = 3600.0
NOW = 1_796_400_000.0  # a fixed instant; the functions take time as an argument


def _alerts(labels: dict[str, str], times: list[float]) -> dict[str, object]:
    return {
        "metric": {"__name__": "ALERTS", "alertstate": "firing", **labels},
        "values": [[t, "1"] for t in times],
    }


def test_incidents_split_on_gaps_and_only_firing_alerts_are_ongoing() -> None:
    down = {"alertname": "BeaconProviderDown", "severity": "warning", "beacon_provider_name": "golem-us",
            "beacon_provider_region": "us-east"}  # fmt: skip
    ready = {"alertname": "BeaconRouterNotReady", "severity": "critical", "http_url": "http://router/ready"}
    series = [
        # two runs, 15 s apart samples, a 10-minute gap between them; still firing
        _alerts(down, [NOW - 3000 + 15 * i for i in range(10)] + [NOW - 1800 + 15 * i for i in range(5)]),
        _alerts(ready, [NOW - 7200 + 15 * i for i in range(4)]),
        _alerts({"alertname": "BeaconTelemetryDropped", "severity": "warning"}, [NOW - 60]),  # internal
    ]
    found = history.incidents(series, firing={history.alert_key(series[0]["metric"])})  # type: ignore[arg-type]
    assert [(i.title, i.start, i.end) for i in found] == [
        ("Provider down: golem-us (us-east)", NOW - 1800, None),
        ("Provider down: golem-us (us-east)", NOW - 3000, NOW - 3000 + 135),
        ("Inference unavailable", NOW - 7200, NOW - 7200 + 45),
    ]


def _deploy(
    instance: str, status: str, at: float, seconds: float
) -> tuple[dict[str, object], dict[str, object]]:
    labels = {"instance": instance, "deployment_status": status, "deployment_environment_name": "production"}
    return (
        {"metric": {"__name__": "beacon_deployments_total", **labels}, "values": [[at, "1"], [at + 15, "1"]]},
        {
            "metric": {"__name__": "beacon_deployment_duration_seconds_sum", **labels},
            "values": [[at, str(seconds)]],
        },
    )


def test_deployment_history_success_rate_median_and_time_to_recovery() -> None:
    runs = [
        _deploy("a", "succeeded", NOW - 5 * HOUR, 100),
        _deploy("b", "failed", NOW - 4 * HOUR, 300),
        _deploy("c", "failed", NOW - 3 * HOUR, 200),
        _deploy("d", "succeeded", NOW - 2.5 * HOUR, 120),  # recovery: 1.5 h after the first failure
    ]
    deployments = history.deployments([r[0] for r in runs], [r[1] for r in runs])
    assert [d.status for d in deployments] == ["succeeded", "failed", "failed", "succeeded"]
    assert deployments[0].at == NOW - 2.5 * HOUR and deployments[0].duration == 120
    stats = history.deployment_stats(deployments)
    assert (stats.total, stats.succeeded, stats.success_rate) == (4, 2, 0.5)
    assert stats.median_duration == 160
    assert (stats.recoveries, stats.mean_time_to_recovery) == (1, 1.5 * HOUR)
    assert history.deployment_stats([]).success_rate is None


def test_bars_cover_whole_hours_and_mark_missing_ones() -> None:
    end = history.bar_ends(NOW + 10, 3600)
    assert end % 3600 == 0 and NOW < end <= NOW + 3600 + 10
    bars = history.bars([[end - 3600, "0.5"], [end, "1"]], end, 3, 3600)
    assert [(b.end, b.uptime) for b in bars] == [(end - 7200, None), (end - 3600, 0.5), (end, 1.0)]


def test_overall_state() -> None:
    def component(name: str, state: str, detail: str = "golem · us-east") -> history.Component:
        return history.Component(name, detail, state)

    router = [component("Router API", "up", "router"), component("Inference", "up", "router")]
    ongoing = [history.Incident("Slow responses", "BeaconHighLatency", "warning", NOW, None)]
    assert history.overall([*router, component("golem-us", "up")], []) == "ok"
    assert history.overall([*router, component("golem-us", "down")], []) == "partial"
    assert history.overall([*router, component("golem-us", "up")], ongoing) == "partial"
    assert history.overall([component("Router API", "down", "router")], []) == "major"
    assert history.overall([component("Router API", "unknown", "router")], []) == "unknown"


def test_the_page_escapes_what_it_shows_and_formats_numbers() -> None:
    component = history.Component("<script>x</script>", "golem · us-east", "up")
    report = Report(
        title="Beacon & co",
        generated=NOW,
        overall="ok",
        components=[component],
        incidents=[history.Incident('Provider down: "<b>"', "BeaconProviderDown", "warning", NOW - 60, NOW)],
        deployments=[],
        stats=history.deployment_stats([]),
    )
    text = page(report)
    assert "<script>x" not in text and "&lt;script&gt;x" in text
    assert "Beacon &amp; co status" in text and "&quot;&lt;b&gt;&quot;" in text
    assert "No deployment recorded" in text and "<script" not in text.replace("&lt;script", "")
    assert (percent(None), percent(1.0), percent(0.99951), percent(0.5)) == (
        "no data",
        "100 %",
        "99.95 %",
        "50.00 %",
    )
    assert (duration(0.4), duration(95), duration(600), duration(5400), duration(200_000)) == (
        "0 s",
        "1 min 35 s",
        "10 min",
        "1 h 30 min",
        "2 d 7 h",
    )


def test_the_command_names_the_flag_when_prometheus_is_wrong_or_unreachable(tmp_path: Path) -> None:
    def status_page(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "beacon-otel"), "status-page", "--prometheus", url, "--out", str(tmp_path / "site")],
            env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    malformed = status_page("localhost:9090")
    assert (
        malformed.returncode == 2 and "--prometheus 'localhost:9090': expected an http://" in malformed.stderr
    )
    closed = status_page(f"http://127.0.0.1:{free_port()}")
    assert closed.returncode == 2 and "--prometheus http://127.0.0.1:" in closed.stderr
    assert "cannot query Prometheus" in closed.stderr and "Traceback" not in closed.stderr
    assert not (tmp_path / "site").exists()
