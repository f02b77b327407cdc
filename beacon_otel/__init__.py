"""beacon-otel: the OpenTelemetry distribution for Project Beacon's hybrid router."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["__version__", "configure"]

__version__ = "0.1.0"


def configure(environ: Mapping[str, str] | None = None) -> object | None:
    """Set up telemetry in this process, as ``beacon-otel-run`` does, for apps that prefer to
    call it themselves (first thing, before importing the libraries to instrument).

    Reads the environment (or ``environ``); never raises: with an invalid configuration the
    problems are logged and the app runs without telemetry. Returns the telemetry handle, or
    None when telemetry is off. Calling it again in the same process does nothing.
    """
    from beacon_otel.startup import start

    return start(environ)
