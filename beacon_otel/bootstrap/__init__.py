"""The folder ``beacon-otel-run`` puts first on PYTHONPATH, so that its ``sitecustomize`` runs.

Python imports ``sitecustomize`` at start-up of every interpreter, which reaches every process
of the launched command: uvicorn's reloader and its spawned workers, gunicorn's forked workers
(which inherit the parent's start-up), ``python -m`` and plain scripts alike.
"""

from __future__ import annotations

import os
import sys

BOOTSTRAP_DIR = os.path.dirname(os.path.abspath(__file__))


def boot() -> None:
    """Start telemetry, then run the sitecustomize ours shadows, if there is one."""
    try:
        from beacon_otel.startup import start

        start()
    except Exception as error:  # never stop the interpreter from starting
        print(f"beacon-otel: telemetry could not start: {error!r}", file=sys.stderr)
    _chain_shadowed_sitecustomize()


def _chain_shadowed_sitecustomize() -> None:
    """Our sitecustomize hides any other one on sys.path; load that one as Python would have."""
    import importlib.util  # here, not at the top: the launcher imports this module for BOOTSTRAP_DIR

    for entry in sys.path:
        if not entry or os.path.abspath(entry) == BOOTSTRAP_DIR:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_beacon_otel_shadowed_sitecustomize", candidate)
            if spec and spec.loader:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return
