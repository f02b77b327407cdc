"""The alert rules (collector/prometheus/rules/) on the built promtool: its unit tests
(collector/prometheus/tests/), their coverage of every alert, and the generated configs that
Prometheus and Alertmanager run, checked by the programs themselves."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from beacon_otel.stack import alertmanager_config
from beacon_otel.stack.alerting import render_prometheus_config, rule_files, scrape_interval
from beacon_otel.stack.build_alerting import alertmanager_binary, promtool_binary
from beacon_otel.stack.paths import StackError
from beacon_otel.stack.processes import Child
from tests.support.processes import BIN, ROOT, clean_env, free_port
from tests.support.stack import free_addresses, require_binaries

pytestmark = pytest.mark.stack

PROMETHEUS_DIR = ROOT / "collector" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "beacon.rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
TEMPLATES = ROOT / "collector" / "alertmanager" / "templates"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    require_binaries(alerting=True)
    return subprocess.run(
        [str(promtool_binary()), *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR
    )


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda path: path.stem)
def test_promtool_rule_tests_pass(path: Path) -> None:
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert len(names) >= 12
    assert names - fired == set(), "alerts no test sees firing"
    assert names - silent == set(), "alerts no test sees staying silent"


def test_every_alert_says_what_to_look_at_first() -> None:
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook"} <= set(annotations), rule["alert"]
        assert len(annotations["runbook"]) > 60, rule["alert"]


def test_the_rendered_prometheus_config_is_valid_and_keeps_the_stack_values(tmp_path: Path) -> None:
    rules = tmp_path / "my rules.yml"
    rules.write_text(RULES.read_text())
    text = render_prometheus_config(
        (PROMETHEUS_DIR / "prometheus.yml").read_text(),
        "127.0.0.1:18889",
        "127.0.0.1:19093",
        "2s",
        [str(rules)],
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    result = _promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = yaml.safe_load(text)
    assert loaded["global"] == {"scrape_interval": "2s", "evaluation_interval": "2s"}
    assert loaded["rule_files"] == [str(rules)]
    assert loaded["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:18889"]
    assert loaded["scrape_configs"][0]["honor_labels"] is True
    assert loaded["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:19093"]
    # The shipped file, as Compose runs it, is valid too.
    assert _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml")).returncode == 0


def test_a_template_without_a_line_the_stack_rewrites_is_refused() -> None:
    template = (PROMETHEUS_DIR / "prometheus.yml").read_text().replace('"collector:8889"', '"otel:8889"')
    with pytest.raises(StackError, match="collector:8889"):
        render_prometheus_config(template, "a:1", "b:2", "1s", ["x"])


def test_bad_stack_variables_are_named() -> None:
    with pytest.raises(StackError, match="BEACON_PROMETHEUS_SCRAPE_INTERVAL='often'"):
        scrape_interval({"BEACON_PROMETHEUS_SCRAPE_INTERVAL": "often"})
    with pytest.raises(StackError, match="BEACON_PROMETHEUS_RULES"):
        rule_files({"BEACON_PROMETHEUS_RULES": "/nonexistent/*.yml"}, ROOT / "collector")


def test_alertmanager_config_from_the_environment(tmp_path: Path) -> None:
    env = {
        "BEACON_ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T000/B000/secret-part",
        "BEACON_ALERT_SLACK_CHANNEL": "#oncall",
        "BEACON_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
    }
    path = alertmanager_config.write(env, tmp_path / "am", TEMPLATES)
    text = path.read_text()
    assert "secret-part" not in text and "127.0.0.1:9" not in text, "URLs belong in their own files"
    config = json.loads(text)
    (receiver,) = config["receivers"]
    slack_file = Path(receiver["slack_configs"][0]["api_url_file"])
    assert slack_file.read_text() == env["BEACON_ALERT_SLACK_WEBHOOK_URL"]
    assert stat.S_IMODE(slack_file.stat().st_mode) == 0o600
    assert receiver["slack_configs"][0]["channel"] == "#oncall"
    assert receiver["slack_configs"][0]["send_resolved"] is True
    assert Path(receiver["webhook_configs"][0]["url_file"]).read_text() == env["BEACON_ALERT_WEBHOOK_URL"]
    route = config["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    (critical,) = route["routes"]
    assert (critical["group_wait"], critical["repeat_interval"]) == ("10s", "1h")
    _check_with_alertmanager(path)

    # No URL at all: a valid config that notifies nobody (the stack says so).
    quiet = alertmanager_config.write({}, tmp_path / "quiet", TEMPLATES)
    assert json.loads(quiet.read_text())["receivers"] == [{"name": "oncall"}]
    _check_with_alertmanager(quiet)


def _check_with_alertmanager(config: Path) -> None:
    """The built Alertmanager loads the config: it becomes ready (it exits on a config it refuses)."""
    port = free_port()
    child = Child(
        name="alertmanager",
        command=[
            str(alertmanager_binary()),
            f"--config.file={config}",
            f"--storage.path={config.parent / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        env={},
        log=config.parent / "alertmanager.log",
        ready_url=f"http://127.0.0.1:{port}/-/ready",
    )
    child.start(timeout=30)
    child.stop()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "BEACON_ALERT_SLACK_WEBHOOK_URL",
            "hooks.example/services/x",
            "BEACON_ALERT_SLACK_WEBHOOK_URL: expected",
        ),
        ("BEACON_ALERT_WEBHOOK_URL", "ftp://example.com/x", "BEACON_ALERT_WEBHOOK_URL: expected"),
        ("BEACON_ALERT_GROUP_WAIT", "soon", "BEACON_ALERT_GROUP_WAIT='soon'"),
        ("BEACON_ALERT_REPEAT_INTERVAL", "4 hours", "BEACON_ALERT_REPEAT_INTERVAL='4 hours'"),
    ],
)
def test_bad_alerting_variables_are_named_and_secrets_not_shown(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(StackError) as raised:
        alertmanager_config.write({variable: value}, tmp_path, TEMPLATES)
    assert message in str(raised.value)
    if variable.endswith("_URL"):
        assert value not in str(raised.value)


def test_stack_up_refuses_a_bad_alerting_variable_before_starting_anything() -> None:
    require_binaries(alerting=True)
    ports = free_addresses()
    result = subprocess.run(
        [str(BIN / "beacon-otel"), "stack", "up"],
        env=clean_env(**ports, BEACON_ALERT_GROUP_WAIT="a while"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "BEACON_ALERT_GROUP_WAIT='a while'" in result.stderr, result.stderr
    assert "postgres" not in result.stdout and "collector" not in result.stdout, "something started"
