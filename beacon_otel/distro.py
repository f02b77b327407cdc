"""Entry points for ``opentelemetry-instrument`` users: the same set-up as ``beacon-otel-run``.

Select them with ``OTEL_PYTHON_DISTRO=beacon OTEL_PYTHON_CONFIGURATOR=beacon`` when another
distro is installed too.
"""

from __future__ import annotations

from typing import Any

from beacon_otel._upstream import Configurator, Distro

__all__ = ["BeaconConfigurator", "BeaconDistro"]

# Libraries beacon-otel instruments itself; the generic instrumentor entry points for them
# are skipped so that nothing is instrumented twice.
_OWN_INSTRUMENTATIONS = frozenset({"fastapi", "starlette", "asgi", "httpx", "asyncpg"})


class BeaconConfigurator(Configurator):
    """Builds the providers and registers beacon-otel's instrumentations."""

    def configure_process(self) -> None:
        from beacon_otel.startup import start

        start()


class BeaconDistro(Distro):
    """Loads every other installed instrumentor as usual, and leaves ours to the configurator."""

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if entry_point.name in _OWN_INSTRUMENTATIONS:
            return
        super().load_instrumentor(entry_point, **kwargs)
