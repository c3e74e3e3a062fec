"""Failed reads of one instance while it polls: a sensor dead from power-up still reports.

A plugin learns its keys from a good reading; when every read fails from the start it has none to
null, and a dashboard would see silence. The runner fills in: after a poll whose read failed and
from which the plugin emitted nothing, the instance's declared keys go out as null with the
error's quality, by exception (the first time, when the quality changes, then every
``heartbeat_s`` of the plugin's options, or every poll when it has none or it is 0). The same
place gives a ``sensor_fault`` event its ``count`` and ``at`` and says whether a hang is behind it
(then ``driver_hung`` is the one alarm of the episode).
"""

from __future__ import annotations

import math
from typing import Any

from edge_agent.agent.runtime.instance_state import describe
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.lanes import DriverHung, where


def fault_at(exc: BaseException) -> str:
    """Where the error was raised: the frame in the driver (in the child under isolate = "process")."""
    at = getattr(exc, "at", "")
    return at if isinstance(at, str) and at else where(exc.__traceback__)


class ReadFaults:
    """This poll's failed read, and when the nulls of a read-fault episode are due again."""

    def __init__(self, options: Any) -> None:
        heartbeat = getattr(options, "heartbeat_s", 0.0)
        by_exception = getattr(options, "report_by_exception", True)
        ok = isinstance(heartbeat, (int, float)) and not isinstance(heartbeat, bool) and by_exception is True
        self.heartbeat_s = float(heartbeat) if ok else 0.0  # 0: every poll
        self.error: DriverError | None = None  # the read that failed in this poll
        self.at = ""  # where the last failed read was raised
        self.alarmed = False  # this episode's sensor_fault went out (the plugin's or the agent's)
        self.by_agent = False  # the agent raised it (the plugin said nothing): the agent ends it
        self._sent_quality: str | None = None
        self._sent_at = -math.inf

    def start_poll(self) -> None:
        self.error = None

    def failed(self, exc: DriverError) -> None:
        self.error, self.at = exc, fault_at(exc)

    def succeeded(self) -> bool:
        """A good read ends the episode; True when the agent raised its alarm (it sends sensor_ok)."""
        self._sent_quality = None  # a later failure starts a new episode: its nulls go at once
        if not self.by_agent:
            return False  # the plugin raised it (and sends its own sensor_ok), or none was raised
        self.by_agent = self.alarmed = False
        return True

    @property
    def hung(self) -> bool:
        return isinstance(self.error, DriverHung)

    def quality(self) -> str:
        return str(getattr(self.error, "quality", "device_error"))

    def why(self, driver: str) -> str:
        return f"read() of driver {driver} failed: {describe(self.error)}" if self.error else ""

    def nulls_due(self, now_s: float) -> str | None:
        """The quality to publish the nulls with now, or None (report by exception holds them)."""
        q = self.quality()
        if q == self._sent_quality and self.heartbeat_s > 0 and now_s - self._sent_at < self.heartbeat_s:
            return None
        self._sent_quality, self._sent_at = q, now_s
        return q
