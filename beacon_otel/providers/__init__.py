"""Provider health and inference telemetry: spans, metrics and a continuous monitor.

The hooks (:mod:`.hooks`) wrap a router's methods without code changes; code that wants the
same spans explicitly uses :func:`provider_health_check` and :func:`traced_health_check`
(imported on first use: the log pipeline imports :mod:`.outcome` at start-up, and that must not
pull in the rest).
"""

from __future__ import annotations

from typing import Any

__all__ = ["provider_health_check", "traced_health_check"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from beacon_otel.providers import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
