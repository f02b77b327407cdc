"""Bridge to the Go runner's ``X-Trace-Id: <uuid>`` header.

The runner calls the router with a UUID trace id and no ``traceparent``; its own
``trace_spans`` rows use that UUID. A 128-bit trace id *is* a UUID, so when a request carries
only the legacy header, the server span simply starts a trace whose id is that UUID, and
outgoing calls carry the id both ways (``traceparent`` and the legacy header), unless the app
set the legacy header on the request itself: then its value is kept.

Start-up of the server span happens inside instrumentation code we do not own, so the id is
handed over through a context variable: :meth:`LegacyTraceIdPropagator.extract` leaves it for
the next root span of the same task, and :class:`LegacyAwareIdGenerator` takes it exactly once.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

_pending_trace_id: ContextVar[int | None] = ContextVar("beacon_otel_pending_trace_id", default=None)


def trace_id_from_uuid(value: str | None) -> int | None:
    """The trace id a legacy header stands for, or None when it is not a usable UUID."""
    if not value or len(value) > 64:
        return None
    try:
        trace_id = uuid.UUID(value.strip()).int
    except ValueError:
        return None
    return trace_id or None  # the all-zero id is invalid in W3C trace context


def uuid_from_trace_id(trace_id: int) -> str:
    return str(uuid.UUID(int=trace_id))


def _carries(carrier: object, header: str) -> bool:
    """Whether the outgoing request already has ``header`` (any case): the app set it (the
    router sends its own ``X-Trace-Id`` when the id came in its request body), and telemetry
    never changes what the app sends."""
    try:
        if header in carrier:  # type: ignore[operator]  # httpx.Headers: case-insensitive
            return True
        return any(isinstance(key, str) and key.lower() == header for key in carrier)  # type: ignore[attr-defined]
    except TypeError:  # a carrier that cannot be searched: nothing to keep
        return False


class LegacyAwareIdGenerator(RandomIdGenerator):
    """Random ids, except for a root span that a legacy header asked to continue."""

    def generate_trace_id(self) -> int:
        pending = _pending_trace_id.get()
        if pending is not None:
            _pending_trace_id.set(None)
            return pending
        return super().generate_trace_id()


class LegacyTraceIdPropagator(TextMapPropagator):
    """Reads and writes the runner's UUID header beside W3C ``traceparent``."""

    def __init__(self, header: str = "x-trace-id") -> None:
        self.header = header.lower()

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        if context is None:
            context = Context()
        if getter.get(carrier, "traceparent"):
            return context  # W3C context wins; the legacy header is only a fallback
        values = getter.get(carrier, self.header)
        trace_id = trace_id_from_uuid(values[0] if values else None)
        _pending_trace_id.set(trace_id)
        return context

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid and not _carries(carrier, self.header):
            setter.set(carrier, self.header, uuid_from_trace_id(span_context.trace_id))

    @property
    def fields(self) -> set[str]:
        return {self.header}
