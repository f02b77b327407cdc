"""`beacon-otel config`: effective settings, with credentials never printed."""

from __future__ import annotations

import json
import subprocess

from tests.support.processes import clean_env


def test_config_prints_settings_without_secrets() -> None:
    env = clean_env(OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20SECRETZ,x-tenant=acme")
    result = subprocess.run(["beacon-otel", "config"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "SECRETZ" not in result.stdout
    headers = json.loads(result.stdout)["otlp"]["traces"]["headers"]
    assert headers == {"authorization": "[scrubbed]", "x-tenant": "acme"}


def test_config_lists_problems_and_exits_2() -> None:
    env = clean_env(OTEL_TRACES_SAMPLER_ARG="2", OTEL_TRACES_EXPORTER="zipkin")
    result = subprocess.run(["beacon-otel", "config"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "OTEL_TRACES_SAMPLER_ARG" in result.stderr and "OTEL_TRACES_EXPORTER" in result.stderr
