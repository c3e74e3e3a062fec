"""Fault injection: make the Nth call fail, every call from the Nth, hang, or answer late.

A :class:`FaultPlan` (drivers/buses/emulated.py) is stepped once per operation by the emulated
buses (one bus transaction) and by :class:`FaultyDriver` (one ``open``/``read``); tests script it
before or during a run::

    bus.faults.fail_calls = {3}                       # the third transaction gets EIO
    bus.faults.error = lambda: OSError(121, "Remote I/O error")   # NACK instead
    drv = FaultyDriver(real, read=FaultPlan(fail_from=5, error=lambda: CommError("unplugged")))
"""

from __future__ import annotations

import inspect
from typing import Any

from edge_agent.drivers.buses.emulated import FaultPlan


class FaultyDriver:
    """Wraps a (plain, not async) driver; its ``open``/``read`` follow a FaultPlan each."""

    def __init__(self, driver: Any, *, open: FaultPlan | None = None, read: FaultPlan | None = None) -> None:
        self.driver = driver
        self.open_faults = open or FaultPlan()
        self.read_faults = read or FaultPlan()

    def open(self) -> Any:
        self.open_faults.step()
        return self.driver.open()

    def read(self) -> Any:
        self.read_faults.step()
        return self.driver.read()

    def close(self) -> Any:
        return self.driver.close()


class AsyncFaultyDriver(FaultyDriver):
    """The same for a driver with ``async def`` methods (the plan's delay blocks the loop: keep it 0)."""

    async def open(self) -> Any:
        self.open_faults.step()
        return await self.driver.open()

    async def read(self) -> Any:
        self.read_faults.step()
        return await self.driver.read()

    async def close(self) -> Any:
        return await self.driver.close()


def inject_faults(driver: Any, *, open: FaultPlan | None = None, read: FaultPlan | None = None) -> FaultyDriver:
    """Wrap a plain or async driver so its open/read follow the given plans."""
    cls = AsyncFaultyDriver if inspect.iscoroutinefunction(driver.read) else FaultyDriver
    return cls(driver, open=open, read=read)
