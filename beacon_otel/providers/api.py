"""The provider spans for code that wants them explicitly, without the hooks."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, ParamSpec, TypeVar

from beacon_otel.providers.outcome import CallRecord
from beacon_otel.providers.telemetry import provider_telemetry

P = ParamSpec("P")
R = TypeVar("R")


def provider_health_check(provider: Any) -> AbstractAsyncContextManager[CallRecord]:
    """``async with provider_health_check(provider):`` around one health check.

    The span, metrics and failure line are the hooks' own. The outcome is judged when the block
    ends, from ``provider.healthy`` and what httpx saw inside it; an exception escaping the block
    is a failure too, and propagates.
    """
    return provider_telemetry().checking(provider)


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
