"""Rendering an event as one line, and writing lines to stdout without interleaving."""

from __future__ import annotations

import enum
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from beacon_otel.scrubbing import Scrubber

Renderer = Callable[[Mapping[str, Any]], str]


class JsonRenderer:
    """One compact JSON object per line, ASCII-only so any terminal or log shipper reads it.

    Values JSON cannot hold (objects, NaN) become strings instead of failing the line, and those
    strings are scrubbed like every other value.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._encode = json.JSONEncoder(separators=(",", ":"), default=self._fallback, allow_nan=False).encode
        # json.dumps builds a new C encoder on every call; one built once saves a third of the
        # cost. Without circular-reference markers it is stateless, so threads can share it.
        make_encoder = getattr(json.encoder, "c_make_encoder", None)
        self._fast = (
            make_encoder(
                None,
                self._fallback,
                json.encoder.encode_basestring_ascii,
                None,
                ":",
                ",",
                False,
                False,
                False,
            )
            if make_encoder is not None
            else None
        )

    def _fallback(self, value: Any) -> Any:
        if isinstance(value, (set, frozenset)):
            return list(value)
        if isinstance(value, enum.Enum):  # ProviderType.GOLEM is written "golem"
            return value.value
        if isinstance(value, bytes):
            return self._scrubber.scrub_text(value.decode("utf-8", "replace"))
        isoformat = getattr(value, "isoformat", None)
        if callable(isoformat):
            return isoformat()
        return self._scrubber.scrub_text(str(value))

    def __call__(self, event: Mapping[str, Any]) -> str:
        try:
            if self._fast is not None:
                return "".join(self._fast(event, 0))
            return self._encode(event)
        except (ValueError, TypeError, RecursionError):  # NaN or infinity, keys JSON cannot
            # have (tuples), or a value that contains itself
            return self._encode({key: self._plain(value) for key, value in event.items()})

    def _plain(self, value: Any) -> Any:
        if isinstance(value, enum.Enum):
            value = value.value
        if value is None or isinstance(value, (str, int, bool)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        return self._scrubber.scrub_text(str(value))


class ConsoleRenderer:
    """structlog's readable console format (coloured on a terminal), with the traceback last."""

    def __init__(self, colors: bool) -> None:
        import structlog

        self._render = structlog.dev.ConsoleRenderer(colors=colors)

    def __call__(self, event: Mapping[str, Any]) -> str:
        fields = dict(event)
        stacktrace = fields.pop("exception.stacktrace", None)
        if stacktrace:
            fields.pop("exception.type", None)
            fields.pop("exception.message", None)
            fields["exception"] = stacktrace
        return str(self._render(None, "", fields))


class LineWriter:
    """Writes whole lines to the current ``sys.stdout``, one at a time, flushed at once.

    Flushing each line is what container log collectors need; the lock keeps lines from
    structlog and stdlib (and from several threads) from interleaving. Writing never raises:
    a closed or broken stdout loses the line, not the request.
    """

    def __init__(self, stream: Callable[[], TextIO | None] = lambda: sys.stdout) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._reset_lock)

    def _reset_lock(self) -> None:
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        stream = self._stream()
        if stream is None:
            return
        with self._lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False
