"""The real Collector and Jaeger (``beacon-otel stack build``) for tests: a stack on free ports,
and readers of what arrived in Jaeger, on the Prometheus endpoint and in ``trace_spans``.
Prometheus and Alertmanager start only where a test asks (``alerting=True``)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from beacon_otel.stack import addresses
from beacon_otel.stack.build import collector_binary, jaeger_binary
from beacon_otel.stack.build_alerting import alertmanager_binary, prometheus_binary, promtool_binary
from beacon_otel.stack.up import Stack, StackOptions
from tests.support.processes import ROOT, clean_env, free_port

COLLECTOR_DIR = ROOT / "collector"
T = TypeVar("T")


def require_binaries(alerting: bool = False) -> None:
    wanted = [collector_binary(), jaeger_binary()]
    if alerting:
        wanted += [prometheus_binary(), promtool_binary(), alertmanager_binary()]
    missing = [str(path) for path in wanted if not path.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `beacon-otel stack build` first (.ci/run does)")


def free_addresses() -> dict[str, str]:
    """Every address variable of the stack on a free loopback port of its own."""
    return {address.variable: f"127.0.0.1:{free_port()}" for address in addresses.ALL}


def stack_env(**extra: str) -> dict[str, str]:
    return clean_env(**free_addresses(), **extra)


@contextmanager
def running_stack(
    tmp_path: Path,
    destination: str = "jaeger-sink",
    sampling: str = "off",
    alerting: bool = False,
    **extra: str,
) -> Iterator[Stack]:
    require_binaries(alerting)
    logs = tmp_path / f"stack-{destination}-{sampling}-{time.monotonic_ns()}"
    if alerting:
        extra.setdefault("BEACON_OTEL_STACK_DATA", str(logs / "data"))
    options = StackOptions(
        destination=destination, sampling=sampling, env=stack_env(**extra), logs=logs, alerting=alerting
    )
    stack = Stack(options, say=lambda line: None)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def otlp_http_endpoint(stack: Stack) -> str:
    return stack.url(addresses.COLLECTOR_OTLP_HTTP)


def eventually(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what} within {timeout:.0f} s (last: {last!r})")


# --- Jaeger's query API --------------------------------------------------------------------------------


def jaeger_trace(stack: Stack, trace_id: str) -> list[dict[str, Any]]:
    """The spans Jaeger holds for one trace (32 hex digits); empty when it has none."""
    response = httpx.get(f"{stack.url(addresses.JAEGER_QUERY)}/api/traces/{trace_id}", timeout=5)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    spans: list[dict[str, Any]] = [span for trace in response.json()["data"] for span in trace["spans"]]
    return spans


def jaeger_tags(span: Mapping[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def jaeger_parent(span: Mapping[str, Any]) -> str | None:
    parents = [ref["spanID"] for ref in span.get("references", []) if ref["refType"] == "CHILD_OF"]
    return parents[0] if parents else None


# --- the Prometheus endpoint ---------------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def prometheus_samples(stack: Stack) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample the Collector's Prometheus endpoint serves now."""
    text = httpx.get(stack.url(addresses.COLLECTOR_PROMETHEUS, "/metrics"), timeout=5).text
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match["labels"] or ""))
            samples.append((match["name"], labels, float(match["value"])))
    return samples


# --- the Collector's own commands ----------------------------------------------------------------------


def collector_files(destination: str | None = None, sampling: str | None = None) -> list[Path]:
    files = [COLLECTOR_DIR / "otelcol.yaml"]
    if destination:
        files.append(COLLECTOR_DIR / "destinations" / f"{destination}.yaml")
    if sampling:
        files.append(COLLECTOR_DIR / "sampling" / f"{sampling}.yaml")
    return files


def collector_command(
    command: str, files: list[Path], env: Mapping[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    require_binaries()
    return subprocess.run(
        [str(collector_binary()), command, *(f"--config={path}" for path in files), *extra],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def effective_config(files: list[Path], env: Mapping[str, str]) -> dict[str, Any]:
    """The configuration the built Collector resolves from ``files`` (merged, variables expanded),
    secrets included, after its own validation."""
    result = collector_command("print-config", files, env, "--mode=unredacted", "--format=json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config
