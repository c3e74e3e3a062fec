"""The driver tap: every instance's driver is wrapped so its readings are calibrated (before the
plugin sees them) and copied into the capture ring buffers. A driver with nothing to do costs
one dict lookup per read."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

After = Callable[[str, Any], Any]  # (instance, reading) -> reading


class DriverTap:
    """Looks like the wrapped driver (attributes pass through); ``read`` keeps its sync/async kind."""

    def __init__(self, instance: str, driver: Any, after: After) -> None:
        self._inner = driver
        self._instance = instance
        self._after = after
        self.open = driver.open
        self.close = driver.close
        self.read = self._aread if inspect.iscoroutinefunction(driver.read) else self._read

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _read(self) -> Any:
        result = self._inner.read()
        if inspect.isawaitable(result):  # a plain function returning an awaitable: finish on the loop
            return self._finish(result)
        return self._after(self._instance, result)

    async def _finish(self, pending: Any) -> Any:
        return self._after(self._instance, await pending)

    async def _aread(self) -> Any:
        return self._after(self._instance, await self._inner.read())
