"""uvicorn's access lines, handed to the pipeline without a LogRecord when nothing else would
see the record.

Why: rendering an access line costs the pipeline about what uvicorn's own formatter costs, but
the standard library's work around it (a LogRecord with its clock, thread and process look-ups,
the caller's frame, the walk up to the root handler, the scan for ``extra`` fields) adds about
7 µs per request, 5 % of a trivial endpoint. When the record would reach beacon-otel's root
handler and nothing else (no handler or filter on the way, nothing disabled) and access lines
are not exported, the ``uvicorn.access`` logger's ``info`` passes its arguments to the pipeline
directly, which prints the same line. In every other case (a record factory or ``makeRecord``
of the app's own, a call with keywords or with other arguments than uvicorn's five), the
standard path runs, so a handler or filter the app adds later sees every record.

The shortcut is installed when uvicorn imports its HTTP protocols, as late as uvicorn itself
first asks for the logger, so an app's ``dictConfig`` run before that cannot disable a logger
that the distro created early.
"""

from __future__ import annotations

import logging
from typing import Any

from beacon_otel.logs.fields import UVICORN_ACCESS_LOGGER as ACCESS_LOGGER
from beacon_otel.logs.stdlib import PipelineHandler

_PROTOCOL_MODULES = ("uvicorn.protocols.http.h11_impl", "uvicorn.protocols.http.httptools_impl")
_ACCESS_ARGUMENTS = 5  # client, method, path with query, HTTP version, status


class AccessLineShortcut:
    """Replaces one logger's ``info`` (an instance attribute, so only that logger changes)."""

    def __init__(self, logger: logging.Logger, handler: PipelineHandler) -> None:
        self._logger = logger
        self._handler = handler
        self._pipeline = handler.pipeline

    def only_the_pipeline_would_see(self) -> bool:
        """Whether an INFO record from the logger would reach our root handler and nothing else,
        as the record the standard library makes."""
        logger: logging.Logger | None = self._logger
        if not self._logger.isEnabledFor(logging.INFO):
            return False
        if (
            logging.getLogRecordFactory() is not logging.LogRecord
            or type(self._logger).makeRecord is not logging.Logger.makeRecord
        ):
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
        if kwargs or len(args) != _ACCESS_ARGUMENTS or not self.only_the_pipeline_would_see():
            # One frame more than the caller's own call: the record names uvicorn as its origin.
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
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
    """Give ``uvicorn.access`` the shortcut once uvicorn loads an HTTP protocol (the logger object
    lives as long as the process, forked workers included)."""
    import wrapt

    def install(_module: object) -> None:
        logger = logging.getLogger(ACCESS_LOGGER)
        logger.info = AccessLineShortcut(logger, handler).info  # type: ignore[method-assign]

    for module in _PROTOCOL_MODULES:
        wrapt.register_post_import_hook(install, module)
