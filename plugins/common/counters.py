"""Counters to counts and rates: wrap and reset detection, parts per minute over a window.

Pure state machines, no I/O: feed raw counter readings with their time, get increments back.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass


class CounterEvent(enum.StrEnum):
    NONE = "none"
    WRAP = "wrap"  # the counter passed its maximum and restarted from 0
    RESET = "reset"  # the counter was reset (PLC restart, operator): counting restarts from its value


@dataclass(frozen=True, slots=True)
class Step:
    increment: int
    event: CounterEvent


class CounterTracker:
    """Turns raw readings of an n-bit counter into increments.

    A reading below the previous one is a wrap when counting on through the maximum is a short
    step (less than ``max_step`` counts), otherwise a reset; after a reset the new value is all
    counted (the counter restarted from 0 and counted up to it).
    """

    def __init__(self, bits: int = 32, max_step: int | None = None) -> None:
        self.modulus = 1 << bits
        self.max_step = max_step if max_step is not None else self.modulus // 4
        self.last: int | None = None

    def update(self, raw: int) -> Step:
        """Feed one reading; return the increment since the previous one."""
        raw = int(raw) % self.modulus
        last, self.last = self.last, raw
        if last is None:
            return Step(0, CounterEvent.NONE)
        if raw >= last:
            return Step(raw - last, CounterEvent.NONE)
        through = raw + self.modulus - last
        if through <= self.max_step:
            return Step(through, CounterEvent.WRAP)
        return Step(raw, CounterEvent.RESET)


class RateWindow:
    """Parts per minute over the last ``window_s`` seconds of increments."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._steps: deque[tuple[float, int]] = deque()
        self._sum = 0
        self._first_s: float | None = None

    def add(self, now_s: float, increment: int) -> None:
        if self._first_s is None:
            self._first_s = now_s
        self._steps.append((now_s, increment))
        self._sum += increment
        while self._steps and self._steps[0][0] <= now_s - self.window_s:
            self._sum -= self._steps.popleft()[1]

    def rate_per_min(self, now_s: float) -> float:
        """Parts per minute; over the time seen so far while the window is still filling."""
        if self._first_s is None:
            return 0.0
        span = min(self.window_s, now_s - self._first_s)
        return 0.0 if span <= 0 else self._sum * 60.0 / span


class EnergyCounter:
    """Increments of an energy meter's kWh register; a reading below the last (meter reset or
    replaced) attributes nothing to that step rather than a huge negative or positive jump."""

    def __init__(self, last: float | None = None) -> None:
        self.last = last

    def update(self, kwh: float) -> float:
        last, self.last = self.last, float(kwh)
        if last is None or kwh < last:
            return 0.0
        return float(kwh) - last
