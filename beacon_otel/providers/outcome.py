"""What happened during one provider call, gathered while it runs, and what to call it.

The router swallows every exception of a health check, so the hooked method's return value says
nothing. Instead, while a check runs, a context variable holds a :class:`CallRecord` that the
httpx hook (the response status or the transport error) and the log pipeline (an exception
handled while a warning is logged) fill in; the classification reads it afterwards.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class CallRecord:
    url: str | None = None
    status_code: int | None = None
    transport_error: BaseException | None = None
    handled_error: BaseException | None = None


current_call: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "beacon_otel_provider_call", default=None
)


def note_response(url: str, status_code: int) -> None:
    record = current_call.get()
    if record is not None:
        record.url, record.status_code = url, status_code


def note_transport_error(url: str, error: BaseException) -> None:
    record = current_call.get()
    if record is not None:
        record.url, record.transport_error = url, error


def note_handled_error(error: BaseException) -> None:
    record = current_call.get()
    if record is not None and record.handled_error is None:
        record.handled_error = error


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    error_type: str | None = None
    message: str | None = None

    @property
    def label(self) -> str:
        return "success" if self.ok else "failure"


SUCCESS = Outcome(ok=True)


def classify_check(healthy: object, record: CallRecord) -> Outcome:
    """A health check's outcome, from the provider's ``healthy`` flag and what was seen.

    error.type is the transport exception's class (``ConnectTimeout``, ``ConnectError``),
    ``http_<status>`` for an error status, ``invalid_json`` when the body did not parse, the
    exception's class for anything else that was raised, and ``unhealthy_status`` when the
    provider answered but reported itself unhealthy.
    """
    if healthy is True:
        return SUCCESS
    if record.transport_error is not None:
        return _from_exception(record.transport_error)
    if record.status_code is not None and record.status_code >= 400:
        return Outcome(False, f"http_{record.status_code}", f"HTTP {record.status_code}")
    if record.handled_error is not None:
        return _from_exception(record.handled_error)
    if healthy is False:
        return Outcome(False, "unhealthy_status", "the provider reported itself unhealthy")
    return SUCCESS  # no healthy attribute to judge by, and nothing went wrong


def result_field(result: object, name: str) -> Any:
    """One field of the router's inference result, whatever its shape: a key of a dict, or an
    attribute of a pydantic (v1 or v2) model, a dataclass or any other object. None if absent."""
    if isinstance(result, Mapping):
        return result.get(name)
    try:
        return getattr(result, name, None)
    except Exception:  # a property that raises is an absent field, not a failed inference
        return None


def classify_inference(result: object, record: CallRecord) -> Outcome:
    """An inference's outcome from the router's result (``success``, ``error``, ``error_code``)
    and what was seen while it ran.

    error.type, most specific first: the transport exception's class, ``http_<status>``, a
    handled exception (``invalid_json`` for a body that did not parse), ``no_provider`` when no
    provider was called, the router's own ``error_code`` in lower case
    (``provider_execution_failed``), else ``inference_failed``.
    """
    if result_field(result, "success") is not False:
        return SUCCESS
    error = result_field(result, "error")
    message = str(error) if error else "the router reported a failure"
    if record.transport_error is not None:
        return Outcome(False, type(record.transport_error).__name__, message)
    if record.status_code is not None and record.status_code >= 400:
        return Outcome(False, f"http_{record.status_code}", message)
    if record.handled_error is not None:
        return Outcome(False, _from_exception(record.handled_error).error_type, message)
    if record.url is None:
        return Outcome(False, "no_provider", message)  # nothing was called
    code = result_field(result, "error_code")
    if isinstance(code, str) and code.strip():
        return Outcome(False, code.strip().lower()[:64], message)
    return Outcome(False, "inference_failed", message)


def _from_exception(error: BaseException) -> Outcome:
    if isinstance(error, json.JSONDecodeError) or type(error).__name__ == "JSONDecodeError":
        return Outcome(False, "invalid_json", str(error))
    message = str(error) or type(error).__name__
    return Outcome(False, type(error).__name__, message)
