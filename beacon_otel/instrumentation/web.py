"""Server spans for FastAPI and Starlette apps, added when the framework is imported.

Every app built afterwards gets :class:`ServerSpanMiddleware` as its outermost layer, so the
span covers user middleware and exception handlers too; it follows the standard variables of the
upstream instrumentation (``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` for FastAPI apps,
``OTEL_PYTHON_STARLETTE_EXCLUDED_URLS`` for plain Starlette ones, captured headers, ...). With
``BEACON_OTEL_FASTAPI_UPSTREAM=true`` (formerly ``BEACON_OTEL_ASGI_INTERNAL_SPANS``) the whole
upstream FastAPI instrumentation is used instead, with its defaults: the old HTTP attribute names
unless ``OTEL_SEMCONV_STABILITY_OPT_IN`` says otherwise, and ``http send`` / ``http receive``
spans. It reads those variables itself; nothing is passed to it.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from opentelemetry import trace

from beacon_otel import _upstream
from beacon_otel.instrumentation.asgi import ServerSpanMiddleware
from beacon_otel.instrumentation.http_conventions import server_conventions
from beacon_otel.instrumentation.http_metrics import server_metrics
from beacon_otel.instrumentation.http_series import SCOPE_NAME
from beacon_otel.settings import Settings

_PATCHED = "_beacon_otel_patched"


def _wrap_build_middleware_stack(cls: type, settings: Settings, library: str) -> None:
    original = cls.__dict__.get("build_middleware_stack")
    if original is None or getattr(original, _PATCHED, False):
        return
    from beacon_otel import __version__

    tracer = trace.get_tracer(SCOPE_NAME, __version__)
    metrics = server_metrics(__version__) if settings.http_server_metrics else None
    conventions = server_conventions(settings.http_instrumentation, library)

    @functools.wraps(original)
    def build_middleware_stack(self: Any) -> Any:
        stack = original(self)
        if isinstance(stack, ServerSpanMiddleware) or _app_traces_itself(self):
            return stack
        return ServerSpanMiddleware(stack, tracer, metrics, conventions)

    setattr(build_middleware_stack, _PATCHED, True)
    cls.build_middleware_stack = build_middleware_stack  # type: ignore[attr-defined]


def _native_telemetry_off_by_default(cls: type) -> None:
    """FastAPI 0.16x traces requests itself once a tracer provider is set; avoid doubles.

    Its spans cost several times ours per request (docs/benchmarks.md, "In process"), so it is
    off unless the app turns it on explicitly with ``FastAPI(telemetry={"tracing": True})``,
    in which case beacon-otel leaves that app's server spans to FastAPI.
    """
    original_init = cls.__dict__.get("__init__")
    if original_init is None or getattr(original_init, _PATCHED, False):
        return
    import inspect

    if "telemetry" not in inspect.signature(original_init).parameters:
        return  # an older FastAPI without native telemetry

    @functools.wraps(original_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        explicit = kwargs.get("telemetry") or {}
        kwargs["telemetry"] = {"tracing": False, "metrics": False, "logs": False, **explicit}
        original_init(self, *args, **kwargs)

    setattr(__init__, _PATCHED, True)
    cls.__init__ = __init__  # type: ignore[misc]


def _app_traces_itself(app: Any) -> bool:
    return _upstream.fastapi_traces_itself(app)


def instrument_starlette(module: ModuleType, settings: Settings) -> None:
    """Post-import hook for ``starlette.applications``."""
    _wrap_build_middleware_stack(module.Starlette, settings, "starlette")


def instrument_fastapi(module: ModuleType, settings: Settings) -> None:
    """Post-import hook for ``fastapi``."""
    if settings.fastapi_upstream:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor().instrument()
        return
    _native_telemetry_off_by_default(module.FastAPI)
    _wrap_build_middleware_stack(module.FastAPI, settings, "fastapi")
