"""Wrap a router class's health-check and inference methods, without changing its code.

The real router's layout (``hybrid_router.core.router.HybridRouter``) is hooked by default;
``BEACON_OTEL_PROVIDER_HOOKS`` names other ``module[:Class]`` entries (the class defaults to
``HybridRouter``). A method whose signature is not the expected one is left untouched, with
one warning.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt

from beacon_otel.providers import registry
from beacon_otel.providers.outcome import (
    current_call,
    note_handled_error,
    note_response,
    note_transport_error,
)
from beacon_otel.providers.telemetry import provider_telemetry

logger = logging.getLogger("beacon_otel.providers")

DEFAULT_HOOKS = (("hybrid_router.core.router", "HybridRouter"),)
_PATCHED = "_beacon_otel_patched"

# method -> the positional parameters it must accept (self first), to be hooked safely
_EXPECTED = {
    "health_check_providers": ("self",),
    "_check_provider_health": ("self", "provider"),
    "run_inference": ("self", "request"),
}


def _accepts(method: Callable[..., Any], names: tuple[str, ...]) -> bool:
    """An ``async def`` whose positional parameters are exactly ``names`` in number (extra ones
    must have defaults)."""
    if not inspect.iscoroutinefunction(method):
        return False
    parameters = list(inspect.signature(method).parameters.values())
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    has_varargs = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    return len(required) <= len(names) and (len(positional) >= len(names) or has_varargs)


def _sweep_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def health_check_providers(self: Any, *args: Any, **kwargs: Any) -> Any:
        registry.remember(self)
        registry.sweep_started(self)
        try:
            async with provider_telemetry().sweep():
                return await original(self, *args, **kwargs)
        finally:
            registry.sweep_ended(self)

    return health_check_providers


def _check_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def _check_provider_health(self: Any, provider: Any, *args: Any, **kwargs: Any) -> Any:
        return await provider_telemetry().check(provider, lambda: original(self, provider, *args, **kwargs))

    return _check_provider_health


def _inference_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run_inference(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        registry.remember(self)
        return await provider_telemetry().inference(
            self, request, lambda: original(self, request, *args, **kwargs)
        )

    return run_inference


_WRAPPERS = {
    "health_check_providers": _sweep_wrapper,
    "_check_provider_health": _check_wrapper,
    "run_inference": _inference_wrapper,
}


def hook_router_class(cls: type) -> list[str]:
    """Wrap the methods ``cls`` has; returns the names of those wrapped."""
    hooked = []
    for name, make_wrapper in _WRAPPERS.items():
        original = getattr(cls, name, None)
        if original is None:
            continue
        if getattr(original, _PATCHED, False):
            hooked.append(name)
            continue
        if not _accepts(original, _EXPECTED[name]):
            logger.warning(
                "beacon-otel: %s.%s.%s is not an async method taking (%s); it is left untraced",
                cls.__module__,
                cls.__qualname__,
                name,
                ", ".join(_EXPECTED[name]),
            )
            continue
        wrapper = make_wrapper(original)
        setattr(wrapper, _PATCHED, True)
        setattr(cls, name, wrapper)
        hooked.append(name)
    return hooked


def _module_hook(class_name: str) -> Callable[[ModuleType], None]:
    def hook(module: ModuleType) -> None:
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type):
            logger.warning(
                "beacon-otel: %s has no class %s to hook; provider telemetry is off for it",
                module.__name__,
                class_name,
            )
            return
        try:
            hook_router_class(cls)
        except Exception:  # telemetry never stops the app from importing
            logger.warning("beacon-otel: could not hook %s.%s", module.__name__, class_name, exc_info=True)

    return hook


def _observe_send(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """httpx.AsyncClient.send: note the status or the transport error of calls made while a
    provider check or inference is running (a context variable lookup otherwise)."""
    if current_call.get() is None:
        return wrapped(*args, **kwargs)
    request = args[0] if args else kwargs.get("request")
    return _observed_send(wrapped, str(getattr(request, "url", "")), args, kwargs)


async def _observed_send(wrapped: Callable[..., Any], url: str, args: Any, kwargs: Any) -> Any:
    try:
        response = await wrapped(*args, **kwargs)
    except Exception as error:
        note_transport_error(url, error)
        raise
    note_response(url, response.status_code)
    return response


def _observe_json(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """httpx.Response.json: a body that does not parse is the check's error."""
    if current_call.get() is None:
        return wrapped(*args, **kwargs)
    try:
        return wrapped(*args, **kwargs)
    except Exception as error:
        note_handled_error(error)
        raise


def _hook_httpx(module: ModuleType) -> None:
    wrapt.wrap_function_wrapper(module, "AsyncClient.send", _observe_send)
    wrapt.wrap_function_wrapper(module, "Response.json", _observe_json)


def register_provider_hooks(extra: tuple[tuple[str, str], ...] = ()) -> None:
    """Post-import hooks for the router modules, and the httpx observers they rely on."""
    wrapt.register_post_import_hook(_hook_httpx, "httpx")
    for module_name, class_name in (*DEFAULT_HOOKS, *extra):
        wrapt.register_post_import_hook(_module_hook(class_name), module_name)
