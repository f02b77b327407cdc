"""Structured logging for the whole process: structlog and stdlib records, one pipeline.

See :func:`beacon_otel.logs.setup.configure_logging`.
"""

from beacon_otel.logs.setup import configure_logging

__all__ = ["configure_logging"]
