"""Which libraries are instrumented, and when.

Each instrumentation is registered as a post-import hook: it runs right after its library is
imported (or at once, if it already is). ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` switches
any of them off by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType

import wrapt

from beacon_otel.instrumentation.clients import instrument_asyncpg, instrument_httpx
from beacon_otel.instrumentation.untraced import ASYNCPG_RESET, register_untraced_methods
from beacon_otel.instrumentation.web import instrument_fastapi, instrument_starlette
from beacon_otel.settings import Settings

logger = logging.getLogger("beacon_otel.instrumentation")

Hook = Callable[[ModuleType, Settings], None]

# instrumentation name -> [(module that triggers it, hook)]
INSTRUMENTATIONS: dict[str, list[tuple[str, Hook]]] = {
    "fastapi": [("fastapi", instrument_fastapi), ("starlette.applications", instrument_starlette)],
    "httpx": [("httpx", instrument_httpx)],
    "asyncpg": [("asyncpg", instrument_asyncpg)],
}


def _guarded(name: str, hook: Hook, settings: Settings) -> Callable[[ModuleType], None]:
    def run(module: ModuleType) -> None:
        try:
            hook(module, settings)
        except Exception:  # a broken instrumentation must never stop the app from importing
            logger.warning(
                "beacon-otel: could not instrument %s; the app runs without it", name, exc_info=True
            )

    return run


def register_instrumentations(settings: Settings) -> list[str]:
    """Register the post-import hooks; returns the names of the enabled instrumentations."""
    enabled = []
    for name, hooks in INSTRUMENTATIONS.items():
        if not settings.instrumentation_enabled(name):
            continue
        enabled.append(name)
        for module_name, hook in hooks:
            wrapt.register_post_import_hook(_guarded(name, hook, settings), module_name)
    untraced = settings.untraced_methods
    if "asyncpg" in enabled:
        untraced = (ASYNCPG_RESET, *untraced)  # a pooled connection's reset is asyncpg's own work
    register_untraced_methods(untraced)
    return enabled
