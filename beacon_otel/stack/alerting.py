"""Prometheus and Alertmanager in ``beacon-otel stack up``: their configs and their processes.

Prometheus runs ``collector/prometheus/prometheus.yml``, the file Compose runs, with the stack's
addresses, interval and rule files put in; Alertmanager runs the config of
:mod:`beacon_otel.stack.alertmanager_config`. Both keep their data in
``BEACON_OTEL_STACK_DATA`` (default: the cache folder's ``data/``), so history, which the status
page and the dashboard read, outlives a restart of the stack.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from beacon_otel.stack import addresses, alertmanager_config
from beacon_otel.stack.build_alerting import alertmanager_binary, prometheus_binary
from beacon_otel.stack.paths import StackError, cache_dir
from beacon_otel.stack.processes import Child

SCRAPE_INTERVAL = "BEACON_PROMETHEUS_SCRAPE_INTERVAL"
RULES = "BEACON_PROMETHEUS_RULES"
DATA = "BEACON_OTEL_STACK_DATA"
DEFAULT_SCRAPE_INTERVAL = "15s"
# The status page shows 30 days; a few more keep its oldest bars whole.
RETENTION = "35d"

_INTERVAL = re.compile(r"\d+(ms|s|m)")


def data_dir(env: Mapping[str, str]) -> Path:
    configured = env.get(DATA)
    return Path(configured).expanduser() if configured else cache_dir(env) / "data"


def rule_files(env: Mapping[str, str], collector: Path) -> list[str]:
    """``BEACON_PROMETHEUS_RULES`` (comma-separated files or globs), else the shipped rules."""
    configured = [item.strip() for item in (env.get(RULES) or "").split(",") if item.strip()]
    patterns = configured or [str(collector / "prometheus" / "rules" / "*.yml")]
    for pattern in patterns:
        if not glob.glob(str(Path(pattern).expanduser())):
            where = RULES if configured else "the checkout"
            raise StackError(f"no rule file matches {pattern} ({where})")
    return [str(Path(pattern).expanduser().resolve()) for pattern in patterns]


def render_prometheus_config(
    template: str, collector_target: str, alertmanager_target: str, interval: str, rules: list[str]
) -> str:
    """The Compose config with the stack's values; a StackError if the template lost a line the
    stack rewrites (so a change to the file cannot silently leave the stack scraping nothing)."""
    replacements = [
        (r'"collector:8889"', f'"{collector_target}"'),
        (r'"alertmanager:9093"', f'"{alertmanager_target}"'),
        (r"(?m)^([ \t]*scrape_interval:[ \t]*)\S+", interval),
        (r"(?m)^([ \t]*evaluation_interval:[ \t]*)\S+", interval),
        (r"(?m)^[ \t]*- rules/\*\.yml[ \t]*$", "\n".join(f"  - {json.dumps(path)}" for path in rules)),
    ]
    for pattern, replacement in replacements:
        template, count = re.subn(pattern, _literal(replacement), template)
        if count != 1:
            raise StackError(
                f"collector/prometheus/prometheus.yml: expected one match of {pattern}, found {count}"
            )
    return template


def _literal(value: str) -> Callable[[re.Match[str]], str]:
    """For re.subn: the match's first group (the part kept, if any), then ``value`` as it is."""

    def replace(match: re.Match[str]) -> str:
        return (match.group(1) if match.re.groups else "") + value

    return replace


def scrape_interval(env: Mapping[str, str]) -> str:
    return alertmanager_config.duration_setting(
        env, SCRAPE_INTERVAL, DEFAULT_SCRAPE_INTERVAL, _INTERVAL, "15s, 500ms or 1m"
    )


def prometheus_child(
    env: Mapping[str, str], resolved: Mapping[str, str], collector: Path, run: Path, logs: Path
) -> Child:
    config = run / "prometheus.yml"
    config.write_text(
        render_prometheus_config(
            (collector / "prometheus" / "prometheus.yml").read_text(),
            resolved[addresses.COLLECTOR_PROMETHEUS.variable],
            resolved[addresses.ALERTMANAGER.variable],
            scrape_interval(env),
            rule_files(env, collector),
        )
    )
    return _web_server(
        "prometheus",
        prometheus_binary(env),
        [
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir(env) / 'prometheus'}",
            f"--storage.tsdb.retention.time={RETENTION}",
        ],
        resolved[addresses.PROMETHEUS.variable],
        env,
        logs,
    )


def alertmanager_child(
    env: Mapping[str, str], resolved: Mapping[str, str], collector: Path, run: Path, logs: Path
) -> Child:
    config = alertmanager_config.write(env, run / "alertmanager", collector / "alertmanager" / "templates")
    return _web_server(
        "alertmanager",
        alertmanager_binary(env),
        [
            f"--config.file={config}",
            f"--storage.path={data_dir(env) / 'alertmanager'}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ],
        resolved[addresses.ALERTMANAGER.variable],
        env,
        logs,
    )


def _web_server(
    name: str, binary: Path, flags: list[str], listen: str, env: Mapping[str, str], logs: Path
) -> Child:
    """Prometheus or Alertmanager: both take the same web flags and answer ``/-/ready``."""
    return Child(
        name=name,
        command=[
            str(binary),
            *flags,
            f"--web.listen-address={listen}",
            f"--web.external-url=http://{listen}/",
        ],
        env=env,
        log=logs / f"{name}.log",
        ready_url=f"http://{listen}/-/ready",
    )
