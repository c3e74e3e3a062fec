"""Call a driver method, plain or ``async def``, off the caller's thread with a deadline.

A thin adapter over :class:`edge_agent.drivers.lanes.Lane`, so the conformance kit calls a driver
exactly as the agent does (issue 20 item 8: one helper, one behaviour): plain methods on the
lane's thread, ``async def`` methods on the lane's one persistent loop (an asyncio client opened
in ``open`` is read on the same loop), an awaitable result awaited. After a call that never
returns, the next call gets a fresh lane (a new driver object in the kit; the stuck thread is a
daemon and costs that thread only).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from edge_agent.drivers.lanes import DriverHung, Lane


class DeadlineExceeded(Exception):
    """The call did not return in time (it may still be running)."""


class Caller:
    """``call(fn, deadline_s)`` runs fn and returns its result or raises its exception."""

    def __init__(self, name: str = "conformance") -> None:
        self.name = name
        self._lane = Lane(name)

    def __call__(self, fn: Callable[[], Any], deadline_s: float) -> Any:
        if self._lane.stuck is not None:  # the kit moved on to a new driver object
            self._lane.release()
            self._lane = Lane(self.name)
        name = getattr(fn, "__qualname__", repr(fn))
        try:
            return self._lane.call_sync(fn, deadline_s=deadline_s)
        except DriverHung as exc:
            if self._lane.stuck is None and "deadline" not in str(exc):
                raise  # the driver itself raised a DriverHung
            raise DeadlineExceeded(f"{name}() did not return within {deadline_s} s") from None

    def close(self) -> None:
        """End the lane's thread (at once if idle, else when its call returns)."""
        self._lane.release()

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
