"""Run state, time per state, shift calendar and OEE: pure functions and small accumulators.

OEE = availability x performance x quality, with
  availability = running time / planned production time (elapsed minus planned stops),
  performance  = ideal cycle time x total count / running time,
  quality      = good count / total count.
Performance is not capped: a value above 1 means the configured ideal cycle time is too long.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class RunState(enum.StrEnum):
    RUNNING = "running"
    IDLE = "idle"
    FAULT = "fault"
    PLANNED_STOP = "planned_stop"


@dataclass
class Totals:
    """Seconds per state and counts over some period (a shift, a rolling bucket, the lifetime)."""

    seconds: dict[RunState, float] = field(default_factory=lambda: dict.fromkeys(RunState, 0.0))
    total: int = 0
    good: int = 0
    energy_kwh: float = 0.0  # from the energy meter, while in any state
    idle_kwh: float = 0.0  # the part of energy_kwh used while not running
    downtime_s: dict[str, float] = field(default_factory=dict)  # reason -> s not running (idle, fault)

    def add(
        self, state: RunState, seconds: float, total: int, good: int, kwh: float = 0.0, reason: str | None = None
    ) -> None:
        self.seconds[state] += seconds
        self.total += total
        self.good += good
        self.energy_kwh += kwh
        if state is not RunState.RUNNING:
            self.idle_kwh += kwh
        if state in (RunState.IDLE, RunState.FAULT) and seconds > 0:
            why = reason or str(state)
            self.downtime_s[why] = self.downtime_s.get(why, 0.0) + seconds

    def merge(self, other: Totals) -> None:
        for s, v in other.seconds.items():
            self.seconds[s] += v
        self.total += other.total
        self.good += other.good
        self.energy_kwh += other.energy_kwh
        self.idle_kwh += other.idle_kwh
        for why, v in other.downtime_s.items():
            self.downtime_s[why] = self.downtime_s.get(why, 0.0) + v

    def kwh_per_good_part(self) -> float | None:
        """Energy per good part; None before the first good part."""
        return self.energy_kwh / self.good if self.good > 0 else None

    def top_downtime(self, n: int = 5) -> list[tuple[str, float]]:
        """The n reasons with the most downtime, longest first."""
        return sorted(self.downtime_s.items(), key=lambda kv: -kv[1])[:n]

    def to_dict(self) -> dict[str, object]:
        """Plain data for the state store."""
        return {
            "seconds": {str(k): v for k, v in self.seconds.items()},
            "total": self.total,
            "good": self.good,
            "energy_kwh": self.energy_kwh,
            "idle_kwh": self.idle_kwh,
            "downtime_s": dict(self.downtime_s),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Totals:
        """Inverse of to_dict; unknown states are ignored (an older or newer version saved it)."""
        t = cls()
        for k, v in dict(d.get("seconds") or {}).items():
            if k in RunState._value2member_map_:
                t.seconds[RunState(k)] = float(v)
        t.total, t.good = int(d.get("total", 0)), int(d.get("good", 0))
        t.energy_kwh, t.idle_kwh = float(d.get("energy_kwh", 0.0)), float(d.get("idle_kwh", 0.0))
        t.downtime_s = {str(k): float(v) for k, v in dict(d.get("downtime_s") or {}).items()}
        return t


@dataclass(frozen=True, slots=True)
class Oee:
    availability: float
    performance: float
    quality: float

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality


def oee(t: Totals, ideal_cycle_time_s: float) -> Oee:
    """The three factors of a period; a factor with nothing to divide by is 0 (quality: 1)."""
    run = t.seconds[RunState.RUNNING]
    planned = sum(t.seconds.values()) - t.seconds[RunState.PLANNED_STOP]
    availability = run / planned if planned > 0 else 0.0
    performance = ideal_cycle_time_s * t.total / run if run > 0 else 0.0
    quality = t.good / t.total if t.total > 0 else 1.0
    return Oee(availability, performance, quality)


def classify(
    *,
    planned_stop: bool | None,
    fault: bool | None,
    running: bool | None,
    rate_per_min: float,
    min_rate_per_min: float,
) -> RunState:
    """Run state from signals (None = not configured), in priority order, else the rate threshold."""
    if planned_stop:
        return RunState.PLANNED_STOP
    if fault:
        return RunState.FAULT
    if running is not None:
        return RunState.RUNNING if running else RunState.IDLE
    return RunState.RUNNING if rate_per_min > 0 and rate_per_min >= min_rate_per_min else RunState.IDLE


@dataclass(frozen=True, slots=True)
class Shift:
    name: str
    start: dt.time
    end: dt.time  # may be <= start: the shift ends the next day
    days: frozenset[int]  # weekdays the shift starts on, 0 = Monday


def shift_end(shift: Shift, start: dt.datetime) -> dt.datetime:
    """When a shift that began at ``start`` ends (the next day when its end is not after its start)."""
    end = dt.datetime.combine(start.date(), shift.end, tzinfo=start.tzinfo)
    return end + dt.timedelta(days=1) if end <= start else end


def current_shift(shifts: Sequence[Shift], now: dt.datetime) -> tuple[Shift, dt.datetime] | None:
    """The shift running at ``now`` (local, aware) and the datetime it started, or None."""
    for day_back in (0, 1):
        day = (now - dt.timedelta(days=day_back)).date()
        for s in shifts:
            if day.weekday() not in s.days:
                continue
            start = dt.datetime.combine(day, s.start, tzinfo=now.tzinfo)
            if start <= now < shift_end(s, start):
                return s, start
    return None


class Rolling:
    """Totals over the last ``window_s`` seconds, kept in ``bucket_s`` buckets."""

    def __init__(self, window_s: float, bucket_s: float = 60.0) -> None:
        self.window_s, self.bucket_s = window_s, bucket_s
        self._buckets: deque[tuple[int, Totals]] = deque()

    def add(self, now_s: float, state: RunState, seconds: float, total: int, good: int, kwh: float = 0.0) -> None:
        index = int(now_s // self.bucket_s)
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append((index, Totals()))
        self._buckets[-1][1].add(state, seconds, total, good, kwh)
        oldest = int((now_s - self.window_s) // self.bucket_s)
        while self._buckets and self._buckets[0][0] <= oldest:
            self._buckets.popleft()

    def totals(self) -> Totals:
        out = Totals()
        for _, t in self._buckets:
            out.merge(t)
        return out
