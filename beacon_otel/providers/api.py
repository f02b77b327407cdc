"""The provider spans for code that wants them explicitly, without the hooks."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from opentelemetry.trace import Span

from beacon_otel.providers.outcome import CallRecord, Outcome, classify_check, current_call
from beacon_otel.providers.telemetry import provider_attributes, provider_telemetry

P = ParamSpec("P")
R = TypeVar("R")


class provider_health_check:
    """``async with provider_health_check(provider):`` around one health check.

    The span, metrics and failure line are the hooks' own. The outcome is judged when the block
    ends, from ``provider.healthy`` and what httpx saw inside it; an exception escaping the block
    is a failure too, and propagates.
    """

    def __init__(self, provider: Any) -> None:
        self._provider = provider
        self._telemetry = provider_telemetry()

    async def __aenter__(self) -> CallRecord:
        self._attributes = provider_attributes(self._provider)
        self._record = CallRecord()
        self._token = current_call.set(self._record)
        self._started = time.perf_counter()
        self._span_context: AbstractContextManager[Span] = self._telemetry.tracer.start_as_current_span(
            "provider.health_check", attributes=self._attributes
        )
        self._span = self._span_context.__enter__()
        return self._record

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if error is not None:
                self._record.handled_error = error
                outcome = Outcome(False, type(error).__name__, str(error))
            else:
                outcome = classify_check(getattr(self._provider, "healthy", None), self._record)
            self._telemetry.finish_check(
                self._span, self._provider, self._attributes, outcome, self._record, self._started
            )
        finally:
            self._span_context.__exit__(kind, error, tb)
            current_call.reset(self._token)


def traced_health_check(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate ``async def check(self, provider)`` (or ``check(provider)``) to get the span.

    The provider is the argument named ``provider``, else the one after ``self``/``cls``, else
    the first.
    """
    parameters = list(inspect.signature(method).parameters)
    index = 1 if parameters and parameters[0] in ("self", "cls") else 0

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        provider = kwargs.get("provider", args[index] if len(args) > index else None)
        result: R = await provider_telemetry().check(provider, lambda: method(*args, **kwargs))
        return result

    return wrapper
