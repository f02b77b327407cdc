"""uvicorn's access lines, handed to the pipeline without a LogRecord when nothing else would
see the record.

Why: rendering an access line costs the pipeline about what uvicorn's own formatter costs, but
the standard library's work around it (a LogRecord with its clock, thread and process look-ups,
the caller's frame, the walk up to the root handler, the scan for ``extra`` fields) adds about
7 µs per request, 5 % of a trivial endpoint. When the record would reach beacon-otel's root
handler and nothing else (no handler or filter on the way, nothing disabled) and access lines
are not exported, the ``uvicorn.access`` logger's ``info`` passes its arguments to the pipeline
directly, which prints the same line. In every other case, or for any other call, the standard
path runs, so a handler or filter the app adds later sees every record.
"""

from __future__ import annotations

import logging
from typing import Any

from beacon_otel.logs.stdlib import PipelineHandler

ACCESS_LOGGER = "uvicorn.access"


class AccessLineShortcut:
    """Replaces one logger's ``info`` (an instance attribute, so only that logger changes)."""

    def __init__(self, logger: logging.Logger, handler: PipelineHandler) -> None:
        self._logger = logger
        self._handler = handler
        self._pipeline = handler.pipeline

    def only_the_pipeline_would_see(self) -> bool:
        """Whether an INFO record from the logger would reach our root handler and nothing else."""
        logger: logging.Logger | None = self._logger
        if not self._logger.isEnabledFor(logging.INFO):
            return False
        while logger is not None:
            if logger.filters or logger.disabled:
                return False
            if logger.parent is None:  # the root logger
                handler = self._handler
                return logger.handlers == [handler] and not handler.filters and handler.level <= logging.INFO
            if logger.handlers or not logger.propagate:
                return False
            logger = logger.parent
        return False

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs or not self.only_the_pipeline_would_see():
            logging.Logger.info(self._logger, msg, *args, **kwargs)
            return
        try:
            self._pipeline.access_line(self._logger.name, str(msg), args)
        except RecursionError:
            raise
        except Exception:  # as the handler would: report, never raise into the server
            record = self._logger.makeRecord(self._logger.name, logging.INFO, "", 0, msg, args, None)
            self._handler.handleError(record)


def install_access_shortcut(handler: PipelineHandler) -> None:
    """Give ``uvicorn.access`` the shortcut (the logger object lives as long as the process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.info = AccessLineShortcut(logger, handler).info  # type: ignore[method-assign]
