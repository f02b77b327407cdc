"""Alertmanager's configuration, from the environment.

Alertmanager reads no environment variables, and which receivers exist depends on which webhook
URLs are set, so the config is generated: by ``beacon-otel stack up`` for the local stack, and by
``beacon-otel stack alertmanager-config --out DIR`` for Compose or a server. The URLs are secrets
(a Slack webhook URL is its own credential): they go to files of their own, mode 0600, that the
config names (``api_url_file``, ``url_file``), never into the config or a log.

Grouping and timing are for a human on call: alerts of one kind in one region arrive as one
message; a new problem waits 30 s (10 s when critical) for its companions; an ongoing one is
repeated every 4 h (1 h when critical), not every evaluation.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from beacon_otel.stack.paths import StackError

SLACK_URL = "BEACON_ALERT_SLACK_WEBHOOK_URL"
SLACK_CHANNEL = "BEACON_ALERT_SLACK_CHANNEL"
WEBHOOK_URL = "BEACON_ALERT_WEBHOOK_URL"
GROUP_WAIT = "BEACON_ALERT_GROUP_WAIT"
GROUP_INTERVAL = "BEACON_ALERT_GROUP_INTERVAL"
REPEAT_INTERVAL = "BEACON_ALERT_REPEAT_INTERVAL"

RECEIVER = "oncall"
# Prometheus's duration syntax, which Alertmanager shares.
DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")


def duration_setting(
    env: Mapping[str, str], variable: str, default: str, form: re.Pattern[str] = DURATION,
    examples: str = "30s, 5m or 4h",
) -> str:  # fmt: skip
    """A duration variable of the stack, ``default`` when unset; a StackError naming it when its
    value is not of ``form``."""
    value = env.get(variable) or default
    if not form.fullmatch(value):
        raise StackError(f"{variable}={value!r}: expected a duration such as {examples}")
    return value


def _url(env: Mapping[str, str], variable: str) -> str | None:
    value = (env.get(variable) or "").strip()
    if not value:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StackError(
            f"{variable}: expected an http:// or https:// URL (the value is not shown: it is a secret)"
        )
    return value


def _secret(folder: Path, name: str, value: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as secret:
        secret.write(value)
    return path


def _slack(url_file: Path, channel: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api_url_file": str(url_file),
        "send_resolved": True,
        "title": '{{ template "beacon.slack.title" . }}',
        "text": '{{ template "beacon.slack.text" . }}',
        "color": '{{ template "beacon.slack.color" . }}',
        "fallback": '{{ template "beacon.slack.title" . }}',
    }
    if channel:
        config["channel"] = channel
    return config


def receivers(env: Mapping[str, str]) -> list[str]:
    """The integrations the environment asks for (``slack``, ``webhook``), checked."""
    wanted = (("slack", SLACK_URL), ("webhook", WEBHOOK_URL))
    return [kind for kind, variable in wanted if _url(env, variable)]


def check(env: Mapping[str, str]) -> None:
    """Every BEACON_ALERT_* variable, checked before anything starts (a StackError names it)."""
    receivers(env)
    for variable, default in ((GROUP_WAIT, "30s"), (GROUP_INTERVAL, "5m"), (REPEAT_INTERVAL, "4h")):
        duration_setting(env, variable, default)


def build(env: Mapping[str, str], secrets: Path, templates: Path) -> dict[str, Any]:
    """The config as a dict; writes the secret files it refers to into ``secrets``."""
    receiver: dict[str, Any] = {"name": RECEIVER}
    slack = _url(env, SLACK_URL)
    if slack:
        channel = (env.get(SLACK_CHANNEL) or "").strip() or None
        receiver["slack_configs"] = [_slack(_secret(secrets, "slack-webhook-url", slack), channel)]
    webhook = _url(env, WEBHOOK_URL)
    if webhook:
        receiver["webhook_configs"] = [
            {"url_file": str(_secret(secrets, "webhook-url", webhook)), "send_resolved": True}
        ]
    timing = {
        "group_wait": duration_setting(env, GROUP_WAIT, "30s"),
        "group_interval": duration_setting(env, GROUP_INTERVAL, "5m"),
        "repeat_interval": duration_setting(env, REPEAT_INTERVAL, "4h"),
    }
    # Critical alerts wait less and repeat more often, unless the timings are set explicitly.
    critical = {
        **timing,
        "group_wait": timing["group_wait"] if env.get(GROUP_WAIT) else "10s",
        "repeat_interval": timing["repeat_interval"] if env.get(REPEAT_INTERVAL) else "1h",
    }
    return {
        "templates": [str(templates / "*.tmpl")],
        "route": {
            "receiver": RECEIVER,
            "group_by": ["alertname", "beacon_provider_region", "deployment_environment_name"],
            **timing,
            "routes": [{"matchers": ['severity="critical"'], "receiver": RECEIVER, **critical}],
        },
        "inhibit_rules": [
            {  # a whole region down: one message for the region, not one per provider as well
                "source_matchers": ['alertname="BeaconRegionNoHealthyProvider"'],
                "target_matchers": ['alertname=~"BeaconProviderDown|BeaconProviderChecksFlapping"'],
                "equal": ["beacon_provider_region"],
            },
            {  # the router unreachable: its readiness says nothing more
                "source_matchers": ['alertname="BeaconRouterDown"'],
                "target_matchers": ['alertname="BeaconRouterNotReady"'],
                "equal": ["job"],
            },
        ],
        "receivers": [receiver],
    }


def write(env: Mapping[str, str], folder: Path, templates: Path) -> Path:
    """``folder/alertmanager.yml`` (JSON, which is YAML) and ``folder/secrets/``; returns the file."""
    config = build(env, folder / "secrets", templates)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "alertmanager.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path
