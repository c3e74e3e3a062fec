"""Trend math for temperature channels: rate of change, time to threshold, stuck and spikes.

Pure functions over numpy arrays (or sequences), numbers out; no state, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64] | Sequence[float]


def slope_per_s(t_s: FloatArray, y: FloatArray) -> float:
    """Least-squares slope dy/dt in units per second; NaN with fewer than 2 distinct times."""
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(y, dtype=np.float64)
    if t.size < 2:
        return math.nan
    dt = t - t.mean()
    denom = float(np.dot(dt, dt))
    if denom <= 0.0:
        return math.nan
    return float(np.dot(dt, v - v.mean()) / denom)


def rate_per_min(t_s: FloatArray, y: FloatArray) -> float:
    """Least-squares rate of change in units per minute."""
    return slope_per_s(t_s, y) * 60.0


def time_to_threshold_s(value: float, rate_per_min_: float, threshold: float) -> float | None:
    """Seconds until ``value`` reaches ``threshold`` at the present rate; None if it never will.

    0.0 when the value is already at or past the threshold in the direction of travel.
    """
    if not (math.isfinite(value) and math.isfinite(rate_per_min_) and math.isfinite(threshold)):
        return None
    gap = threshold - value
    if gap == 0.0:
        return 0.0
    if rate_per_min_ == 0.0 or (gap > 0) != (rate_per_min_ > 0):
        return None
    return gap / rate_per_min_ * 60.0


def is_stuck(y: FloatArray, tolerance: float) -> bool:
    """True when every value of the window lies within ``tolerance`` of the others."""
    v = np.asarray(y, dtype=np.float64)
    if v.size < 2:
        return False
    return float(v.max() - v.min()) <= tolerance


def median(y: FloatArray) -> float:
    """Median of the window: the spike filter's output (a single spike never passes a window of 3).
    Sorted in Python: np.median of three values cost ~20 us, every channel every second."""
    v = sorted(float(x) for x in y)
    h = len(v) // 2
    if not v:
        return math.nan
    if any(x != x for x in v):
        return math.nan  # as np.median: a NaN in the window makes the median NaN
    return v[h] + 0.0 if len(v) % 2 else (0.0 + v[h - 1] + v[h]) / 2  # + 0.0: a -0.0 reads 0.0, as numpy's


def is_jump(previous: float | None, value: float, max_step: float) -> bool:
    """True when ``value`` differs from ``previous`` by more than ``max_step`` (0 = no check)."""
    if previous is None or max_step <= 0.0:
        return False
    return abs(value - previous) > max_step


def coarse_seconds(seconds: float) -> int:
    """Round a countdown to a resolution that shrinks as it nears zero (5 s under 2 min, 15 s
    under 10 min, 1 min beyond), so a noisy estimate does not produce a new number every read."""
    step = 5 if seconds < 120 else 15 if seconds < 600 else 60
    return int(round(seconds / step) * step)
