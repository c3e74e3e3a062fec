"""Callendar-Van Dusen for platinum RTDs (IEC 60751, alpha = 0.00385), both directions.

R(t) = R0 (1 + A t + B t^2)                      for 0 <= t <= 850 degC
R(t) = R0 (1 + A t + B t^2 + C (t - 100) t^3)    for -200 <= t < 0 degC
Pure functions, no I/O. Outside -200..850 degC both directions raise OutOfRangeError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_agent.plugins.temperature.its90 import OutOfRangeError

T_MIN_C = -200.0
T_MAX_C = 850.0


@dataclass(frozen=True, slots=True)
class CvdCoefficients:
    a: float = 3.9083e-3
    b: float = -5.775e-7
    c: float = -4.183e-12  # used below 0 degC only


IEC_60751 = CvdCoefficients()


# Resistances at the range ends are published rounded to 0.01 ohm (Pt100); accept that, no more.
ROUNDING_RATIO = 5e-5


def _ratio(t_c: float, k: CvdCoefficients) -> float:
    r = 1.0 + k.a * t_c + k.b * t_c * t_c
    if t_c < 0.0:
        r += k.c * (t_c - 100.0) * t_c**3
    return r


def resistance_ohm(t_c: float, r0_ohm: float = 100.0, k: CvdCoefficients = IEC_60751) -> float:
    """RTD resistance at ``t_c`` degC (Pt100: r0_ohm = 100, Pt1000: 1000)."""
    if not (T_MIN_C <= t_c <= T_MAX_C):
        raise OutOfRangeError(f"RTD temperature {t_c:g} degC is outside {T_MIN_C:g}..{T_MAX_C:g} degC")
    return r0_ohm * _ratio(t_c, k)


def _quadratic_c(ratio: float, k: CvdCoefficients) -> float:
    return (-k.a + math.sqrt(k.a * k.a - 4.0 * k.b * (1.0 - ratio))) / (2.0 * k.b)


def temperature_c(r_ohm: float, r0_ohm: float = 100.0, k: CvdCoefficients = IEC_60751) -> float:
    """Temperature in degC of an RTD with resistance ``r_ohm``; exact inverse of resistance_ohm."""
    ratio = r_ohm / r0_ohm
    lo, hi = _ratio(T_MIN_C, k), _ratio(T_MAX_C, k)
    if not math.isfinite(ratio) or not (lo - ROUNDING_RATIO <= ratio <= hi + ROUNDING_RATIO):
        raise OutOfRangeError(
            f"RTD resistance {r_ohm:g} ohm is outside {lo * r0_ohm:.3f}..{hi * r0_ohm:.3f} ohm (R0 {r0_ohm:g})"
        )
    t = _quadratic_c(ratio, k)
    if t >= 0.0:
        return t
    for _ in range(20):  # Newton on the quartic; converges in 2-4 steps from the quadratic guess
        step = (_ratio(t, k) - ratio) / (k.a + 2 * k.b * t + k.c * (4 * t**3 - 300.0 * t * t))
        t -= step
        if abs(step) < 1e-10:
            break
    return t
