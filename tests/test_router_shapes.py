"""The real router's shapes, end to end: pydantic results, Enum provider types, the router's own
``X-Trace-Id``, its legacy tracer's ``trace_spans`` writes, pooled asyncpg connections, and
``uvicorn --reload``. The app is tests/fixtures/hybrid_router under ``beacon-otel-run``, against
the demo's fake providers and a real Postgres; assertions are on what the OTLP receiver, the
providers and the database got."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from beacon_otel.sink.database import migrate
from beacon_otel.stack.postgres import PostgresServer
from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedMetric, ReceivedSpan
from tests.conftest import FakeProviders
from tests.support.processes import (
    EXAMPLES,
    ROOT,
    clean_env,
    free_port,
    launch,
    otlp_env,
    stop,
    uvicorn_command,
)

FIXTURES = Path(__file__).parent / "fixtures"
ERROR = 2  # STATUS_CODE_ERROR


def _app_env(receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    env = otlp_env(receiver.http_endpoint, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), str(EXAMPLES)])
    return env


def _new_database(postgres: PostgresServer, name: str) -> str:
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    postgres.psql(f"CREATE DATABASE {name}")
    dsn = postgres.dsn.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(migrate(dsn))  # the trace_spans table, as the runner's migration makes it
    return dsn


def _inference(base_url: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/inference", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _queries(spans: list[ReceivedSpan]) -> list[str]:
    """Statement texts: the stable convention's ``db.query.text``, or the upstream asyncpg
    instrumentation's ``db.statement``."""
    texts = (s.attributes.get("db.query.text", s.attributes.get("db.statement")) for s in spans)
    return [str(text) for text in texts if text is not None]


def _inference_series(metrics: list[ReceivedMetric]) -> set[tuple[Any, ...]]:
    return {
        (a["outcome"], a.get("error.type"), a.get("beacon.provider.name"))
        for m in metrics
        if m.name == "beacon.inference.requests"
        for a, _ in m.data_points
    }


@pytest.mark.slow
def test_inference_outcomes_trace_ids_and_no_telemetry_of_telemetry(
    receiver: OtlpReceiver, fake_providers: FakeProviders, postgres: PostgresServer, tmp_path: Path
) -> None:
    dsn = _new_database(postgres, "router_shapes")
    env = _app_env(
        receiver,
        DEMO_PROVIDERS=fake_providers.spec("modal-eu", "modal", "eu-west"),
        DATABASE_URL=dsn,
        ENABLE_DB_TRACING="true",
        MODAL_API_TOKEN="modal-token-5f1e",
    )
    body_trace_id = str(uuid.uuid4())
    header_trace_id = str(uuid.uuid4())
    request = {"model": "llama-3.2-1b", "prompt": "what is the capital of France?"}
    port = free_port()
    with launch(uvicorn_command(port, app="hybrid_router.main:app"), env, tmp_path, port) as app:
        # 1. the trace id comes in the body: the router sends it on as X-Trace-Id itself
        ok = _inference(app.base_url, {**request, "trace_id": body_trace_id})
        assert ok["success"] is True
        sent = fake_providers.state()["modal-eu"]["last_inference_headers"]
        assert isinstance(sent, dict)
        assert sent["x-trace-id"] == body_trace_id, "the app's own X-Trace-Id reaches the provider"
        assert "traceparent" in sent
        # 2. the provider reports an execution failure in a 200 answer
        fake_providers.set_mode("modal-eu", "execfail")
        failed = _inference(app.base_url, request, **{"X-Trace-Id": header_trace_id})
        assert failed["error_code"] == "PROVIDER_EXECUTION_FAILED"
        # 3. the provider's answer does not parse
        fake_providers.set_mode("modal-eu", "badjson")
        time.sleep(0.3)  # the background health check of request 2 saw a healthy provider
        unparsed = _inference(app.base_url, request)
        assert unparsed["error_code"] == "MODAL_RESPONSE_PARSE_ERROR"
        # 4. no healthy provider at all
        httpx.post(f"{app.base_url}/debug/force-health-check", timeout=10)
        nothing = _inference(app.base_url, request)
        assert nothing["error_code"] == "PROVIDER_UNAVAILABLE"
        # the app's own query stays traced
        assert app.get("/debug/requests").json()["rows"] >= 4
        spans = receiver.wait_for_spans(
            lambda got: (
                len([s for s in got if s.name == "inference"]) == 4
                and any("count(*)" in q for q in _queries(got))
            )
        )
        metrics = receiver.wait_for_metrics(lambda got: len(_inference_series(got)) == 4)
        time.sleep(0.5)  # the last pooled connections are released and reset
        spans = receiver.spans()
        stop(app.process)
        output = app.output()

    inferences = sorted((s for s in spans if s.name == "inference"), key=lambda s: s.start_ns)
    ok_span, failed_span, unparsed_span, nothing_span = inferences

    assert ok_span.status_code != ERROR
    assert ok_span.attributes["beacon.inference.success"] is True
    assert ok_span.attributes["beacon.provider.name"] == "modal-eu"
    assert ok_span.attributes["beacon.provider.type"] == "modal"
    assert ok_span.attributes["beacon.provider.region"] == "eu-west"
    assert ok_span.attributes["beacon.inference.cost_estimate"] > 0
    assert ok_span.attributes["beacon.legacy_trace_id"] == body_trace_id, "joins the router's own id"

    assert failed_span.trace_id == header_trace_id.replace("-", ""), "the header's id is the trace's"
    assert "beacon.legacy_trace_id" not in failed_span.attributes, "the same id is not repeated"
    assert failed_span.status_code == ERROR
    assert failed_span.attributes["error.type"] == "provider_execution_failed"
    assert failed_span.attributes["beacon.inference.error_code"] == "PROVIDER_EXECUTION_FAILED"
    assert failed_span.attributes["beacon.inference.failure_stage"] == "provider_execution"
    assert failed_span.attributes["beacon.provider.name"] == "modal-eu"
    assert "CUDA out of memory" in failed_span.status_message

    assert unparsed_span.attributes["error.type"] == "invalid_json"
    assert unparsed_span.attributes["beacon.inference.error_code"] == "MODAL_RESPONSE_PARSE_ERROR"
    assert nothing_span.attributes["error.type"] == "no_provider"
    assert nothing_span.attributes["beacon.inference.error_code"] == "PROVIDER_UNAVAILABLE"
    assert "beacon.provider.name" not in nothing_span.attributes

    assert _inference_series(metrics) == {
        ("success", None, "modal-eu"),
        ("failure", "provider_execution_failed", "modal-eu"),
        ("failure", "invalid_json", "modal-eu"),
        ("failure", "no_provider", None),
    }
    types = {
        a["beacon.provider.type"] for m in metrics if m.name == "beacon.provider.up" for a, _ in m.data_points
    }
    assert types == {"modal"}
    checks = [s for s in spans if s.name == "provider.health_check"]
    assert checks and {s.attributes["beacon.provider.type"] for s in checks} == {"modal"}

    queries = _queries(spans)
    assert not [q for q in queries if "trace_spans" in q and "count(*)" not in q], "legacy tracer's writes"
    assert not [q for q in queries if "pg_advisory_unlock_all" in q], "asyncpg's connection reset"
    assert [q for q in queries if "count(*)" in q], "the app's own statement is still traced"
    legacy = subprocess.run(
        [str(postgres.bindir / "psql"), dsn, "-At", "-c", "SELECT operation, status FROM trace_spans"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert legacy.count("inference_request|completed") == 4, legacy
    assert "modal_call|failed" in legacy, "the legacy tracer still did its work"

    failure_lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"Provider health check failed"' in line
    ]
    assert failure_lines and {line["provider.type"] for line in failure_lines} == {"modal"}
    assert "modal-token-5f1e" not in output


def test_reload_idles_silently(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """Under --reload the reloader watches a folder; beacon-otel must not make watchfiles' INFO
    lines ("1 change detected") appear, or a log file inside that folder feeds itself."""
    port = free_port()
    env = _app_env(receiver, DEMO_PROVIDERS="", BEACON_OTEL_LOG_FORMAT="json")
    command = uvicorn_command(port, "--reload", "--reload-dir", str(tmp_path), app="hybrid_router.main:app")
    with launch(command, env, tmp_path, port) as app:  # its output file is inside tmp_path
        time.sleep(4)
        stop(app.process)
        output = app.output()
    assert "change detected" not in output and "changes detected" not in output, output[-2000:]
    assert "Starting hybrid router" in output, "the app's own INFO lines keep the app's level"
    assert not [log for log in receiver.logs() if "change" in str(log.body) and "detected" in str(log.body)]


def test_untraced_methods_with_each_asyncpg_instrumentation(postgres: PostgresServer, tmp_path: Path) -> None:
    """A method named in BEACON_OTEL_UNTRACED_METHODS, and asyncpg's pool reset, make no spans;
    the app's own statements do, with beacon-otel's wrappers and with the upstream ones."""
    (tmp_path / "legacy_writer.py").write_text(
        "class Writer:\n"
        "    async def write(self, pool):\n"
        "        async with pool.acquire() as connection:\n"
        "            await connection.execute('SELECT 41 /* legacy */')\n"
    )
    script = (
        "import asyncio, asyncpg, sys\n"
        "from legacy_writer import Writer\n"
        "async def main():\n"
        "    pool = await asyncpg.create_pool(sys.argv[1], min_size=1, max_size=2)\n"
        "    async with pool.acquire() as connection:\n"
        "        await connection.fetchval('SELECT 42 /* app */')\n"
        "    await Writer().write(pool)\n"
        "    await pool.close()\n"
        "asyncio.run(main())\n"
    )
    for upstream in ("false", "true"):
        with OtlpReceiver() as receiver:
            env = otlp_env(
                receiver.http_endpoint,
                BEACON_OTEL_ASYNCPG_UPSTREAM=upstream,
                BEACON_OTEL_UNTRACED_METHODS="legacy_writer:Writer.write",
            )
            env["PYTHONPATH"] = str(tmp_path)
            result = subprocess.run(
                ["beacon-otel-run", "python", "-c", script, postgres.dsn],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            assert result.returncode == 0, result.stderr
            spans = receiver.wait_for_spans(lambda got: any("app" in q for q in _queries(got)))
            time.sleep(0.3)
            queries = _queries(receiver.spans())
        assert any("SELECT 42" in q for q in queries), (upstream, queries)
        assert not any("legacy" in q for q in queries), (upstream, queries)
        assert not any("pg_advisory_unlock_all" in q for q in queries), (upstream, queries)
        assert spans


def test_untraced_methods_setting() -> None:
    from beacon_otel.settings import DEFAULT_UNTRACED_METHODS, ConfigError, load_settings

    assert load_settings(clean_env()).untraced_methods == DEFAULT_UNTRACED_METHODS
    assert ("hybrid_router.tracing", "DBTracer", "start_span") in DEFAULT_UNTRACED_METHODS
    assert load_settings(clean_env(BEACON_OTEL_UNTRACED_METHODS="none")).untraced_methods == ()
    assert load_settings(clean_env(BEACON_OTEL_UNTRACED_METHODS="a.b:C.d, e:F.g")).untraced_methods == (
        ("a.b", "C", "d"),
        ("e", "F", "g"),
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(clean_env(BEACON_OTEL_UNTRACED_METHODS="a.b.C.d"))
    assert "BEACON_OTEL_UNTRACED_METHODS holds 'a.b.C.d'" in raised.value.problems[0]


# --- the same rules, in process ------------------------------------------------------------------


def _results() -> list[object]:
    """One failed inference answer in every shape a router may return."""
    from dataclasses import dataclass
    from types import SimpleNamespace

    import pydantic
    from pydantic import v1 as pydantic_v1

    fields = {
        "success": False,
        "error": "CUDA out of memory",
        "error_code": "PROVIDER_EXECUTION_FAILED",
        "provider_used": "modal-eu",
        "cost_estimate": 0.0,
    }

    class V2(pydantic.BaseModel):
        success: bool
        error: str | None = None
        error_code: str | None = None
        provider_used: str
        cost_estimate: float

    class V1(pydantic_v1.BaseModel):
        success: bool
        error: str | None = None
        error_code: str | None = None
        provider_used: str
        cost_estimate: float

    @dataclass
    class Plain:
        success: bool
        error: str
        error_code: str
        provider_used: str
        cost_estimate: float

    return [fields, V2(**fields), V1(**fields), Plain(**fields), SimpleNamespace(**fields)]


@pytest.mark.parametrize(
    "result", _results(), ids=["dict", "pydantic-v2", "pydantic-v1", "dataclass", "object"]
)
def test_a_failed_inference_is_read_from_any_result_shape(result: object) -> None:
    from beacon_otel.providers.outcome import CallRecord, classify_inference, result_field

    called = CallRecord(url="http://127.0.0.1:9/p/modal-eu", status_code=200)
    outcome = classify_inference(result, called)
    assert (outcome.ok, outcome.error_type, outcome.message) == (
        False,
        "provider_execution_failed",
        "CUDA out of memory",
    )
    assert classify_inference(result, CallRecord()).error_type == "no_provider"
    assert result_field(result, "provider_used") == "modal-eu"
    assert result_field(result, "no_such_field") is None


def test_enum_values_are_written_by_value() -> None:
    import enum
    from types import SimpleNamespace

    from beacon_otel.logs.otlp import attribute_value
    from beacon_otel.logs.output import JsonRenderer
    from beacon_otel.providers.telemetry import provider_attributes
    from beacon_otel.scrubbing import Scrubber

    class ProviderType(enum.Enum):
        GOLEM = "golem"

    provider = SimpleNamespace(
        name="golem-1", type=ProviderType.GOLEM, region="us-east", endpoint="http://h:1"
    )
    assert provider_attributes(provider)["beacon.provider.type"] == "golem"
    assert json.loads(JsonRenderer(Scrubber())({"type": ProviderType.GOLEM}))["type"] == "golem"
    assert attribute_value(ProviderType.GOLEM) == "golem"


def test_an_outgoing_x_trace_id_set_by_the_app_is_kept() -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from beacon_otel.legacy_trace import LegacyTraceIdPropagator

    propagator = LegacyTraceIdPropagator()
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    context = trace.set_span_in_context(span)
    mine = "5a2751fa-08ad-4201-aa90-135a6fe16658"
    headers = httpx.Headers({"X-Trace-Id": mine})
    propagator.inject(headers, context)
    assert headers["x-trace-id"] == mine
    carrier = {"X-TRACE-ID": mine}
    propagator.inject(carrier, context)
    assert carrier == {"X-TRACE-ID": mine}
    empty: dict[str, str] = {}
    propagator.inject(empty, context)
    assert empty == {"x-trace-id": str(uuid.UUID(int=0xABC))}
