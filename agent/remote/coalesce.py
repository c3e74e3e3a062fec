"""Expensive requests from the network (``cmd/reload``) run at most once per interval; requests that
arrive meanwhile share the next run and its answer, and are counted (docs/security.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class Coalescer:
    """``await c.run()``: ``work()`` now if it last started ``interval_s`` ago and is not running,
    else in one shared run after that (every caller waiting meanwhile gets that run's result)."""

    def __init__(self, work: Callable[[], Awaitable[Any]], interval_s: float) -> None:
        self.work, self.interval_s = work, interval_s
        self.runs = 0
        self.coalesced = 0  # requests answered by a run another request caused
        self._started_at = -1e18
        self._running: asyncio.Task[Any] | None = None
        self._next: asyncio.Task[Any] | None = None  # scheduled, not started: new requests join it

    async def run(self) -> Any:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_task(self._after_interval())
        else:
            self.coalesced += 1
        return await asyncio.shield(self._next)  # a cancelled caller must not cancel the others' run

    async def _after_interval(self) -> Any:
        if self._running is not None:
            await asyncio.wait([self._running])
        delay = self._started_at + self.interval_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next = None  # started: requests from now on wait for the run after this one
        self._started_at = time.monotonic()
        self._running = asyncio.current_task()
        self.runs += 1
        try:
            return await self.work()
        finally:
            self._running = None
