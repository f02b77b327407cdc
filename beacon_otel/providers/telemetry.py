"""Spans and metrics for provider health checks, sweeps and inference calls.

Provider and request objects are duck-typed: ``name``, ``type``, ``region``, ``endpoint`` and
``healthy`` on a provider, ``model`` and ``region_preference`` on a request. A missing one is
left out, never an error.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from beacon_otel.providers.outcome import (
    CallRecord,
    Outcome,
    classify_check,
    classify_inference,
    current_call,
)

SCOPE = "beacon_otel.providers"

# Not "beacon_otel.*": the log pipeline exports the distro's own loggers to stdout only.
failure_logger = logging.getLogger("beacon.providers")


def provider_attributes(provider: Any) -> dict[str, Any]:
    """``beacon.provider.*`` and ``server.address`` from whatever the provider object has."""
    attributes: dict[str, Any] = {}
    for field in ("name", "type", "region"):
        value = getattr(provider, field, None)
        if value is not None:
            attributes[f"beacon.provider.{field}"] = str(value)
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
        attributes: dict[str, Any] = {}
        model = getattr(request, "model", None)
        if model is not None:
            attributes["gen_ai.request.model"] = str(model)
        preference = getattr(request, "region_preference", None)
        if preference:
            attributes["beacon.inference.region_preference"] = str(preference)
        record = CallRecord()
        token = current_call.set(record)
        started = time.perf_counter()
        try:
            with self.tracer.start_as_current_span("inference", attributes=attributes) as span:
                try:
                    result = await call()
                except BaseException as error:
                    record.handled_error = error
                    outcome = Outcome(False, type(error).__name__, str(error))
                    self._finish_inference(span, router, model, {}, outcome, started)
                    raise
                outcome = classify_inference(result, record)
                self._finish_inference(span, router, model, result, outcome, started)
                return result
        finally:
            current_call.reset(token)

    def _finish_inference(
        self, span: Span, router: Any, model: Any, result: Any, outcome: Outcome, started: float
    ) -> None:
        duration = time.perf_counter() - started
        result = result if isinstance(result, dict) else {}
        provider_name = result.get("provider_used")
        provider = _find_provider(router, provider_name)
        provider_attrs = provider_attributes(provider) if provider is not None else {}
        if provider_name and "beacon.provider.name" not in provider_attrs:
            provider_attrs["beacon.provider.name"] = str(provider_name)
        span.set_attributes(provider_attrs)
        span.set_attribute("beacon.inference.success", outcome.ok)
        cost = result.get("cost_estimate")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            span.set_attribute("beacon.inference.cost_estimate", float(cost))
        if not outcome.ok:
            span.set_attribute("error.type", outcome.error_type or "unknown")
            span.set_status(Status(StatusCode.ERROR, f"{outcome.error_type}: {outcome.message}"))
        labels: dict[str, Any] = {"outcome": outcome.label}
        for key in ("beacon.provider.name", "beacon.provider.region"):
            if key in provider_attrs:
                labels[key] = provider_attrs[key]
        if model is not None:
            labels["gen_ai.request.model"] = str(model)
        if not outcome.ok:
            labels["error.type"] = outcome.error_type or "unknown"
        self.inference_duration.record(duration, labels)
        self.inference_requests.add(1, labels)


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
