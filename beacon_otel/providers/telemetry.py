"""Spans and metrics for provider health checks, sweeps and inference calls.

Provider and request objects are duck-typed: ``name``, ``type``, ``region``, ``endpoint`` and
``healthy`` on a provider; ``model``, ``region_preference``, ``trace_id``, ``job_id`` and
``execution_id`` on a request. A missing one is left out, never an error. Enum members (the
router's ``ProviderType.GOLEM``) are recorded by value (``golem``).
"""

from __future__ import annotations

import enum
import logging
import math
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from beacon_otel.legacy_trace import trace_id_from_uuid
from beacon_otel.providers.outcome import (
    CallRecord,
    Outcome,
    classify_check,
    classify_inference,
    current_call,
    result_field,
)

SCOPE = "beacon_otel.providers"

# Not "beacon_otel.*": the log pipeline exports the distro's own loggers to stdout only.
failure_logger = logging.getLogger("beacon.providers")


def plain_text(value: object) -> str:
    """A value as an attribute or label: an enum member by its value (``golem``, not
    ``ProviderType.GOLEM``), anything else as its text."""
    if isinstance(value, enum.Enum):
        value = value.value
    return value if isinstance(value, str) else str(value)


def provider_attributes(provider: Any) -> dict[str, Any]:
    """``beacon.provider.*`` and ``server.address`` from whatever the provider object has."""
    attributes: dict[str, Any] = {}
    for field in ("name", "type", "region"):
        value = getattr(provider, field, None)
        if value is not None:
            attributes[f"beacon.provider.{field}"] = plain_text(value)
    endpoint = getattr(provider, "endpoint", None)
    if isinstance(endpoint, str) and endpoint:
        host = urllib.parse.urlsplit(endpoint).hostname
        if host:
            attributes["server.address"] = host
    return attributes


def _metric_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """The provider's name, type and region (not its address: one series per provider)."""
    return {key: value for key, value in attributes.items() if key.startswith("beacon.provider.")}


class ProviderTelemetry:
    """One per process: the tracer and the instruments, created once."""

    def __init__(self) -> None:
        from beacon_otel import __version__

        self.tracer = trace.get_tracer(SCOPE, __version__)
        meter = metrics.get_meter(SCOPE, __version__)
        self.up = meter.create_gauge(
            "beacon.provider.up",
            unit="1",
            description="1 when the provider's last health check passed, else 0.",
        )
        self.check_duration = meter.create_histogram(
            "beacon.provider.health_check.duration",
            unit="s",
            description="Duration of one provider health check.",
            explicit_bucket_boundaries_advisory=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        )
        self.check_failures = meter.create_counter(
            "beacon.provider.health_check.failures",
            unit="{check}",
            description="Failed provider health checks.",
        )
        self.inference_duration = meter.create_histogram(
            "beacon.inference.duration",
            unit="s",
            description="Duration of one routed inference request.",
            explicit_bucket_boundaries_advisory=[0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
        )
        self.inference_requests = meter.create_counter(
            "beacon.inference.requests", unit="{request}", description="Routed inference requests."
        )
        # The router prices providers in US dollars per second (cost_estimate = seconds x price).
        # An annotation, not a UCUM unit: Prometheus names the series beacon_inference_cost_total.
        self.inference_cost = meter.create_counter(
            "beacon.inference.cost",
            unit="{USD}",
            description="Estimated cost of routed inference requests, as the router reports it.",
        )

    @asynccontextmanager
    async def sweep(self) -> AsyncIterator[Span]:
        with self.tracer.start_as_current_span("providers.health_check") as span:
            yield span

    @asynccontextmanager
    async def checking(self, provider: Any) -> AsyncIterator[CallRecord]:
        """One health check: the block runs inside its span, with a :class:`CallRecord` that the
        httpx hooks fill; metrics and a failure line follow. An exception escaping the block is a
        failure too, and propagates."""
        attributes = provider_attributes(provider)
        record = CallRecord()
        token = current_call.set(record)
        started = time.perf_counter()
        try:
            with self.tracer.start_as_current_span(
                "provider.health_check", attributes=attributes, record_exception=True
            ) as span:
                try:
                    yield record
                except BaseException as error:
                    record.handled_error = error
                    outcome = Outcome(False, type(error).__name__, str(error))
                    self._finish_check(span, provider, attributes, outcome, record, started)
                    raise
                outcome = classify_check(getattr(provider, "healthy", None), record)
                self._finish_check(span, provider, attributes, outcome, record, started)
        finally:
            current_call.reset(token)

    async def check(self, provider: Any, call: Callable[[], Any]) -> Any:
        """Run one health check (``call``) as :meth:`checking` does."""
        async with self.checking(provider):
            return await call()

    def _finish_check(
        self,
        span: Span,
        provider: Any,
        attributes: dict[str, Any],
        outcome: Outcome,
        record: CallRecord,
        started: float,
    ) -> None:
        duration = time.perf_counter() - started
        if record.url:
            span.set_attribute("url.full", record.url)  # scrubbed when the span is encoded
        if record.status_code is not None:
            span.set_attribute("http.response.status_code", record.status_code)
        span.set_attribute("beacon.provider.healthy", outcome.ok)
        labels = _metric_attributes(attributes)
        if not outcome.ok:
            span.set_attribute("error.type", outcome.error_type or "unknown")
            span.set_status(Status(StatusCode.ERROR, f"{outcome.error_type}: {outcome.message}"))
            self.check_failures.add(1, {**labels, "error.type": outcome.error_type or "unknown"})
            failure_logger.warning(
                "Provider health check failed",
                extra={
                    "provider": attributes.get("beacon.provider.name"),
                    "provider.type": attributes.get("beacon.provider.type"),
                    "region": attributes.get("beacon.provider.region"),
                    "endpoint": getattr(provider, "endpoint", None),
                    "error.type": outcome.error_type,
                    "error.message": outcome.message,
                    "duration_s": round(duration, 6),
                },
            )
        self.up.set(1 if outcome.ok else 0, labels)
        self.check_duration.record(duration, {**labels, "outcome": outcome.label})

    async def inference(self, router: Any, request: Any, call: Callable[[], Any]) -> Any:
        """Run one inference (``call``) inside an ``inference`` span; metrics by outcome."""
        attributes = request_attributes(request)
        model = attributes.get("gen_ai.request.model")
        record = CallRecord()
        token = current_call.set(record)
        started = time.perf_counter()
        try:
            with self.tracer.start_as_current_span("inference", attributes=attributes) as span:
                _note_router_trace_id(span, request)
                try:
                    result = await call()
                except BaseException as error:
                    record.handled_error = error
                    outcome = Outcome(False, type(error).__name__, str(error))
                    self._finish_inference(span, router, model, None, outcome, started)
                    raise
                outcome = classify_inference(result, record)
                self._finish_inference(span, router, model, result, outcome, started)
                return result
        finally:
            current_call.reset(token)

    def _finish_inference(
        self, span: Span, router: Any, model: str | None, result: Any, outcome: Outcome, started: float
    ) -> None:
        duration = time.perf_counter() - started
        provider_name = result_field(result, "provider_used")
        provider = _find_provider(router, provider_name)
        provider_attrs = provider_attributes(provider) if provider is not None else {}
        if provider_name and "beacon.provider.name" not in provider_attrs:
            provider_attrs["beacon.provider.name"] = plain_text(provider_name)
        span.set_attributes(provider_attrs)
        span.set_attribute("beacon.inference.success", outcome.ok)
        cost = cost_estimate(result)
        if cost is not None:
            span.set_attribute("beacon.inference.cost_estimate", cost)
        if not outcome.ok:
            span.set_attribute("error.type", outcome.error_type or "unknown")
            span.set_attributes(_failure_attributes(result))
            span.set_status(Status(StatusCode.ERROR, f"{outcome.error_type}: {outcome.message}"))
        labels: dict[str, Any] = {"outcome": outcome.label}
        for key in ("beacon.provider.name", "beacon.provider.type", "beacon.provider.region"):
            if key in provider_attrs:
                labels[key] = provider_attrs[key]
        if model is not None:
            labels["gen_ai.request.model"] = model
        if not outcome.ok:
            labels["error.type"] = outcome.error_type or "unknown"
        self.inference_duration.record(duration, labels)
        self.inference_requests.add(1, labels)
        if cost is not None:
            self.inference_cost.add(cost, labels)


def cost_estimate(result: Any) -> float | None:
    """The router's ``cost_estimate`` when it is a usable amount: a number (not a bool), finite
    and not negative; None otherwise, so that a bad value never reaches the cost counter (which
    would refuse a negative one) or the span."""
    cost = result_field(result, "cost_estimate")
    if not isinstance(cost, (int, float)) or isinstance(cost, bool):
        return None
    try:
        amount = float(cost)
    except OverflowError:  # an int too large for a float
        return None
    return amount if math.isfinite(amount) and amount >= 0 else None


def request_attributes(request: Any) -> dict[str, Any]:
    """What the inference span says about the request: the model, the region asked for, and the
    job and execution it belongs to when the request names them (so ``trace_spans`` rows written
    from it carry ``job_id``/``execution_id``). Never the prompt."""
    attributes: dict[str, Any] = {}
    model = getattr(request, "model", None)
    if model is not None:
        attributes["gen_ai.request.model"] = plain_text(model)
    preference = getattr(request, "region_preference", None)
    if preference:
        attributes["beacon.inference.region_preference"] = plain_text(preference)
    job_id = getattr(request, "job_id", None)
    if job_id is not None and job_id != "":
        attributes["beacon.job_id"] = plain_text(job_id)
    execution_id = getattr(request, "execution_id", None)
    if isinstance(execution_id, int) and not isinstance(execution_id, bool):
        attributes["beacon.execution_id"] = execution_id
    elif execution_id is not None and execution_id != "":
        attributes["beacon.execution_id"] = plain_text(execution_id)
    return attributes


def _note_router_trace_id(span: Span, request: Any) -> None:
    """The router's own trace id (``request.trace_id``: from the body, or one it made up) when it
    is not this trace's: the id its legacy ``trace_spans`` rows and its providers'
    ``X-Trace-Id`` carry, recorded so that both can be joined to this trace."""
    value = getattr(request, "trace_id", None)
    if value is None or value == "":
        return
    text = plain_text(value)[:128]
    if trace_id_from_uuid(text) != span.get_span_context().trace_id:
        span.set_attribute("beacon.legacy_trace_id", text)


def _failure_attributes(result: Any) -> dict[str, Any]:
    """The router's own failure code and stage (``PROVIDER_EXECUTION_FAILED``,
    ``provider_execution``), as it reported them."""
    attributes: dict[str, Any] = {}
    code = result_field(result, "error_code")
    if isinstance(code, str) and code:
        attributes["beacon.inference.error_code"] = code[:128]
    failure = result_field(result, "failure")
    stage = failure.get("stage") if isinstance(failure, dict) else None
    if isinstance(stage, str) and stage:
        attributes["beacon.inference.failure_stage"] = stage[:128]
    return attributes


def _find_provider(router: Any, name: Any) -> Any:
    if name is None:
        return None
    for provider in getattr(router, "providers", None) or ():
        if getattr(provider, "name", None) == name:
            return provider
    return None


_telemetry: ProviderTelemetry | None = None


def provider_telemetry() -> ProviderTelemetry:
    """The process's instance, created on first use (after the SDK is installed)."""
    global _telemetry
    if _telemetry is None:
        _telemetry = ProviderTelemetry()
    return _telemetry
