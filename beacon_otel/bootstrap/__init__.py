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
    """Start telemetry in this process; ``sitecustomize`` then runs the one ours shadows."""
    try:
        from beacon_otel.startup import start

        start()
    except Exception as error:  # never stop the interpreter from starting
        print(f"beacon-otel: telemetry could not start: {error!r}", file=sys.stderr)
