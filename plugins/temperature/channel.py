"""One temperature channel's state: conversion, spike filter, health checks and trend window.

No I/O: ``update`` takes a driver ChannelReading and the time, and returns what to publish and
which health transitions happened; the plugin turns those into emits and events.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from edge_agent.drivers.contract import ChannelReading, Linearisation, Quality
from edge_agent.plugins.common import trend
from edge_agent.plugins.temperature import its90, rtd
from edge_agent.plugins.temperature.options import TemperatureOptions


@dataclass(frozen=True, slots=True)
class Health:
    """A change of a channel's health: ``quality`` GOOD means it recovered."""

    quality: Quality
    detail: str
    value_c: float | None = None


@dataclass(slots=True)
class Outcome:
    temp_c: float | None  # None when the quality is not good
    quality: Quality
    rate_c_per_min: float | None
    cold_junction_c: float | None = None
    health: list[Health] = field(default_factory=list)


def convert_c(ch: ChannelReading, o: TemperatureOptions) -> float:
    """The channel's temperature in degC; OutOfRangeError when the conversion has no answer."""
    if ch.linearisation is Linearisation.RTD:
        if ch.resistance_ohm is None:
            raise its90.OutOfRangeError("RTD reading without a resistance")
        return rtd.temperature_c(ch.resistance_ohm, ch.r0_ohm or 100.0)
    if ch.temperature_c is None:
        raise its90.OutOfRangeError("reading without a temperature")
    if (
        ch.linearisation is Linearisation.LINEAR
        and o.nist_correction
        and ch.slope_uv_per_c
        and ch.cold_junction_c is not None
        and ch.sensor in its90.ThermocoupleType.__members__
    ):
        tc = its90.ThermocoupleType(ch.sensor)
        return its90.linear_chip_corrected_c(
            tc, ch.temperature_c, ch.cold_junction_c, ch.slope_uv_per_c, refine=o.exact_inverse
        )
    return ch.temperature_c


class ChannelTracker:
    """Filters, checks and trends one channel; remembers the fault episode it is in."""

    def __init__(self, name: str, o: TemperatureOptions) -> None:
        self.name = name
        self.o = o
        self.quality = Quality.GOOD
        self._spikes: deque[float] = deque(maxlen=o.median_window)
        self._trend: deque[tuple[float, float]] = deque()
        self._last_good: float | None = None
        self._jump: list[float] = []
        self._stuck_ref: float | None = None
        self._stuck_since = 0.0

    def update(self, ch: ChannelReading, now_s: float) -> Outcome:
        """Process one reading taken at ``now_s`` (monotonic seconds)."""
        if ch.calibration_step_c:
            self._rebase(ch.calibration_step_c)
        if ch.quality is not Quality.GOOD:
            detail = ", ".join(ch.faults) or str(ch.quality)
            return self._bad(ch.quality, detail, None, ch.cold_junction_c)
        try:
            raw_c = convert_c(ch, self.o)
        except its90.OutOfRangeError as exc:
            return self._bad(Quality.OUT_OF_RANGE, str(exc), None, ch.cold_junction_c)
        if not (self.o.valid_min_c <= raw_c <= self.o.valid_max_c):
            detail = f"{raw_c:.2f} degC outside {self.o.valid_min_c:g}..{self.o.valid_max_c:g} degC"
            return self._bad(Quality.OUT_OF_RANGE, detail, raw_c, ch.cold_junction_c)
        return self._checked(raw_c, now_s, ch.cold_junction_c)

    def _rebase(self, step: float) -> None:
        """A calibration applied or changed is a step, not a trend: shift what the filter, the jump
        check and the trend window remember by it."""
        if not math.isfinite(step):
            return
        self._spikes = deque((v + step for v in self._spikes), maxlen=self._spikes.maxlen)
        self._trend = deque((t, v + step) for t, v in self._trend)
        self._jump = [v + step for v in self._jump]
        self._last_good = None if self._last_good is None else self._last_good + step
        self._stuck_ref = None if self._stuck_ref is None else self._stuck_ref + step

    def fail(self, quality: Quality, detail: str) -> Outcome:
        """The whole driver failed (no reading at all)."""
        return self._bad(quality, detail, None, None)

    def _checked(self, raw_c: float, now_s: float, cj_c: float | None) -> Outcome:
        if self._is_stuck(raw_c, now_s):
            return self._bad(Quality.STUCK, f"no change for {self.o.stuck_after_s:g} s", raw_c, cj_c)
        self._spikes.append(raw_c)
        value = trend.median(self._spikes)
        if trend.is_jump(self._last_good, value, self.o.max_step_c):
            self._jump.append(value)
            if len(self._jump) < self.o.jump_confirm_reads or not trend.is_stuck(self._jump, self.o.max_step_c):
                prev = self._last_good
                return self._bad(Quality.IMPLAUSIBLE, f"jump {prev:.1f} -> {value:.1f} degC", value, cj_c)
        self._jump.clear()
        self._last_good = value
        return self._good(value, now_s, cj_c)

    def _good(self, value: float, now_s: float, cj_c: float | None) -> Outcome:
        health: list[Health] = []
        if self.quality is not Quality.GOOD:
            health.append(Health(Quality.GOOD, f"readings good again after {self.quality}", value))
            self.quality = Quality.GOOD
        self._trend.append((now_s, value))
        while self._trend and self._trend[0][0] < now_s - self.o.rate_window_s:
            self._trend.popleft()
        return Outcome(value, Quality.GOOD, self._rate(), cj_c, health)

    def _rate(self) -> float | None:
        if len(self._trend) < self.o.rate_min_points:
            return None
        t0, t1 = self._trend[0][0], self._trend[-1][0]
        if t1 - t0 < 0.5 * self.o.rate_window_s:
            return None
        rate = trend.rate_per_min([p[0] for p in self._trend], [p[1] for p in self._trend])
        return rate if math.isfinite(rate) else None

    def _is_stuck(self, raw_c: float, now_s: float) -> bool:
        if self.o.stuck_after_s <= 0:
            return False
        if self._stuck_ref is None or abs(raw_c - self._stuck_ref) > self.o.stuck_tolerance_c:
            self._stuck_ref, self._stuck_since = raw_c, now_s
            return False
        return now_s - self._stuck_since >= self.o.stuck_after_s

    def _bad(self, q: Quality, detail: str, value_c: float | None, cj_c: float | None) -> Outcome:
        health = [] if q is self.quality else [Health(q, detail, value_c)]
        self.quality = q
        if q is not Quality.IMPLAUSIBLE:
            self._spikes.clear()  # the filter must not mix readings from before and after a fault
            self._jump.clear()
        if q not in (Quality.IMPLAUSIBLE, Quality.STUCK):
            self._last_good = None
        return Outcome(None, q, None, cj_c, health)
