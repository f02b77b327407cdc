"""Methods whose own work is not the app's: what they do on the wire gets no spans.

The router's legacy tracer writes its own ``trace_spans`` rows through the app's asyncpg pool,
and asyncpg resets every pooled connection it gets back with a statement of its own
(``SELECT pg_advisory_unlock_all(); CLOSE ALL; ...``). Traced, each inference would carry about
eight database spans that are telemetry of telemetry. Each method named here runs with
OpenTelemetry's suppression flag set, which every instrumentation (beacon-otel's and the
upstream ones) honours; the method itself behaves exactly as before, and its log lines are kept.

``BEACON_OTEL_UNTRACED_METHODS`` lists them (``module:Class.method``); asyncpg's reset is
always among them while asyncpg is instrumented.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt

logger = logging.getLogger("beacon_otel.instrumentation")

ASYNCPG_RESET = ("asyncpg.connection", "Connection", "reset")
_PATCHED = "_beacon_otel_untraced"


def untraced(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (plain or ``async``) with instrumentation suppressed while it runs."""
    if getattr(function, _PATCHED, False):
        return function
    # Imported when a hooked module loads, not at start-up: most processes never need them.
    import inspect

    from opentelemetry.instrumentation.utils import suppress_instrumentation

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with suppress_instrumentation():
                return await function(*args, **kwargs)

        wrapper: Callable[..., Any] = run_async
    else:

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with suppress_instrumentation():
                return function(*args, **kwargs)

        wrapper = run
    setattr(wrapper, _PATCHED, True)
    return wrapper


def untrace_method(module: ModuleType, class_name: str, method: str) -> bool:
    """Replace ``module.class_name.method`` with its :func:`untraced` self; False (and one
    warning) when it is not there to replace."""
    cls = getattr(module, class_name, None)
    original = cls.__dict__.get(method) if isinstance(cls, type) else None
    if original is None or not callable(original):
        logger.warning(
            "beacon-otel: %s.%s.%s was named to run untraced, but there is no such method; "
            "its statements are traced as usual",
            module.__name__,
            class_name,
            method,
        )
        return False
    setattr(cls, method, untraced(original))
    return True


def register_untraced_methods(entries: tuple[tuple[str, str, str], ...]) -> None:
    """Post-import hooks that make each ``(module, class, method)`` untraced once its module
    is imported (at once if it already is)."""
    for module_name, class_name, method in entries:
        wrapt.register_post_import_hook(_hook(class_name, method), module_name)


def _hook(class_name: str, method: str) -> Callable[[ModuleType], None]:
    def hook(module: ModuleType) -> None:
        try:
            untrace_method(module, class_name, method)
        except Exception:  # telemetry never stops the app from importing
            logger.warning(
                "beacon-otel: could not make %s.%s.%s untraced", module.__name__, class_name, method
            )

    return hook
