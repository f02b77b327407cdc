"""Routing every stdlib logger into the pipeline, whatever the app configures later.

The root logger gets one :class:`PipelineHandler`. Apps and servers then configure logging
themselves: ``logging.basicConfig(level=INFO)`` (the router), ``dictConfig`` (uvicorn gives its
loggers stderr/stdout handlers and stops them propagating), gunicorn's own handlers. Each of
those would print a second, unstructured copy of the line, or bypass the pipeline. So after each
of them the console handlers they added are taken away again and their loggers propagate to
root; levels, filters and file handlers are left as configured.
"""

from __future__ import annotations

import functools
import logging
import logging.config
import sys
from collections.abc import Callable
from typing import Any

from beacon_otel.logs.pipeline import LogPipeline

_PATCHED = "_beacon_otel_patched"


class PipelineHandler(logging.Handler):
    """The root handler: every stdlib record goes through the pipeline."""

    def __init__(self, pipeline: LogPipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: the pipeline's writer serialises the output itself.
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pipeline.handle_record(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _is_console_handler(handler: logging.Handler) -> bool:
    if isinstance(handler, (PipelineHandler, logging.FileHandler)):
        return False
    stream = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and stream in (
        sys.stdout,
        sys.stderr,
        sys.__stdout__,
        sys.__stderr__,
    )


class StdlibTakeover:
    """Installs the root handler and keeps it the only console output."""

    def __init__(self, handler: PipelineHandler, level: int | None) -> None:
        self.handler = handler
        self.level = level  # BEACON_OTEL_LOG_LEVEL; None leaves levels to Python and the app

    def install(self) -> None:
        # Without BEACON_OTEL_LOG_LEVEL every logger keeps the level it would have without
        # beacon-otel (Python's WARNING on root, or whatever the app and its server configure):
        # a library's INFO chatter, such as watchfiles' "1 change detected" under uvicorn
        # --reload, stays as quiet as it was.
        self.adopt()
        logging.captureWarnings(True)  # warnings.warn() becomes a structured line too
        logging.basicConfig = self._wrap_basic_config(logging.basicConfig)
        logging.config.dictConfig = self._wrap_reconfigure(logging.config.dictConfig)
        logging.config.fileConfig = self._wrap_reconfigure(logging.config.fileConfig)

    def adopt(self) -> None:
        """Remove console handlers everywhere, make their loggers propagate, keep ours on root."""
        root = logging.getLogger()
        for handler in [h for h in root.handlers if _is_console_handler(h)]:
            root.removeHandler(handler)
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        if self.level is not None:
            root.setLevel(self.level)
        for logger in list(logging.Logger.manager.loggerDict.values()):
            if not isinstance(logger, logging.Logger):
                continue
            console = [h for h in logger.handlers if _is_console_handler(h)]
            for handler in console:
                logger.removeHandler(handler)
            if console:  # its console output now comes from root, beside any file it keeps
                logger.propagate = True

    def _wrap_basic_config(self, original: Callable[..., None]) -> Callable[..., None]:
        if getattr(original, _PATCHED, False):
            return original

        @functools.wraps(original)
        def basicConfig(**kwargs: Any) -> None:
            """Only the level is applied: every record already reaches stdout through the
            distro's handler, and a second handler would print it twice."""
            level = kwargs.get("level")
            if level is not None and self.level is None:
                logging.getLogger().setLevel(level)

        setattr(basicConfig, _PATCHED, True)
        return basicConfig

    def _wrap_reconfigure(self, original: Callable[..., None]) -> Callable[..., None]:
        if getattr(original, _PATCHED, False):
            return original

        @functools.wraps(original)
        def reconfigure(*args: Any, **kwargs: Any) -> None:
            try:
                original(*args, **kwargs)
            finally:
                self.adopt()

        setattr(reconfigure, _PATCHED, True)
        return reconfigure
