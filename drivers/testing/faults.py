"""Fault injection: make the Nth call fail, every call from the Nth, hang, or answer late.

A :class:`FaultPlan` is stepped once per operation by the fake buses (one bus transaction) and by
:class:`FaultyDriver` (one ``open``/``read``); tests script it before or during a run::

    bus.faults.fail_calls = {3}                       # the third transaction gets EIO
    bus.faults.error = lambda: OSError(121, "Remote I/O error")   # NACK instead
    drv = FaultyDriver(real, read=FaultPlan(fail_from=5, error=lambda: CommError("unplugged")))
"""

from __future__ import annotations

import errno
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _eio() -> BaseException:
    return OSError(errno.EIO, "Input/output error (injected)")


@dataclass
class FaultPlan:
    """Which calls (counted from 1) fail, with what, and how slow every call is."""

    fail_calls: set[int] = field(default_factory=set)
    fail_from: int | None = None  # every call from this one on fails (an unplugged sensor)
    error: Callable[[], BaseException] = _eio
    delay_s: float = 0.0  # each call takes this long (a slow device)
    hang: bool = False  # calls block until release() (a device that never answers)
    calls: int = 0
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def step(self) -> None:
        """Count one call and apply the plan to it (sleep, hang, raise)."""
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.hang:
            self._released.wait()
        if self.calls in self.fail_calls or (self.fail_from is not None and self.calls >= self.fail_from):
            raise self.error()

    def release(self) -> None:
        """Let hung calls return (call it in the test's clean-up)."""
        self.hang = False
        self._released.set()

    def clear(self) -> None:
        """No more faults: the device is healthy again."""
        self.fail_calls = set()
        self.fail_from = None
        self.delay_s = 0.0
        self.release()


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
