"""Client spans for asyncpg, one per statement sent: its text, never its parameters.

Why not opentelemetry-instrumentation-asyncpg: importing it loads ``packaging`` and the semantic
convention tables (about 8 ms of every start-up, a tenth of what the whole distro adds), and each
query pays for a ``wrapt`` proxy, a regular expression and an SDK span. This one wraps the same
methods (the connection's query methods, cursors and prepared statements) with plain functions
and starts a :class:`~beacon_otel.instrumentation.direct_span.DirectSpan` with the stable
database semantic conventions: ``db.system.name``, ``db.namespace``, ``db.query.text``,
``db.operation.name``, ``server.address``/``server.port``, and on failure ``error.type`` and
the SQLSTATE as ``db.response.status_code``. Query parameters are never read.

``BEACON_OTEL_ASYNCPG_UPSTREAM=true`` uses the upstream instrumentation instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from beacon_otel import _upstream
from beacon_otel.instrumentation.direct_span import DirectSpanStarter

SCOPE_NAME = "beacon_otel.instrumentation.asyncpg"
_PATCHED = "_beacon_otel_patched"

# (module, class, methods) that send a statement; a method missing from the installed asyncpg
# is skipped.
_TARGETS = (
    ("connection", "Connection", ("execute", "executemany", "fetch", "fetchval", "fetchrow", "fetchmany")),
    ("cursor", "Cursor", ("fetch", "fetchrow", "forward")),
    ("cursor", "CursorIterator", ("__anext__",)),
    ("prepared_stmt", "PreparedStatement", ("fetch", "fetchval", "fetchrow", "fetchmany", "executemany")),
)

Method = Callable[..., Coroutine[Any, Any, Any]]


def operation_name(query: str) -> str | None:
    """The statement's first keyword (``SELECT``, ``INSERT``...), past leading comments."""
    text = query.lstrip()
    while text.startswith(("/*", "--")):
        end = _block_comment_end(text) if text.startswith("/*") else text.find("\n") + 1
        if not end:
            return None  # the statement is all comment
        text = text[end:].lstrip()
    word = text.split(None, 1)[0] if text else ""
    return word.upper() if word.isalpha() else None


def _block_comment_end(text: str) -> int:
    """Where the ``/* ... */`` comment opening ``text`` ends (Postgres nests them); 0 if never."""
    depth, index = 0, 0
    while index < len(text) - 1:
        pair = text[index : index + 2]
        if pair == "/*":
            depth += 1
            index += 2
        elif pair == "*/":
            depth -= 1
            index += 2
            if depth == 0:
                return index
        else:
            index += 1
    return 0


def _connection_attributes(connection: Any) -> dict[str, Any]:
    """What the span says about the server, from the connection's own (private) fields; a
    field missing from another asyncpg version is left out, never an error."""
    attributes: dict[str, Any] = {"db.system.name": "postgresql"}
    database, address = _upstream.asyncpg_server(connection)
    if database:
        attributes["db.namespace"] = database
    if isinstance(address, tuple) and len(address) >= 2:
        attributes["server.address"] = str(address[0])
        if isinstance(address[1], int):
            attributes["server.port"] = address[1]
    elif isinstance(address, str):  # a Unix socket
        attributes["server.address"] = address
    return attributes


class _Statement:
    """One statement in flight and its span."""

    __slots__ = ("span",)

    def __init__(self, starter: DirectSpanStarter, connection: Any, query: object) -> None:
        attributes = _connection_attributes(connection)
        name = "postgresql"
        if isinstance(query, str) and query:
            attributes["db.query.text"] = query
            operation = operation_name(query)
            if operation:
                attributes["db.operation.name"] = name = operation
        self.span = starter.start(name, None, attributes)

    def fail(self, error: BaseException) -> None:
        span = self.span
        error_type = type(error).__qualname__
        span.set_attribute("error.type", error_type)
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str):
            span.set_attribute("db.response.status_code", sqlstate)
        # The type only: Postgres's messages can quote the data a statement carried.
        span.set_status(Status(StatusCode.ERROR, error_type))


Arguments = tuple[Any, ...]


def _connection_statement(connection: Any, args: Arguments, kwargs: dict[str, Any]) -> tuple[Any, object]:
    """A connection method's statement: its first argument (``query``, or ``command`` for
    ``executemany``)."""
    return connection, args[0] if args else kwargs.get("query", kwargs.get("command"))


def _own_statement(instance: Any, args: Arguments, kwargs: dict[str, Any]) -> tuple[Any, object]:
    """A cursor's or prepared statement's connection and text, which it keeps."""
    return _upstream.asyncpg_statement_source(instance)


def _iterator_will_fetch(iterator: Any) -> bool:
    """Whether this ``__anext__`` goes to the server; rows already fetched are handed out from
    the iterator's buffer, and those calls get no span."""
    return _upstream.asyncpg_iterator_will_fetch(iterator)


def _wrap(original: Method, starter: DirectSpanStarter, class_name: str) -> Method:
    source = _connection_statement if class_name == "Connection" else _own_statement
    is_iterator = class_name == "CursorIterator"

    @functools.wraps(original)
    async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        statement = None
        if is_instrumentation_enabled() and (not is_iterator or _iterator_will_fetch(self)):
            try:
                statement = _Statement(starter, *source(self, args, kwargs))
            except Exception:  # telemetry that cannot start leaves the query untraced, not failed
                statement = None
        if statement is None:
            return await original(self, *args, **kwargs)
        try:
            return await original(self, *args, **kwargs)
        except StopAsyncIteration:
            raise  # a cursor iterator's end of rows, not an error
        except BaseException as error:  # cancelled too: the statement did not complete
            statement.fail(error)
            raise
        finally:
            statement.span.end()

    setattr(traced, _PATCHED, True)
    return traced


def instrument_asyncpg(module: ModuleType, version: str) -> None:
    """Wrap asyncpg's statement methods (post-import hook for ``asyncpg``)."""
    import importlib

    starter = DirectSpanStarter(trace.get_tracer(SCOPE_NAME, version), SpanKind.CLIENT)
    for submodule, class_name, methods in _TARGETS:
        cls = getattr(importlib.import_module(f"{module.__name__}.{submodule}"), class_name, None)
        if cls is None:
            continue
        for method in methods:
            original = cls.__dict__.get(method)
            if original is None or getattr(original, _PATCHED, False) or _wrapped_by_wrapt(original):
                # Ours already, or the upstream instrumentation's wrapper (the app applied it
                # itself): one span per statement, not two.
                continue
            setattr(cls, method, _wrap(original, starter, class_name))


def _wrapped_by_wrapt(function: object) -> bool:
    import wrapt

    return isinstance(function, wrapt.FunctionWrapper)


def is_instrumented(module: ModuleType) -> bool:
    """Whether ``module`` (asyncpg) has beacon-otel's statement wrappers."""
    method = getattr(getattr(module, "Connection", None), "fetch", None)
    return bool(getattr(method, _PATCHED, False))
