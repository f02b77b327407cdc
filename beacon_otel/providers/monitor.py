"""``BEACON_OTEL_HEALTH_INTERVAL``: sweep every hooked router's providers continuously.

The loop runs in the app's own event loop, started when the app's lifespan has started and
stopped (cancelled and awaited) when its shutdown begins, before the app closes its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from beacon_otel.providers import registry

logger = logging.getLogger("beacon_otel.providers")


class HealthMonitor:
    def __init__(self, interval: float, error_interval: float = 60.0) -> None:
        self.interval = interval
        self._error_interval = error_interval
        self._task: asyncio.Task[None] | None = None
        self._last_error_report = 0.0

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="beacon-otel-health-monitor"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            # +-10 % jitter, so that the replicas of a service do not probe in lockstep
            await asyncio.sleep(self.interval * random.uniform(0.9, 1.1))
            await self.sweep_once()

    async def sweep_once(self) -> None:
        for router in registry.routers():
            if registry.is_sweeping(router):
                continue  # the previous sweep (ours or the app's) is still running
            try:
                await router.health_check_providers()
            except Exception as error:  # the loop outlives any failure of one sweep
                now = time.monotonic()
                if now - self._last_error_report >= self._error_interval:
                    self._last_error_report = now
                    logger.warning(
                        "beacon-otel: a scheduled provider health sweep failed: %s: %s",
                        type(error).__name__,
                        error,
                    )
