"""Alerts, dashboard and status page on the real programs: the demo router under
``beacon-otel-run`` -> the built Collector -> the built Prometheus (the shipped rules, with
``for:`` cut to seconds) -> the built Alertmanager -> a local webhook receiver standing in for
Slack. One scenario, run once for the module: traffic, deployments, lost telemetry, then a
provider that goes down and comes back. The tests assert on what arrived."""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon_otel.stack import addresses
from beacon_otel.stack.up import Stack
from tests.conftest import FakeProviders
from tests.support.alerting import (
    WebhookReceiver,
    alertmanager_alerts,
    prometheus_alerts,
    prometheus_query,
    shortened_rules,
)
from tests.support.chromium import dump_dom, screenshot
from tests.support.processes import BIN, ROOT, Launched, clean_env, free_port, launch, uvicorn_command
from tests.support.stack import eventually, otlp_http_endpoint, running_stack

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ROUTER_PORT = free_port()  # the uptime checks need the router's address before the stack starts
DOWN = "golem-us"


@dataclass
class Scenario:
    stack: Stack
    receiver: WebhookReceiver
    app: Launched
    tmp: Path
    started: float = field(default_factory=time.time)
    # The router's cost_estimate of every inference of the scenario.
    estimates: list[float] = field(default_factory=list)
    # What Prometheus and Alertmanager said while the provider was down.
    prometheus_firing: list[dict[str, Any]] = field(default_factory=list)
    alertmanager_firing: list[dict[str, Any]] = field(default_factory=list)


def _value(stack: Stack, expr: str) -> float | None:
    result = prometheus_query(stack, expr)
    return float(result[0]["value"][1]) if result else None


def _slack(receiver: WebhookReceiver, status: str, alertname: str) -> list[dict[str, Any]]:
    """The Slack messages (attachments) about ``alertname`` in state ``status``."""
    prefix = f"[{status.upper()}"
    return [
        attachment
        for body in receiver.bodies("/slack")
        for attachment in body.get("attachments", [])
        if attachment["title"].startswith(prefix) and alertname in attachment["title"]
    ]


def _traffic(app: Launched) -> list[float]:
    """Requests of every kind the dashboard shows: routes, a 500, inference successes and
    failures (modal-eu reports an execution failure for each inference sent to eu-west); returns
    the router's cost estimates."""
    assert app.base_url is not None
    estimates = []
    for _ in range(3):
        assert app.get("/providers").status_code == 200
        assert app.get("/boom").status_code == 500
        for region in ("us-east", "eu-west"):
            response = httpx.post(
                f"{app.base_url}/inference",
                json={"model": "llama-3-8b", "prompt": "hello", "region_preference": region},
                timeout=10,
            )
            assert response.status_code == 200
            estimates.append(response.json()["cost_estimate"])
    return estimates


def _deploy(stack: Stack, status: str, seconds: int) -> None:
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http_endpoint(stack), OTEL_SERVICE_NAME="hybrid-router")
    result = subprocess.run(
        [str(BIN / "beacon-otel"), "deploy-event", "--status", status, "--duration", str(seconds),
         "--environment", "production", "--revision", f"rev-{status}-{seconds}"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0 and "recorded" in result.stdout, result.stderr


def _lose_spans(stack: Stack) -> None:
    """A process whose span queue holds one span, so a burst of 50 drops most of them."""
    burst = (
        "from opentelemetry import trace\nfor _ in range(50): trace.get_tracer('burst').start_span('s').end()"
    )
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http_endpoint(stack),
        OTEL_SERVICE_NAME="lossy-worker",
        OTEL_BSP_MAX_QUEUE_SIZE="1",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="1",
        OTEL_BSP_SCHEDULE_DELAY="60000",
    )
    result = subprocess.run(
        [str(BIN / "beacon-otel-run"), "python", "-c", burst],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory, fake_providers_server: FakeProviders
) -> Iterator[Scenario]:
    fake = fake_providers_server
    fake.reset()
    fake.set_mode("modal-eu", "execfail")
    tmp = tmp_path_factory.mktemp("alerting")
    with (
        WebhookReceiver() as receiver,
        running_stack(
            tmp,
            alerting=True,
            BEACON_PROMETHEUS_SCRAPE_INTERVAL="1s",
            BEACON_PROMETHEUS_RULES=str(shortened_rules(tmp / "rules")),
            BEACON_ALERT_SLACK_WEBHOOK_URL=receiver.url("/slack"),
            BEACON_ALERT_WEBHOOK_URL=receiver.url("/webhook"),
            BEACON_ALERT_GROUP_WAIT="1s",
            BEACON_ALERT_GROUP_INTERVAL="1s",
            BEACON_COLLECTOR_CHECK_INTERVAL="1s",
            BEACON_COLLECTOR_HEALTH_URL=f"http://127.0.0.1:{ROUTER_PORT}/health",
            BEACON_COLLECTOR_READY_URL=f"http://127.0.0.1:{ROUTER_PORT}/ready",
        ) as stack,
    ):
        env = clean_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http_endpoint(stack),
            OTEL_SERVICE_NAME="hybrid-router",
            OTEL_METRIC_EXPORT_INTERVAL="500",
            BEACON_OTEL_PROVIDER_HOOKS="demo_router.router",
            BEACON_OTEL_HEALTH_INTERVAL="1",
            DEMO_PROVIDERS=",".join(
                [
                    fake.spec(DOWN, "golem", "us-east"),
                    fake.spec("modal-us", "modal", "us-east"),
                    fake.spec("modal-eu", "modal", "eu-west"),
                ]
            ),
        )
        with launch(uvicorn_command(ROUTER_PORT), env, tmp, ROUTER_PORT) as app:
            run = Scenario(stack, receiver, app, tmp)
            eventually(
                lambda: (
                    _value(stack, f'beacon:provider_up:max{{beacon_provider_name="{DOWN}"}}') == 1
                    and _value(stack, 'beacon:httpcheck_up:latest{http_url=~".*/ready"}') == 1
                ),
                60,
                f"Prometheus sees {DOWN} up and the router ready",
            )
            # Traffic before and after the deployments: a series' first sample already counts
            # what came before it, so rates (and the dashboard's percentiles) need a second round.
            run.estimates += _traffic(app)
            for status, seconds in (("success", 95), ("failure", 240), ("success", 120)):
                _deploy(stack, status, seconds)
            _lose_spans(stack)
            run.estimates += _traffic(app)

            fake.set_mode(DOWN, "fail500")
            eventually(
                lambda: _slack(receiver, "firing", "BeaconProviderDown"), 60, "the firing Slack message"
            )
            run.prometheus_firing = prometheus_alerts(stack)
            run.alertmanager_firing = alertmanager_alerts(stack)
            fake.set_mode(DOWN, "healthy")
            eventually(
                lambda: _slack(receiver, "resolved", "BeaconProviderDown"), 60, "the resolved Slack message"
            )
            eventually(
                lambda: (
                    _value(stack, "count(beacon_telemetry_dropped_total)")
                    and _value(stack, "count(beacon_deployments_total)") == 3
                ),
                30,
                "the lost spans and the three deployments in Prometheus",
            )
            yield run
    fake.reset()


def test_a_provider_down_fires_in_prometheus_reaches_alertmanager_and_slack_then_resolves(
    scenario: Scenario,
) -> None:
    down = [
        alert
        for alert in scenario.prometheus_firing
        if alert["labels"]["alertname"] == "BeaconProviderDown" and alert["state"] == "firing"
    ]
    assert [alert["labels"]["beacon_provider_name"] for alert in down] == [DOWN]
    assert down[0]["annotations"]["error_type"] == "http_500"
    assert any(
        alert["labels"]["alertname"] == "BeaconProviderDown"
        and alert["labels"]["beacon_provider_name"] == DOWN
        for alert in scenario.alertmanager_firing
    ), scenario.alertmanager_firing

    firing = _slack(scenario.receiver, "firing", "BeaconProviderDown")[0]
    assert firing["title"] == "[FIRING:1] BeaconProviderDown in us-east"
    for text in (f"provider: `{DOWN}`", "region: `us-east`", "error.type: `http_500`", "First look:"):
        assert text in firing["text"], firing["text"]
    assert firing["color"] == "warning"
    resolved = _slack(scenario.receiver, "resolved", "BeaconProviderDown")[0]
    assert resolved["title"] == "[RESOLVED] BeaconProviderDown in us-east"
    assert f"provider: `{DOWN}`" in resolved["text"] and "(resolved)" in resolved["text"]
    assert resolved["color"] == "good"
    # Only the provider that failed: modal-us, in the same region, kept the region up.
    assert not _slack(scenario.receiver, "firing", "BeaconRegionNoHealthyProvider")
    assert all(
        DOWN in message["text"] for message in _slack(scenario.receiver, "firing", "BeaconProviderDown")
    )

    # Any other webhook gets Alertmanager's JSON, firing then resolved.
    events = [
        (body["status"], alert["labels"]["beacon_provider_name"])
        for body in scenario.receiver.bodies("/webhook")
        for alert in body["alerts"]
        if alert["labels"]["alertname"] == "BeaconProviderDown"
    ]
    assert ("firing", DOWN) in events and ("resolved", DOWN) in events
    assert events.index(("firing", DOWN)) < events.index(("resolved", DOWN))


def test_the_inference_cost_reaches_prometheus_as_the_router_estimated_it(scenario: Scenario) -> None:
    """beacon.inference.cost -> the Collector -> Prometheus: the sum of the router's estimates, by
    the provider that ran each request; modal-eu's failed runs are charged and named as the
    router names them."""
    series = {}
    for sample in prometheus_query(scenario.stack, "beacon_inference_cost_total"):
        labels = sample["metric"]
        key = (labels["beacon_provider_name"], labels["outcome"], labels.get("error_type"))
        series[key] = float(sample["value"][1])
    assert set(series) == {
        ("golem-us", "success", None),
        ("modal-eu", "failure", "provider_execution_failed"),
    }
    assert all(cost > 0 for cost in series.values()), series
    assert sum(series.values()) == pytest.approx(sum(scenario.estimates), rel=1e-9)


# --- the dashboard ----------------------------------------------------------------------------------

DASHBOARD = ROOT / "collector" / "grafana" / "dashboards" / "beacon-otel.json"


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return panels


def _grafana_to_promql(expr: str, range_seconds: int) -> str:
    """What Grafana sends for the dashboard's variables: every value of $job and $region, and
    intervals sized for this scenario's 1 s scrapes."""
    for name, value in (
        ("$__rate_interval", "5s"),
        ("$__interval", "1s"),
        ("$__range", f"{range_seconds}s"),
        ("$job", ".*"),
        ("$region", ".*"),
    ):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a variable Grafana would fill and this test does not: {expr}"
    return expr


def _finite(values: list[list[Any]]) -> bool:
    return any(math.isfinite(float(value)) for _, value in values)


def _query(stack: Stack, expr: str, instant: bool, start: float, end: float) -> list[dict[str, Any]]:
    base = stack.url(addresses.PROMETHEUS)
    if instant:
        response = httpx.get(f"{base}/api/v1/query", params={"query": expr, "time": end}, timeout=10)
    else:
        params = {"query": expr, "start": start, "end": end, "step": 1}
        response = httpx.get(f"{base}/api/v1/query_range", params=params, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_every_dashboard_query_returns_data_from_the_scenario(scenario: Scenario) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    end = time.time()
    range_seconds = math.ceil(end - scenario.started) + 5
    checked = []
    for panel in _panels(dashboard):
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"]["uid"] == "beacon-prometheus", panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            expr = _grafana_to_promql(target["expr"], range_seconds)
            instant = bool(target.get("instant"))
            result = _query(scenario.stack, expr, instant, scenario.started, end)
            values = [[sample["value"]] if instant else sample["values"] for sample in result]
            assert any(_finite(series) for series in values), f"{panel['title']}: no data for {expr}"
            checked.append(panel["title"])
    assert len(set(checked)) >= 15

    # The variables' values, and the deployments annotation.
    for variable in dashboard["templating"]["list"]:
        metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"]).groups()
        response = httpx.get(
            f"{scenario.stack.url(addresses.PROMETHEUS)}/api/v1/label/{label}/values",
            params={"match[]": metric, "start": scenario.started, "end": end},
            timeout=10,
        )
        assert response.json()["data"], f"no value for the variable {variable['name']}"
    for annotation in dashboard["annotations"]["list"]:
        assert _query(scenario.stack, annotation["expr"], False, scenario.started, end), annotation["name"]


# --- the status page --------------------------------------------------------------------------------

AUDIT = ROOT / "tests" / "support" / "page_audit.html"
PHONE = (390, 1500)  # CSS pixels of a common phone's width


def _text(dom: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_the_status_page_shows_the_scenario_in_chromium(scenario: Scenario) -> None:
    site = scenario.tmp / "site"
    result = subprocess.run(
        [str(BIN / "beacon-otel"), "status-page", "--prometheus", scenario.stack.url(addresses.PROMETHEUS),
         "--out", str(site)],
        env=clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    index = site / "index.html"
    dom = dump_dom(index)
    text = _text(dom)

    status = json.loads((site / "status.json").read_text())
    assert "Project Beacon status" in text
    # Every component is up again, but eu-west's inferences keep failing (modal-eu's execfail):
    # that alert is still firing, so the page says degraded, and why.
    assert "Degraded: some providers or requests are failing" in text, text
    for component in ("Router API", "Inference", DOWN, "modal-us", "modal-eu"):
        assert component in text, component
    assert text.count("Operational") == 5, text
    assert f"Provider down: {DOWN} (us-east) Resolved" in text, text
    assert re.search(r"Inference failures: \w+ Ongoing since", text), text
    # Three deployments: success 95 s, failure 240 s, success 120 s; recovered by the third.
    assert "Success rate 67 % (2 of 3)" in text and "Median duration 2 min" in text, text
    newest, failed, _ = status["deployments"]
    assert failed["status"] == "failed" and newest["status"] == "succeeded"
    assert status["stats"]["mean_time_to_recovery"] == pytest.approx(newest["at"] - failed["at"])
    assert "Time to recovery" in text
    assert dom.count('class="pill ok">succeeded') == 2 and dom.count('class="pill down">failed') == 1
    # Offline: nothing to fetch, not even a font or an icon.
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", dom), "an external reference"

    # In a phone-sized frame: no sideways scrolling, every text at 4.5:1, every bar at 3:1.
    audit = scenario.tmp / "audit.html"
    audit.write_text(AUDIT.read_text().replace("PAGE", "site/index.html").replace("WIDTH", "360"))
    found = re.search(
        r'<pre id="result">(.*?)</pre>', dump_dom(audit, "--allow-file-access-from-files"), re.S
    )
    assert found, "the audit did not run"
    report = json.loads(html.unescape(found[1]))
    assert report["overflow"] <= 0, report
    assert report["lowText"] == [] and report["lowBars"] == [], report
    assert report["texts"] > 30 and report["bars"] == 5 * (24 + 7 + 30), report
    assert report["resources"] == [], report

    png = screenshot(index, scenario.tmp / "status-page.png", *PHONE)
    assert _png_size(png) == PHONE
