"""Provider health and inference telemetry, end to end: the router package under
``beacon-otel-run``, real fake providers, and what the OTLP receiver gets."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from beacon_otel.testing.otlp_receiver import OtlpReceiver, ReceivedMetric, ReceivedSpan
from tests.conftest import FakeProviders
from tests.support.processes import EXAMPLES, free_port, launch, otlp_env, stop, uvicorn_command

FIXTURES = Path(__file__).parent / "fixtures"
SERVER = 2

# provider -> (type, fake mode or None for a refused connection, expected error.type or None)
CASES: dict[str, tuple[str, str | None, str | None]] = {
    "golem-ok": ("golem", "healthy", None),
    "golem-500": ("golem", "fail500", "http_500"),
    "golem-slow": ("golem", "slow", "ReadTimeout"),
    "golem-refused": ("golem", None, "ConnectError"),
    "modal-badjson": ("modal", "badjson", "invalid_json"),
    "modal-sick": ("modal", "unhealthy", "unhealthy_status"),
}


def _providers(fakes: FakeProviders) -> str:
    closed = f"http://127.0.0.1:{free_port()}/p/nobody"
    entries = []
    for name, (kind, mode, _) in CASES.items():
        endpoint = fakes.endpoint(name) if mode else closed
        entries.append(f"{name}|{kind}|us-east|{endpoint}")
        if mode and mode != "healthy":
            fakes.set_mode(name, mode, delay=3.0 if mode == "slow" else None)
    return ",".join(entries)


def _env(receiver: OtlpReceiver, **extra: str) -> dict[str, str]:
    env = otlp_env(receiver.http_endpoint, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(FIXTURES), str(EXAMPLES)])
    return env


def _gauge(metrics: list[ReceivedMetric], name: str) -> dict[str, Any]:
    """The latest value of a gauge per provider name."""
    latest: dict[str, Any] = {}
    for metric in metrics:
        if metric.name == name:
            for attributes, value in metric.data_points:
                latest[attributes["beacon.provider.name"]] = value
    return latest


def test_each_provider_check_is_a_span_with_its_outcome(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(receiver, DEMO_PROVIDERS=_providers(fake_providers), ROUTER_TIMEOUT="0.5")
    with launch(uvicorn_command(port, app="hybrid_router.main:app"), env, tmp_path, port) as app:
        assert httpx.post(f"{app.base_url}/debug/force-health-check", timeout=10).status_code == 200
        inference = httpx.post(
            f"{app.base_url}/inference", json={"model": "llama-3", "prompt": "hi"}, timeout=10
        )
        assert inference.json()["provider_used"] == "golem-ok"
        fake_providers.set_mode("golem-ok", "fail500")
        failed = httpx.post(
            f"{app.base_url}/inference", json={"model": "llama-3", "prompt": "hi"}, timeout=10
        )
        assert failed.json()["success"] is False
        httpx.post(f"{app.base_url}/debug/force-health-check", timeout=10)  # golem-ok is down now
        nothing = httpx.post(
            f"{app.base_url}/inference", json={"model": "llama-3", "prompt": "hi"}, timeout=10
        )
        assert nothing.json()["error_code"] == "PROVIDER_UNAVAILABLE"
        spans = receiver.wait_for_spans(
            lambda got: (
                any(s.attributes.get("http.route") == "/debug/force-health-check" for s in got)
                and len([s for s in got if s.name == "inference"]) == 3
            )
        )
        metrics = receiver.wait_for_metrics(
            lambda got: (
                len(_gauge(got, "beacon.provider.up")) == len(CASES)
                and len(
                    {
                        (a["outcome"], a.get("error.type"))
                        for m in got
                        if m.name == "beacon.inference.requests"
                        for a, _ in m.data_points
                    }
                )
                == 3
            )
        )
        stop(app.process)
        output = app.output()

    server = min(
        (
            s
            for s in spans
            if s.kind == SERVER and s.attributes.get("http.route") == "/debug/force-health-check"
        ),
        key=lambda s: s.start_ns,
    )
    (sweep,) = [s for s in spans if s.name == "providers.health_check" and s.parent_span_id == server.span_id]
    checks = {
        s.attributes["beacon.provider.name"]: s
        for s in spans
        if s.name == "provider.health_check" and s.parent_span_id == sweep.span_id
    }
    assert set(checks) == set(CASES), "one check span per provider, children of the sweep"
    for name, (kind, _, error_type) in CASES.items():
        check = checks[name]
        assert check.attributes["beacon.provider.type"] == kind
        assert check.attributes["beacon.provider.region"] == "us-east"
        assert check.attributes["server.address"] == "127.0.0.1"
        assert check.attributes["beacon.provider.healthy"] is (error_type is None), name
        assert check.attributes.get("error.type") == error_type, name
        assert (check.status_code == 2) is (error_type is not None), name  # 2: STATUS_CODE_ERROR
        if error_type:
            assert check.status_message.startswith(f"{error_type}: "), check.status_message
    assert checks["golem-500"].attributes["http.response.status_code"] == 500
    assert str(checks["golem-ok"].attributes["url.full"]).endswith("/p/golem-ok/health")
    # the httpx client span of a check is the check's child
    assert any(s.parent_span_id == checks["golem-ok"].span_id and s.kind == 3 for s in spans)

    inference_span, failed_span, nothing_span = sorted(
        (s for s in spans if s.name == "inference"), key=lambda s: s.start_ns
    )
    assert failed_span.attributes["error.type"] == "http_500"
    assert failed_span.attributes["beacon.inference.success"] is False
    assert failed_span.attributes["beacon.provider.name"] == "golem-ok"
    assert failed_span.status_code == 2 and "http_500" in failed_span.status_message
    assert nothing_span.attributes["error.type"] == "no_provider"
    assert "beacon.provider.name" not in nothing_span.attributes
    assert inference_span.attributes["gen_ai.request.model"] == "llama-3"
    assert inference_span.attributes["beacon.provider.name"] == "golem-ok"
    assert inference_span.attributes["beacon.inference.success"] is True
    assert inference_span.attributes["beacon.inference.cost_estimate"] > 0

    up = _gauge(metrics, "beacon.provider.up")
    expected_up = {name: 0 if error_type else 1 for name, (_, _, error_type) in CASES.items()}
    assert up == {**expected_up, "golem-ok": 0}, "golem-ok answered 500 at the last sweep"
    failures = {
        (attributes["beacon.provider.name"], attributes["error.type"])
        for m in metrics
        if m.name == "beacon.provider.health_check.failures"
        for attributes, _ in m.data_points
    }
    expected_failures = {(name, error_type) for name, (_, _, error_type) in CASES.items() if error_type}
    assert failures == {*expected_failures, ("golem-ok", "http_500")}
    durations = {
        (attributes["beacon.provider.name"], attributes["outcome"])
        for m in metrics
        if m.name == "beacon.provider.health_check.duration"
        for attributes, _ in m.data_points
    }
    assert ("golem-ok", "success") in durations and ("golem-500", "failure") in durations
    requests = [
        attributes
        for m in metrics
        if m.name == "beacon.inference.requests"
        for attributes, _ in m.data_points
    ]
    by_outcome = {(r["outcome"], r.get("error.type")): r for r in requests}
    success = by_outcome[("success", None)]
    assert success["beacon.provider.name"] == "golem-ok" and success["beacon.provider.region"] == "us-east"
    assert success["gen_ai.request.model"] == "llama-3"
    assert by_outcome[("failure", "http_500")]["beacon.provider.name"] == "golem-ok"
    assert ("failure", "no_provider") in by_outcome

    failed_lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"Provider health check failed"' in line
    ]
    by_provider = {line["provider"]: line for line in failed_lines}
    assert set(by_provider) == {name for name, (_, _, error_type) in CASES.items() if error_type} | {
        "golem-ok"
    }
    assert by_provider["golem-refused"]["error.type"] == "ConnectError"
    assert by_provider["golem-500"]["region"] == "us-east"
    assert by_provider["golem-500"]["endpoint"].endswith("/p/golem-500")
    assert by_provider["golem-500"]["duration_s"] >= 0


def test_monitor_follows_a_provider_down_and_back(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    port = free_port()
    providers = ",".join(
        [
            fake_providers.spec("golem-us", "golem", "us-east"),
            fake_providers.spec("modal-eu", "modal", "eu-west"),
        ]
    )
    env = _env(
        receiver,
        DEMO_PROVIDERS=providers,
        BEACON_OTEL_PROVIDER_HOOKS="demo_router.router",
        BEACON_OTEL_HEALTH_INTERVAL="0.5",
    )

    def up_values() -> list[int]:
        return [
            value
            for m in receiver.metrics()
            if m.name == "beacon.provider.up"
            for attributes, value in m.data_points
            if attributes["beacon.provider.name"] == "modal-eu"
        ]

    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        receiver.wait_for_metrics(lambda got: 1 in up_values(), timeout=15)
        fake_providers.set_mode("modal-eu", "down")
        receiver.wait_for_metrics(lambda got: up_values()[-1:] == [0], timeout=15)
        fake_providers.set_mode("modal-eu", "healthy")
        receiver.wait_for_metrics(lambda got: up_values()[-1:] == [1], timeout=15)
        time.sleep(0.3)
        stop(app.process)  # SIGTERM: uvicorn shuts down, then re-raises the signal
        output = app.output()

    sweeps = sorted(
        (s for s in receiver.spans() if s.name == "providers.health_check" and not s.parent_span_id),
        key=lambda s: s.start_ns,
    )
    assert len(sweeps) >= 3, "the start-up sweep plus the monitor's"
    for earlier, later in itertools.pairwise(sweeps):
        assert later.start_ns >= earlier.end_ns, "sweeps never overlap"
    failed = [
        s for s in receiver.spans() if s.name == "provider.health_check" and s.attributes.get("error.type")
    ]
    assert {s.attributes["error.type"] for s in failed} == {"http_503"}
    assert "Application shutdown complete" in output
    assert "Task was destroyed but it is pending" not in output
    assert "Traceback" not in output


def _spans_named(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


def _run_script(script: str, argument: str, env: dict[str, str]) -> None:
    """``python -c script argument`` under beacon-otel-run, to its end (and its last export)."""
    result = subprocess.run(
        ["beacon-otel-run", "python", "-c", script, argument],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


API_SCRIPT = """
import asyncio, sys
from types import SimpleNamespace
import httpx
from beacon_otel.providers import provider_health_check, traced_health_check

base = sys.argv[1]

async def main():
    async with httpx.AsyncClient() as client:
        ok = SimpleNamespace(
            name="explicit-ok", region="eu-west", endpoint=base + "/p/explicit-ok", healthy=True
        )
        async with provider_health_check(ok):
            response = await client.get(ok.endpoint + "/health")
            ok.healthy = response.status_code == 200

        class Checker:
            @traced_health_check
            async def check(self, provider):
                try:
                    (await client.get(provider.endpoint + "/health")).raise_for_status()
                    provider.healthy = True
                except httpx.HTTPError:
                    provider.healthy = False

        bare = SimpleNamespace(name="explicit-500", endpoint=base + "/p/explicit-500")  # no type, no region
        await Checker().check(bare)

asyncio.run(main())
"""


def test_public_api_gives_the_same_spans(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    fake_providers.set_mode("explicit-500", "fail500")
    _run_script(API_SCRIPT, fake_providers.base_url, _env(receiver))
    spans = receiver.wait_for_spans(lambda got: len(_spans_named(got, "provider.health_check")) == 2)
    checks = {s.attributes["beacon.provider.name"]: s for s in _spans_named(spans, "provider.health_check")}
    assert checks["explicit-ok"].attributes["beacon.provider.healthy"] is True
    assert checks["explicit-ok"].attributes["beacon.provider.region"] == "eu-west"
    assert checks["explicit-500"].attributes["error.type"] == "http_500"
    assert "beacon.provider.type" not in checks["explicit-500"].attributes, "missing attributes are skipped"


COST_ROUTER = """
from types import SimpleNamespace
import httpx

class HybridRouter:
    def __init__(self, base):
        self.providers = [
            SimpleNamespace(name="golem-us", type="golem", region="us-east", endpoint=base + "/p/golem-us"),
            SimpleNamespace(name="modal-eu", type="modal", region="eu-west", endpoint=base + "/p/modal-eu"),
        ]

    async def run_inference(self, request):
        provider = self.providers[request.provider]
        async with httpx.AsyncClient() as client:
            answer = (await client.post(provider.endpoint + "/inference", json={"model": "m"})).json()
        result = {"success": answer.get("success") is True, "provider_used": provider.name,
                  "cost_estimate": request.cost}
        if not result["success"]:
            result.update(error=answer.get("error"), error_code="PROVIDER_EXECUTION_FAILED")
        return result
"""

COST_SCRIPT = """
import asyncio, sys
from types import SimpleNamespace
import cost_router

COSTS = [  # (provider index, cost_estimate)
    (0, 0.25), (0, 2), (0, 0), (0, -1.0), (0, float("nan")), (0, True), (0, "0.5"), (0, None),
    (1, 0.125), (1, float("inf")), (1, 0.5),
]

async def main():
    router = cost_router.HybridRouter(sys.argv[1])
    for provider, cost in COSTS:
        await router.run_inference(SimpleNamespace(model="m", provider=provider, cost=cost))

asyncio.run(main())
"""


def _latest_sums(metrics: list[ReceivedMetric], name: str) -> dict[tuple[Any, ...], Any]:
    """A cumulative counter's last exported value per (provider, type, region, outcome, error.type)."""
    latest: dict[tuple[Any, ...], Any] = {}
    for metric in metrics:
        if metric.name == name:
            for a, value in metric.data_points:
                key = ("beacon.provider.name", "beacon.provider.type", "beacon.provider.region", "outcome")
                latest[(*(a.get(k) for k in key), a.get("error.type"))] = value
    return latest


def test_the_cost_counter_sums_the_usable_estimates(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    """Numbers that are finite and not negative are added; -1, NaN, inf, True, "0.5" and None are
    not (their requests still count)."""
    (tmp_path / "cost_router.py").write_text(COST_ROUTER)
    fake_providers.set_mode("modal-eu", "execfail")
    env = _env(receiver, BEACON_OTEL_PROVIDER_HOOKS="cost_router")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    _run_script(COST_SCRIPT, fake_providers.base_url, env)
    receiver.wait_for_metrics(lambda got: any(m.name == "beacon.inference.cost" for m in got))
    metrics = receiver.metrics()  # the process has exited: its last export has arrived

    golem = ("golem-us", "golem", "us-east", "success", None)
    modal = ("modal-eu", "modal", "eu-west", "failure", "provider_execution_failed")
    assert _latest_sums(metrics, "beacon.inference.cost") == {golem: 0.25 + 2 + 0, modal: 0.125 + 0.5}
    assert _latest_sums(metrics, "beacon.inference.requests") == {golem: 8, modal: 3}
    (cost,) = {(m.unit, m.kind, m.is_monotonic) for m in metrics if m.name == "beacon.inference.cost"}
    assert cost == ("{USD}", "sum", True)
    spans = receiver.wait_for_spans(lambda got: len(_spans_named(got, "inference")) == 11)
    recorded = sorted(
        s.attributes["beacon.inference.cost_estimate"]
        for s in _spans_named(spans, "inference")
        if "beacon.inference.cost_estimate" in s.attributes
    )
    assert recorded == [0, 0.125, 0.25, 0.5, 2], "the span carries only a usable estimate too"


def test_a_provider_execution_failure_in_the_demo_router_is_named_as_the_router_names_it(
    receiver: OtlpReceiver, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    """modal-eu answers 200 with success false: the demo router reports PROVIDER_EXECUTION_FAILED
    (stage provider_execution), as the real one does, and the telemetry says so: not KeyError."""
    port = free_port()
    fake_providers.set_mode("modal-eu", "execfail")
    env = _env(
        receiver,
        DEMO_PROVIDERS=fake_providers.spec("modal-eu", "modal", "eu-west"),
        BEACON_OTEL_PROVIDER_HOOKS="demo_router.router",
    )
    with launch(uvicorn_command(port), env, tmp_path, port) as app:
        answer = httpx.post(
            f"{app.base_url}/inference", json={"model": "llama-3", "prompt": "hi"}, timeout=10
        ).json()
        spans = receiver.wait_for_spans(lambda got: bool(_spans_named(got, "inference")))
        metrics = receiver.wait_for_metrics(
            lambda got: (
                bool(_latest_sums(got, "beacon.inference.cost"))
                and bool(_latest_sums(got, "beacon.inference.requests"))
            )
        )
    assert answer["success"] is False and answer["error_code"] == "PROVIDER_EXECUTION_FAILED"
    assert answer["failure"]["stage"] == "provider_execution"
    (span,) = _spans_named(spans, "inference")
    assert span.attributes["error.type"] == "provider_execution_failed"
    assert span.attributes["beacon.inference.error_code"] == "PROVIDER_EXECUTION_FAILED"
    assert span.attributes["beacon.inference.failure_stage"] == "provider_execution"
    assert span.status_code == 2 and span.status_message == "provider_execution_failed: CUDA out of memory"
    failed = ("modal-eu", "modal", "eu-west", "failure", "provider_execution_failed")
    assert set(_latest_sums(metrics, "beacon.inference.requests")) == {failed}
    (charged,) = _latest_sums(metrics, "beacon.inference.cost").values()
    assert charged == span.attributes["beacon.inference.cost_estimate"] == answer["cost_estimate"] > 0


# --- hooking rules, in process (no SDK installed: the spans are no-ops, the behaviour is not) ---


class _Router:
    def __init__(self) -> None:
        self.providers = [type("P", (), {"name": "p1", "healthy": True})()]
        self.checked: list[Any] = []

    async def health_check_providers(self) -> str:
        for provider in self.providers:
            await self._check_provider_health(provider)
        return "swept"

    async def _check_provider_health(self, provider: Any) -> None:
        self.checked.append(provider)

    async def run_inference(self, request: Any) -> dict[str, Any]:
        if request == "explode":
            raise RuntimeError("boom")
        return {"success": True, "provider_used": "p1"}


def test_hooked_methods_behave_as_before() -> None:
    import asyncio

    import pytest

    from beacon_otel.providers.hooks import hook_router_class

    class Router(_Router):
        pass

    assert sorted(hook_router_class(Router)) == [
        "_check_provider_health",
        "health_check_providers",
        "run_inference",
    ]
    assert hook_router_class(Router), "hooking twice is harmless"
    router = Router()
    assert asyncio.run(router.health_check_providers()) == "swept"
    assert router.checked == router.providers
    assert asyncio.run(router.run_inference("ok")) == {"success": True, "provider_used": "p1"}
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(router.run_inference("explode"))


def test_unexpected_signatures_are_left_alone(caplog: Any) -> None:
    from beacon_otel.providers.hooks import hook_router_class

    class Odd:
        def health_check_providers(self) -> None:  # not async
            pass

        async def _check_provider_health(self) -> None:  # no provider parameter
            pass

        async def run_inference(self, request: Any, model: str) -> None:  # one required too many
            pass

    originals = {name: Odd.__dict__[name] for name in ("health_check_providers", "_check_provider_health")}
    with caplog.at_level("WARNING", logger="beacon_otel.providers"):
        assert hook_router_class(Odd) == []
    assert all(Odd.__dict__[name] is method for name, method in originals.items())
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3
    assert any(
        "Odd._check_provider_health is not an async method taking (self, provider)" in w for w in warnings
    )
