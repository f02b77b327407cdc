"""Where the stack's sources, binaries and logs live.

The configs come from the checkout's ``collector/`` folder (the one the Compose file mounts), so
the local stack and the Docker stack run the same files. The binaries are built into a cache
folder outside the checkout, next to Go's own caches, so a fresh clone reuses them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class StackError(Exception):
    """A problem the user can fix; the message says what and how."""


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``BEACON_OTEL_STACK_CACHE``, else ``$XDG_CACHE_HOME/beacon-otel``, else ``~/.cache/beacon-otel``."""
    if env.get("BEACON_OTEL_STACK_CACHE"):
        return Path(env["BEACON_OTEL_STACK_CACHE"]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "beacon-otel"


def bin_dir(env: Mapping[str, str] = os.environ) -> Path:
    return cache_dir(env) / "bin"


def collector_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``BEACON_OTEL_COLLECTOR_DIR``, else the ``collector/`` folder of the checkout this runs from."""
    configured = env.get("BEACON_OTEL_COLLECTOR_DIR")
    folder = (
        Path(configured).expanduser() if configured else Path(__file__).resolve().parents[2] / "collector"
    )
    if not (folder / "otelcol.yaml").is_file():
        where = "BEACON_OTEL_COLLECTOR_DIR" if configured else "the checkout"
        raise StackError(
            f"no otelcol.yaml in {folder} ({where}): the stack runs the configs of a beacon-otel checkout; "
            "install beacon-otel from a clone (pip install -e .) or set BEACON_OTEL_COLLECTOR_DIR to its "
            "collector/ folder"
        )
    return folder
