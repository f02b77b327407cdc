"""``beacon-otel`` itself: the help a new user reads first, and ``config``'s effective settings
under the variables' own names, with credentials never printed."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from beacon_otel.settings import Settings, load_settings
from beacon_otel.tools.config_view import FIELDS, effective_variables
from tests.support.processes import ROOT, clean_env


def beacon(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["beacon-otel", *args], env=clean_env(**env), capture_output=True, text=True, timeout=30
    )


# --- config ---------------------------------------------------------------------------------------


def test_config_prints_one_variable_per_line_without_secrets() -> None:
    result = beacon(
        "config",
        OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer%20SECRETZ,x-tenant=acme",
        OTEL_BSP_MAX_QUEUE_SIZE="4096",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318",
    )
    assert result.returncode == 0, result.stderr
    assert "SECRETZ" not in result.stdout
    lines = result.stdout.splitlines()
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line) for line in lines), result.stdout
    assert "OTEL_BSP_MAX_QUEUE_SIZE=4096" in lines
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://collector:4318/v1/traces" in lines
    assert "OTEL_EXPORTER_OTLP_METRICS_HEADERS=authorization=[scrubbed],x-tenant=acme" in lines
    assert "max_queue_size" not in result.stdout and "span_batch" not in result.stdout


def test_config_json_is_keyed_by_variable() -> None:
    result = beacon("config", "--json", OTEL_EXPORTER_OTLP_TRACES_HEADERS="authorization=Bearer%20SECRETZ")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] == "authorization=[scrubbed]"
    assert data["OTEL_EXPORTER_OTLP_LOGS_HEADERS"] == ""
    assert data["OTEL_TRACES_EXPORTER"] == "otlp" and data["OTEL_BLRP_SCHEDULE_DELAY"] == "5000"
    assert "SECRETZ" not in result.stdout


def test_config_covers_every_setting() -> None:
    assert set(FIELDS) == set(Settings._fields)
    names = [name for name, _ in effective_variables(load_settings({}))]
    assert len(names) == len(set(names))


ROUND_TRIP = {
    "OTEL_SDK_DISABLED": "true",
    "OTEL_SERVICE_NAME": "checkout",
    "OTEL_RESOURCE_ATTRIBUTES": "team=router%20core,odd=a%2Cb%3Dc%25",
    "OTEL_TRACES_EXPORTER": "otlp,console",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc",
    "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme%20corp",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500.5",
    "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    "OTEL_TRACES_SAMPLER_ARG": "0.25",
    "OTEL_PROPAGATORS": "none",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx,asyncpg",
    "OTEL_BSP_MAX_QUEUE_SIZE": "100",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
    "OTEL_BLRP_SCHEDULE_DELAY": "250",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "RAILWAY_ENVIRONMENT": "production",
    "RAILWAY_REPLICA_ID": "replica-7",
    "BEACON_OTEL_LEGACY_TRACE_HEADER": "",
    "BEACON_OTEL_ALLOW_UNINSTRUMENTED": "true",
    "BEACON_OTEL_EXPORT_ERROR_INTERVAL": "0.5",
    "BEACON_OTEL_SHUTDOWN_TIMEOUT": "2",
    "BEACON_OTEL_PROVIDER_HOOKS": "demo_router.router,app.routing:Router",
    "BEACON_OTEL_UNTRACED_METHODS": "none",
    "BEACON_OTEL_HEALTH_INTERVAL": "30",
    "BEACON_OTEL_LOG_FORMAT": "json",
    "BEACON_OTEL_LOG_LEVEL": "debug",
    "BEACON_OTEL_SCRUB_PATTERNS": r"sk-[a-z]+ pin=(?P<secret>\d+)",
}


@pytest.mark.parametrize("environ", [{}, ROUND_TRIP], ids=["defaults", "everything set"])
def test_config_output_fed_back_gives_the_same_settings(environ: dict[str, str]) -> None:
    """Each line names the variable that sets it, with a value it takes: the output, used as
    the environment, is the same configuration."""
    settings = load_settings(environ)
    assert load_settings(dict(effective_variables(settings))) == settings


def test_config_lists_problems_and_exits_2() -> None:
    result = beacon("config", OTEL_TRACES_SAMPLER_ARG="2", OTEL_TRACES_EXPORTER="zipkin")
    assert result.returncode == 2
    assert "OTEL_TRACES_SAMPLER_ARG" in result.stderr and "OTEL_TRACES_EXPORTER" in result.stderr


def test_config_reports_every_bad_resource_attribute() -> None:
    result = beacon("config", OTEL_RESOURCE_ATTRIBUTES="a=1,,novalue,b=2,bad key=3")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert [line.rsplit(": expected", 1)[0] for line in lines] == [
        "invalid: OTEL_RESOURCE_ATTRIBUTES entry 2 of 5 is empty (two commas in a row, or one at an end)",
        "invalid: OTEL_RESOURCE_ATTRIBUTES entry 3 of 5 'novalue' has no '='",
        "invalid: OTEL_RESOURCE_ATTRIBUTES entry 5 of 5 'bad key=3' has white space in its key",
    ]


# --- help -----------------------------------------------------------------------------------------


def test_top_level_help_is_plain_text_and_names_every_command() -> None:
    result = beacon("--help")
    assert result.returncode == 0
    assert "``" not in result.stdout and ":mod:" not in result.stdout
    for command in ("config", "sink", "doctor", "traces", "deploy-event", "stack"):
        assert re.search(rf"^    {re.escape(command)}\b", result.stdout, re.MULTILINE), command
    assert "beacon-otel-run" in result.stdout


def test_config_help_describes_the_command() -> None:
    result = beacon("config", "--help")
    assert result.returncode == 0
    assert "VARIABLE=value" in result.stdout and "Exit status" in result.stdout
    assert "--json" in result.stdout


def _sink_variables() -> set[str]:
    """Every BEACON_OTEL_SINK_* variable the settings read, from the source itself, so that a
    variable added there without a word in the help fails here."""
    source = (ROOT / "beacon_otel" / "settings.py").read_text()
    return set(re.findall(r'"(BEACON_OTEL_SINK_[A-Z_]+)"', source))


def test_sink_help_describes_each_action_and_the_variables_it_reads() -> None:
    result = beacon("sink", "--help")
    assert result.returncode == 0
    text = result.stdout
    serve, _, migrate = text.partition("\n  migrate ")
    assert "serve" in serve and "(the default)" in serve
    for variable in ("DATABASE_URL", "BEACON_OTEL_SINK_TOKEN", "BEACON_OTEL_SINK_ALLOW_NO_TOKEN"):
        assert variable in serve
    variables = _sink_variables()
    assert {"BEACON_OTEL_SINK_ADDRESS", "BEACON_OTEL_SINK_MAX_BODY_BYTES"} <= variables
    for variable in variables:
        # The limits are listed as _MAX_BODY_BYTES, ... after the first full name.
        assert variable.removeprefix("BEACON_OTEL_SINK") in serve, variable
    migrate = migrate.split("\n\n", 1)[0]
    assert "DATABASE_URL" in migrate and "BEACON_OTEL_SINK" not in migrate


def test_sink_without_an_action_serves_and_migrate_needs_only_the_database_url() -> None:
    """Nothing is running: both stop at their configuration check, which shows which is which."""
    serve = beacon("sink")
    assert serve.returncode == 2
    assert "BEACON_OTEL_SINK_TOKEN is not set" in serve.stderr and "DATABASE_URL" in serve.stderr
    migrate = beacon("sink", "migrate")
    assert migrate.returncode == 2
    assert "DATABASE_URL" in migrate.stderr and "BEACON_OTEL_SINK_TOKEN" not in migrate.stderr
