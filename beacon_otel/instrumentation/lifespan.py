"""Work that must start with the app and stop before it shuts down (the health monitor).

The server-span middleware sees the ASGI ``lifespan`` scope of every FastAPI/Starlette app: the
start-up hooks run just before the app reports ``lifespan.startup.complete``, in the app's event
loop; the shutdown hooks as soon as the server asks for ``lifespan.shutdown``, before the app's
own shutdown closes its clients; the after-shutdown hooks just before the app reports
``lifespan.shutdown.complete``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Hook = Callable[[], Awaitable[None]]
Message = MutableMapping[str, Any]

logger = logging.getLogger("beacon_otel.instrumentation")

_startup: list[Hook] = []
_shutdown: list[Hook] = []
_after_shutdown: list[Hook] = []


def on_lifespan(
    startup: Hook | None = None, shutdown: Hook | None = None, after_shutdown: Hook | None = None
) -> None:
    """``startup``: once the app has started; ``shutdown``: before the app's own shutdown runs;
    ``after_shutdown``: once it has finished (the last chance to flush what it logged)."""
    for hooks, hook in ((_startup, startup), (_shutdown, shutdown), (_after_shutdown, after_shutdown)):
        if hook is not None:
            hooks.append(hook)


def has_hooks() -> bool:
    return bool(_startup or _shutdown or _after_shutdown)


async def _run(hooks: list[Hook], phase: str) -> None:
    for hook in hooks:
        try:
            await hook()
        except Exception:  # the app starts and stops whatever happens to the telemetry
            logger.warning("beacon-otel: a %s hook failed", phase, exc_info=True)


async def run_lifespan(
    app: Callable[[Any, Any, Any], Awaitable[None]],
    scope: Any,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    async def receive_with_hooks() -> Message:
        message = await receive()
        if message.get("type") == "lifespan.shutdown":
            await _run(_shutdown, "shutdown")
        return message

    async def send_with_hooks(message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            await _run(_startup, "start-up")
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            await _run(_after_shutdown, "shutdown")
        await send(message)

    await app(scope, receive_with_hooks, send_with_hooks)
