"""Configure structlog and stdlib logging for this process, once, from the settings."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import wrapt

from beacon_otel.logs.access import install_access_shortcut
from beacon_otel.logs.fields import LEVEL_NUMBERS
from beacon_otel.logs.otlp import LogEmitter
from beacon_otel.logs.output import ConsoleRenderer, JsonRenderer, LineWriter, Renderer, is_terminal
from beacon_otel.logs.pipeline import LogPipeline
from beacon_otel.logs.stdlib import PipelineHandler, StdlibTakeover
from beacon_otel.scrubbing import Scrubber
from beacon_otel.settings import Settings

_PATCHED = "_beacon_otel_patched"


def configure_logging(
    settings: Settings,
    emitter: LogEmitter | None,
    scrubber: Scrubber | None = None,
) -> LogPipeline | None:
    """Send structlog and stdlib logging through one :class:`LogPipeline`.

    ``emitter`` exports every record as an OTLP LogRecord (None: stdout only).
    Returns None, touching nothing, when ``BEACON_OTEL_LOG_FORMAT=none``.
    """
    log_format = settings.log_format
    if log_format == "none":
        return None
    if log_format == "auto":
        log_format = "console" if is_terminal(sys.stdout) else "json"
    scrubber = scrubber or Scrubber(settings.scrub_patterns)
    renderer: Renderer = (
        ConsoleRenderer(colors=is_terminal(sys.stdout)) if log_format == "console" else JsonRenderer(scrubber)
    )
    pipeline = LogPipeline(
        service_name=settings.service_name,
        scrubber=scrubber,
        renderer=renderer,
        writer=LineWriter(),
        otlp=emitter,
        export_access_logs=settings.export_access_logs,
    )
    level = LEVEL_NUMBERS[settings.log_level] if settings.log_level else None
    handler = PipelineHandler(pipeline)
    takeover = StdlibTakeover(handler, level)
    takeover.install()
    if not settings.export_access_logs:
        install_access_shortcut(handler)
    # Only when the app imports structlog (at once if it has): an app on stdlib logging alone
    # does not pay for importing it.
    structlog_level = level if level is not None else logging.INFO
    wrapt.register_post_import_hook(
        lambda module: _configure_structlog(module, pipeline, structlog_level), "structlog"
    )
    _keep_servers_in_line(takeover)
    return pipeline


class _LineLogger:
    """structlog's final logger: writes the line the pipeline rendered."""

    __slots__ = ("name", "write")

    def __init__(self, name: str, write: Callable[[str], None]) -> None:
        self.name = name
        self.write = write

    def msg(self, line: str) -> None:
        self.write(line)

    debug = info = warning = warn = error = exception = critical = fatal = log = msg


def _caller_module() -> str:
    """The module that asked for a structlog logger, used as its name when none is given."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not name.startswith(("structlog", "beacon_otel.logs")):
            return str(name) or "structlog"
        frame = frame.f_back  # type: ignore[assignment]
    return "structlog"


def _configure_structlog(structlog: ModuleType, pipeline: LogPipeline, level: int) -> None:
    def logger_factory(*args: Any) -> _LineLogger:
        name = args[0] if args and isinstance(args[0], str) else _caller_module()
        return _LineLogger(name, pipeline.writer.write)

    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, pipeline.structlog_processor],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )


def _keep_servers_in_line(takeover: StdlibTakeover) -> None:
    """gunicorn and its uvicorn workers attach console handlers outside ``dictConfig``."""

    def after(method: str) -> Callable[[ModuleType, str], None]:
        def hook(module: ModuleType, class_name: str) -> None:
            cls = getattr(module, class_name, None)
            original = getattr(cls, method, None)
            if original is None or getattr(original, _PATCHED, False):
                return

            @functools.wraps(original)
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    return original(self, *args, **kwargs)
                finally:
                    takeover.adopt()

            setattr(wrapper, _PATCHED, True)
            setattr(cls, method, wrapper)

        return hook

    setup_hook = after("setup")
    init_hook = after("__init__")
    wrapt.register_post_import_hook(lambda module: setup_hook(module, "Logger"), "gunicorn.glogging")
    wrapt.register_post_import_hook(lambda module: init_hook(module, "UvicornWorker"), "uvicorn.workers")
