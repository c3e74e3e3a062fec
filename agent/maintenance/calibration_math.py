"""Calibration math: fit coefficients to reference readings, apply them, judge them.

A calibration maps what the driver converted (``raw``, in engineering units) to the corrected
value. Three forms:

- ``offset``: corrected = raw + offset (one point or more: the mean difference);
- ``linear``: corrected = gain x raw + offset, the least-squares line through two points or more;
- ``table``: a multi-point table, linear interpolation between points and the end segments
  extended outside them (the usual form for a thermocouple checked at several temperatures).

A fit is refused (ValueError naming the problem) when it would hide a broken sensor rather than
correct a drifted one: a gain or a table slope outside ``GAIN_RANGE``, readings that do not
differ, a table that is not increasing.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

GAIN_RANGE = (0.5, 2.0)  # a sensor needing more correction than this is broken, not drifted
MAX_POINTS = 20


class Mode(enum.StrEnum):
    OFFSET = "offset"
    LINEAR = "linear"
    TABLE = "table"


@dataclass(frozen=True, slots=True)
class Coefficients:
    """How to correct one channel."""

    mode: Mode
    gain: float = 1.0
    offset: float = 0.0
    table: tuple[tuple[float, float], ...] = ()  # (raw, corrected), raw increasing

    def apply(self, x: float) -> float:
        """The corrected value of one reading."""
        if self.mode is Mode.TABLE:
            return float(self.apply_array(np.asarray([x], dtype=np.float64))[0])
        return self.gain * x + self.offset

    def apply_array(self, x: Any) -> Any:
        """The corrected values of an array (a waveform axis), as float64."""
        x = np.asarray(x, dtype=np.float64)
        if self.mode is not Mode.TABLE:
            return self.gain * x + self.offset
        raw = np.array([p[0] for p in self.table])
        cor = np.array([p[1] for p in self.table])
        out = np.interp(x, raw, cor)
        lo_slope = (cor[1] - cor[0]) / (raw[1] - raw[0])
        hi_slope = (cor[-1] - cor[-2]) / (raw[-1] - raw[-2])
        out = np.where(x < raw[0], cor[0] + (x - raw[0]) * lo_slope, out)
        return np.where(x > raw[-1], cor[-1] + (x - raw[-1]) * hi_slope, out)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mode": str(self.mode), "gain": self.gain, "offset": self.offset}
        if self.table:
            d["table"] = [list(p) for p in self.table]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Coefficients:
        table = tuple((float(a), float(b)) for a, b in d.get("table") or ())
        return cls(Mode(d["mode"]), float(d.get("gain", 1.0)), float(d.get("offset", 0.0)), table)


IDENTITY = Coefficients(Mode.OFFSET)


def _check_gain(gain: float, what: str) -> None:
    lo, hi = GAIN_RANGE
    if not (math.isfinite(gain) and lo <= gain <= hi):
        raise ValueError(
            f"{what} {gain:.4g} is outside {lo}..{hi}: the sensor or the reference readings are wrong "
            "(a calibration corrects drift, it cannot make a broken sensor read right)"
        )


def fit_sensitivity(points: Sequence[tuple[float, float]]) -> Coefficients:
    """A gain through zero (an accelerometer axis: reference RMS over measured RMS)."""
    raw = np.array([p[0] for p in points], dtype=np.float64)
    ref = np.array([p[1] for p in points], dtype=np.float64)
    if not (np.all(np.isfinite(raw)) and np.all(np.isfinite(ref))) or float(np.sum(raw * raw)) <= 0:
        raise ValueError("sensitivity: readings must be finite and not all zero")
    gain = float(np.sum(raw * ref) / np.sum(raw * raw))
    _check_gain(gain, "sensitivity gain")
    return Coefficients(Mode.LINEAR, gain, 0.0)


def fit(points: Sequence[tuple[float, float]], mode: Mode) -> Coefficients:
    """Coefficients from (raw, reference) pairs; ValueError when they cannot make a calibration."""
    if not points:
        raise ValueError("no reference readings")
    if len(points) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} reference readings, got {len(points)}")
    for r, x in points:
        if not (math.isfinite(r) and math.isfinite(x)):
            raise ValueError(f"reading {r!r} / reference {x!r}: not a finite number")
    raw = np.array([p[0] for p in points], dtype=np.float64)
    ref = np.array([p[1] for p in points], dtype=np.float64)
    if mode is Mode.OFFSET:
        return Coefficients(Mode.OFFSET, 1.0, float(np.mean(ref - raw)))
    if len(points) < 2:
        raise ValueError(f"a {mode} calibration needs two reference readings or more, got 1")
    if np.ptp(raw) <= 1e-9 * max(1.0, float(np.max(np.abs(raw)))):
        raise ValueError("the readings do not differ: take the reference points far apart (e.g. 0 and 100 degC)")
    if mode is Mode.LINEAR:
        gain, offset = np.polyfit(raw, ref, 1)
        _check_gain(float(gain), "gain")
        return Coefficients(Mode.LINEAR, float(gain), float(offset))
    order = np.argsort(raw)
    raw, ref = raw[order], ref[order]
    if np.any(np.diff(raw) <= 0):
        raise ValueError("table: two reference points have the same reading")
    for slope in np.diff(ref) / np.diff(raw):
        _check_gain(float(slope), "table slope")
    return Coefficients(Mode.TABLE, table=tuple(zip(raw.tolist(), ref.tolist(), strict=True)))


def errors(points: Sequence[tuple[float, float]], coeff: Coefficients) -> list[float]:
    """Per point: corrected reading minus reference (the as-found or as-left error)."""
    return [coeff.apply(raw) - ref for raw, ref in points]
