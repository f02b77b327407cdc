"""beacon-otel: the OpenTelemetry distribution for Project Beacon's hybrid router.

The package is layered, and every import goes down the layers: entry points (this module's
``configure``, ``startup``, ``cli``, ...) -> ``sdk`` (builds and wires the providers) ->
``instrumentation``, ``providers``, ``logs`` (record telemetry) -> ``export`` (encode and send);
``settings``, ``scrubbing``, ``_upstream`` and ``legacy_trace`` are shared by all. See
docs/development.md ("Which module may import which"); tests/test_layering.py checks it.
"""

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
