"""The distro's start-up in one process: settings -> SDK providers -> instrumentation hooks.

Called by the bootstrap ``sitecustomize`` in every process that ``beacon-otel-run`` launches,
by the ``opentelemetry-instrument`` configurator entry point, or directly by apps that use
beacon-otel as a library (:func:`beacon_otel.configure`). It never raises: an app must start
even when its telemetry cannot.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from beacon_otel.settings import ConfigError, Settings, load_settings

logger = logging.getLogger("beacon_otel")

_lock = threading.Lock()
_started: dict[int, object] = {}  # pid -> Telemetry (or None when the SDK is disabled)


def start(environ: Mapping[str, str] | None = None) -> object | None:
    """Start telemetry once per process; returns the Telemetry handle, or None when off."""
    with _lock:
        pid = os.getpid()
        if pid in _started:
            return _started[pid]
        telemetry = _start(environ)
        _started[pid] = telemetry
        return telemetry


def _start(environ: Mapping[str, str] | None) -> object | None:
    try:
        settings = load_settings(environ)
    except ConfigError as error:
        for problem in error.problems:
            logger.error("beacon-otel: %s", problem)
        logger.error("beacon-otel: telemetry is off for this process because of the problems above")
        return None
    if settings.sdk_disabled:
        return None
    try:
        return _start_with(settings, environ)
    except Exception:
        logger.exception("beacon-otel: telemetry could not start; the app runs without it")
        return None


def _start_with(settings: Settings, environ: Mapping[str, str] | None) -> object:
    from beacon_otel.instrumentation import register_instrumentations
    from beacon_otel.logs import configure_logging
    from beacon_otel.sdk import build_telemetry, install, log_emitter, say_if_spans_take_the_slow_path

    telemetry = build_telemetry(settings)
    install(telemetry)
    configure_logging(settings, log_emitter(telemetry), telemetry.scrubber)
    _warn_about(settings, environ)
    say_if_spans_take_the_slow_path(telemetry)
    register_instrumentations(settings)
    if settings.instrumentation_enabled("providers"):
        _start_provider_telemetry(settings)
    _flush_at_app_shutdown(telemetry)
    return telemetry


def _warn_about(settings: Settings, environ: Mapping[str, str] | None) -> None:
    """One warning per surprising (but valid) part of the configuration, through the log
    pipeline like every other line: an OTEL_* variable without effect is never silently ignored."""
    from beacon_otel.config_warnings import configuration_warnings

    try:
        warnings = configuration_warnings(settings, environ)
    except Exception:  # a fault in this report must not cost the app its telemetry
        logger.warning("beacon-otel: could not check the configuration for warnings", exc_info=True)
        return
    for warning in warnings:
        logger.warning("beacon-otel: %s — %s", warning.message, warning.remedy)


def _flush_at_app_shutdown(telemetry: Any) -> None:
    """Export what is queued, and shut the pipelines down, when an ASGI app shuts down.

    uvicorn ends a SIGTERM shutdown by raising SIGTERM again, so the process dies by the signal
    and no atexit handler runs: without this, the last batch of every deploy is lost. The
    shutdown is bounded by ``BEACON_OTEL_SHUTDOWN_TIMEOUT`` whatever the backend does.
    """
    import asyncio

    from beacon_otel.instrumentation.lifespan import on_lifespan

    async def flush() -> None:
        await asyncio.to_thread(telemetry.shutdown)

    on_lifespan(after_shutdown=flush)


def _start_provider_telemetry(settings: Settings) -> None:
    from beacon_otel.instrumentation.lifespan import on_lifespan
    from beacon_otel.providers.hooks import register_provider_hooks

    register_provider_hooks(settings.provider_hooks)
    if settings.health_interval is not None:
        from beacon_otel.providers.monitor import HealthMonitor

        monitor = HealthMonitor(settings.health_interval, settings.export_error_interval)
        on_lifespan(monitor.start, monitor.stop)
