"""NIST ITS-90 thermocouple reference functions for types B, E, J, K, N, R, S and T.

Pure functions, no I/O. Coefficients are the NIST ITS-90 Thermocouple Database / Monograph 175
values in degC and mV, lowest order first. ``emf_mv`` evaluates the reference function
(including the type K exponential term); ``temperature_c`` evaluates the NIST inverse
polynomials by range. Outside a function's stated range both raise :class:`OutOfRangeError`:
a polynomial extrapolated past its range is a wrong number that looks right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.drivers.contract import TcType

# One enum for the letter types, shared with the drivers that configure chips by type.
ThermocoupleType = TcType


class OutOfRangeError(ValueError):
    """A temperature or EMF outside the range NIST defines the function on."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One polynomial valid on [lo, hi] (degC for the reference function, mV for the inverse)."""

    lo: float
    hi: float
    coeffs: tuple[float, ...]


def _seg(lo: float, hi: float, *coeffs: float) -> Segment:
    return Segment(lo, hi, coeffs)


# Type K above 0 degC adds a0 * exp(a1 * (t - a2)^2) to the polynomial (mV, degC).
K_EXP = (0.118597600000e00, -0.118343200000e-03, 0.126968600000e03)

# fmt: off
FORWARD: dict[ThermocoupleType, tuple[Segment, ...]] = {
    ThermocoupleType.B: (
        _seg(0.0, 630.615, 0.0, -0.246508183460e-03, 0.590404211710e-05, -0.132579316360e-08,
             0.156682919010e-11, -0.169445292400e-14, 0.629903470940e-18),
        _seg(630.615, 1820.0, -0.389381686210e01, 0.285717474700e-01, -0.848851047850e-04,
             0.157852801640e-06, -0.168353448640e-09, 0.111097940130e-12, -0.445154310330e-16,
             0.989756408210e-20, -0.937913302890e-24),
    ),
    ThermocoupleType.E: (
        _seg(-270.0, 0.0, 0.0, 0.586655087080e-01, 0.454109771240e-04, -0.779980486860e-06,
             -0.258001608430e-07, -0.594525830570e-09, -0.932140586670e-11, -0.102876055340e-12,
             -0.803701236210e-15, -0.439794973910e-17, -0.164147763550e-19, -0.396736195160e-22,
             -0.558273287210e-25, -0.346578420130e-28),
        _seg(0.0, 1000.0, 0.0, 0.586655087100e-01, 0.450322755820e-04, 0.289084072120e-07,
             -0.330568966520e-09, 0.650244032700e-12, -0.191974955040e-15, -0.125366004970e-17,
             0.214892175690e-20, -0.143880417820e-23, 0.359608994810e-27),
    ),
    ThermocoupleType.J: (
        _seg(-210.0, 760.0, 0.0, 0.503811878150e-01, 0.304758369300e-04, -0.856810657200e-07,
             0.132281952950e-09, -0.170529583370e-12, 0.209480906970e-15, -0.125383953360e-18,
             0.156317256970e-22),
        _seg(760.0, 1200.0, 0.296456256810e03, -0.149761277860e01, 0.317871039240e-02,
             -0.318476867010e-05, 0.157208190040e-08, -0.306913690560e-12),
    ),
    ThermocoupleType.K: (
        _seg(-270.0, 0.0, 0.0, 0.394501280250e-01, 0.236223735980e-04, -0.328589067840e-06,
             -0.499048287770e-08, -0.675090591730e-10, -0.574103274280e-12, -0.310888728940e-14,
             -0.104516093650e-16, -0.198892668780e-19, -0.163226974860e-22),
        _seg(0.0, 1372.0, -0.176004136860e-01, 0.389212049750e-01, 0.185587700320e-04,
             -0.994575928740e-07, 0.318409457190e-09, -0.560728448890e-12, 0.560750590590e-15,
             -0.320207200030e-18, 0.971511471520e-22, -0.121047212750e-25),
    ),
    ThermocoupleType.N: (
        _seg(-270.0, 0.0, 0.0, 0.261591059620e-01, 0.109574842280e-04, -0.938411115540e-07,
             -0.464120397590e-10, -0.263033577160e-11, -0.226534380030e-13, -0.760893007910e-16,
             -0.934196678350e-19),
        _seg(0.0, 1300.0, 0.0, 0.259293946010e-01, 0.157101418800e-04, 0.438256272370e-07,
             -0.252611697940e-09, 0.643118193390e-12, -0.100634715190e-14, 0.997453389920e-18,
             -0.608632456070e-21, 0.208492293390e-24, -0.306821961510e-28),
    ),
    ThermocoupleType.R: (
        _seg(-50.0, 1064.18, 0.0, 0.528961729765e-02, 0.139166589782e-04, -0.238855693017e-07,
             0.356916001063e-10, -0.462347666298e-13, 0.500777441034e-16, -0.373105886191e-19,
             0.157716482367e-22, -0.281038625251e-26),
        _seg(1064.18, 1664.5, 0.295157925316e01, -0.252061251332e-02, 0.159564501865e-04,
             -0.764085947576e-08, 0.205305291024e-11, -0.293359668173e-15),
        _seg(1664.5, 1768.1, 0.152232118209e03, -0.268819888545e00, 0.171280280471e-03,
             -0.345895706453e-07, -0.934633971046e-14),
    ),
    ThermocoupleType.S: (
        _seg(-50.0, 1064.18, 0.0, 0.540313308631e-02, 0.125934289740e-04, -0.232477968689e-07,
             0.322028823036e-10, -0.331465196389e-13, 0.255744251786e-16, -0.125068871393e-19,
             0.271443176145e-23),
        _seg(1064.18, 1664.5, 0.132900444085e01, 0.334509311344e-02, 0.654805192818e-05,
             -0.164856259209e-08, 0.129989605174e-13),
        _seg(1664.5, 1768.1, 0.146628232636e03, -0.258430516752e00, 0.163693574641e-03,
             -0.330439046987e-07, -0.943223690612e-14),
    ),
    ThermocoupleType.T: (
        _seg(-270.0, 0.0, 0.0, 0.387481063640e-01, 0.441944343470e-04, 0.118443231050e-06,
             0.200329735540e-07, 0.901380195590e-09, 0.226511565930e-10, 0.360711542050e-12,
             0.384939398830e-14, 0.282135219250e-16, 0.142515947790e-18, 0.487686622860e-21,
             0.107955392700e-23, 0.139450270620e-26, 0.797951539270e-30),
        _seg(0.0, 400.0, 0.0, 0.387481063640e-01, 0.332922278800e-04, 0.206182434040e-06,
             -0.218822568460e-08, 0.109968809280e-10, -0.308157587720e-13, 0.454791352900e-16,
             -0.275129016730e-19),
    ),
}

# Inverse polynomials t = sum d_i E^i, E in mV. Overlapping NIST ranges (R, S) are split at a
# point inside both, so every EMF has exactly one polynomial.
INVERSE: dict[ThermocoupleType, tuple[Segment, ...]] = {
    ThermocoupleType.B: (
        _seg(0.291, 2.431, 9.8423321e01, 6.9971500e02, -8.4765304e02, 1.0052644e03, -8.3345952e02,
             4.5508542e02, -1.5523037e02, 2.9886750e01, -2.4742860e00),
        _seg(2.431, 13.820, 2.1315071e02, 2.8510504e02, -5.2742887e01, 9.9160804e00,
             -1.2965303e00, 1.1195870e-01, -6.0625199e-03, 1.8661696e-04, -2.4878585e-06),
    ),
    ThermocoupleType.E: (
        _seg(-8.825, 0.0, 0.0, 1.6977288e01, -4.3514970e-01, -1.5859697e-01, -9.2502871e-02,
             -2.6084314e-02, -4.1360199e-03, -3.4034030e-04, -1.1564890e-05),
        _seg(0.0, 76.373, 0.0, 1.7057035e01, -2.3301759e-01, 6.5435585e-03, -7.3562749e-05,
             -1.7896001e-06, 8.4036165e-08, -1.3735879e-09, 1.0629823e-11, -3.2447087e-14),
    ),
    ThermocoupleType.J: (
        _seg(-8.095, 0.0, 0.0, 1.9528268e01, -1.2286185e00, -1.0752178e00, -5.9086933e-01,
             -1.7256713e-01, -2.8131513e-02, -2.3963370e-03, -8.3823321e-05),
        _seg(0.0, 42.919, 0.0, 1.978425e01, -2.001204e-01, 1.036969e-02, -2.549687e-04,
             3.585153e-06, -5.344285e-08, 5.099890e-10),
        _seg(42.919, 69.553, -3.11358187e03, 3.00543684e02, -9.94773230e00, 1.70276630e-01,
             -1.43033468e-03, 4.73886084e-06),
    ),
    ThermocoupleType.K: (
        _seg(-5.891, 0.0, 0.0, 2.5173462e01, -1.1662878e00, -1.0833638e00, -8.9773540e-01,
             -3.7342377e-01, -8.6632643e-02, -1.0450598e-02, -5.1920577e-04),
        _seg(0.0, 20.644, 0.0, 2.508355e01, 7.860106e-02, -2.503131e-01, 8.315270e-02,
             -1.228034e-02, 9.804036e-04, -4.413030e-05, 1.057734e-06, -1.052755e-08),
        _seg(20.644, 54.886, -1.318058e02, 4.830222e01, -1.646031e00, 5.464731e-02,
             -9.650715e-04, 8.802193e-06, -3.110810e-08),
    ),
    ThermocoupleType.N: (
        _seg(-3.990, 0.0, 0.0, 3.8436847e01, 1.1010485e00, 5.2229312e00, 7.2060525e00,
             5.8488586e00, 2.7754916e00, 7.7075166e-01, 1.1582665e-01, 7.3138868e-03),
        _seg(0.0, 20.613, 0.0, 3.86896e01, -1.08267e00, 4.70205e-02, -2.12169e-06, -1.17272e-04,
             5.39280e-06, -7.98156e-08),
        _seg(20.613, 47.513, 1.972485e01, 3.300943e01, -3.915159e-01, 9.855391e-03,
             -1.274371e-04, 7.767022e-07),
    ),
    ThermocoupleType.R: (
        _seg(-0.226, 1.923, 0.0, 1.8891380e02, -9.3835290e01, 1.3068619e02, -2.2703580e02,
             3.5145659e02, -3.8953900e02, 2.8239471e02, -1.2607281e02, 3.1353611e01,
             -3.3187769e00),
        _seg(1.923, 13.228, 1.334584505e01, 1.472644573e02, -1.844024844e01, 4.031129726e00,
             -6.249428360e-01, 6.468412046e-02, -4.458750426e-03, 1.994710149e-04,
             -5.313401790e-06, 6.481976217e-08),
        _seg(13.228, 19.739, -8.199599416e01, 1.553962042e02, -8.342197663e00, 4.279433549e-01,
             -1.191577910e-02, 1.492290091e-04),
        _seg(19.739, 21.103, 3.406177836e04, -7.023729171e03, 5.582903813e02, -1.952394635e01,
             2.560740231e-01),
    ),
    ThermocoupleType.S: (
        _seg(-0.235, 1.874, 0.0, 1.84949460e02, -8.00504062e01, 1.02237430e02, -1.52248592e02,
             1.88821343e02, -1.59085941e02, 8.23027880e01, -2.34181944e01, 2.79786260e00),
        _seg(1.874, 11.950, 1.291507177e01, 1.466298863e02, -1.534713402e01, 3.145945973e00,
             -4.163257839e-01, 3.187963771e-02, -1.291637500e-03, 2.183475087e-05,
             -1.447379511e-07, 8.211272125e-09),
        _seg(11.950, 17.536, -8.087801117e01, 1.621573104e02, -8.536869453e00, 4.719686976e-01,
             -1.441693666e-02, 2.081618890e-04),
        _seg(17.536, 18.693, 5.333875126e04, -1.235892298e04, 1.092657613e03, -4.265693686e01,
             6.247205420e-01),
    ),
    ThermocoupleType.T: (
        _seg(-5.603, 0.0, 0.0, 2.5949192e01, -2.1316967e-01, 7.9018692e-01, 4.2527777e-01,
             1.3304473e-01, 2.0241446e-02, 1.2668171e-03),
        _seg(0.0, 20.872, 0.0, 2.592800e01, -7.602961e-01, 4.637791e-02, -2.165394e-03,
             6.048144e-05, -7.293422e-07),
    ),
}

# fmt: on

# The largest deviation of each inverse from the reference function that NIST states, degC.
INVERSE_ERROR_C: dict[ThermocoupleType, float] = {
    ThermocoupleType.B: 0.03,
    ThermocoupleType.E: 0.03,
    ThermocoupleType.J: 0.05,
    ThermocoupleType.K: 0.06,
    ThermocoupleType.N: 0.04,
    ThermocoupleType.R: 0.02,
    ThermocoupleType.S: 0.02,
    ThermocoupleType.T: 0.04,
}


def _horner(coeffs: Sequence[float], x: float) -> float:
    acc = 0.0
    for c in reversed(coeffs):
        acc = acc * x + c
    return acc


# NIST states the inverse ranges in mV rounded to 1 uV (type S: -0.235 mV where E(-50 degC) is
# -0.2355); accept 1 uV beyond them, so every point of the reference function inverts.
EMF_ROUNDING_MV = 0.001


def _find(
    segments: tuple[Segment, ...], x: float, what: str, tc: ThermocoupleType, unit: str, tol: float = 0.0
) -> Segment:
    if not math.isfinite(x):
        raise OutOfRangeError(f"type {tc}: {what} {x} is not a finite number")
    for seg in segments:
        if seg.lo <= x <= seg.hi:
            return seg
    lo, hi = segments[0].lo, segments[-1].hi
    if lo - tol <= x < lo:
        return segments[0]
    if hi < x <= hi + tol:
        return segments[-1]
    raise OutOfRangeError(f"type {tc}: {what} {x:g} {unit} is outside {lo:g}..{hi:g} {unit}")


def emf_mv(tc: ThermocoupleType, t_c: float) -> float:
    """Thermocouple EMF in mV at ``t_c`` degC with the reference junction at 0 degC."""
    tc = ThermocoupleType(tc)
    seg = _find(FORWARD[tc], t_c, "temperature", tc, "degC")
    e = _horner(seg.coeffs, t_c)
    if tc is ThermocoupleType.K and t_c > 0.0:
        a0, a1, a2 = K_EXP
        e += a0 * math.exp(a1 * (t_c - a2) ** 2)
    return e


def temperature_c(tc: ThermocoupleType, e_mv: float, *, refine: bool = False) -> float:
    """Temperature in degC for an EMF in mV referenced to 0 degC (NIST inverse polynomial).

    ``refine`` adds Newton steps on the reference function, removing the inverse's own error
    (up to INVERSE_ERROR_C) so that emf_mv(temperature_c(e)) == e within 1e-6 mV.
    """
    tc = ThermocoupleType(tc)
    seg = _find(INVERSE[tc], e_mv, "EMF", tc, "mV", EMF_ROUNDING_MV)
    t = _horner(seg.coeffs, e_mv)
    if refine:
        t = _newton(tc, e_mv, t)
    return t


def _newton(tc: ThermocoupleType, e_mv: float, t: float) -> float:
    lo, hi = temperature_range_c(tc)
    h = 1e-3
    t = min(max(t, lo), hi)
    for _ in range(4):
        a, b = max(lo, t - h), min(hi, t + h)
        slope = (emf_mv(tc, b) - emf_mv(tc, a)) / (b - a)
        step = (emf_mv(tc, t) - e_mv) / slope
        t = min(max(t - step, lo), hi)
        if abs(step) < 1e-7:
            break
    return t


def compensated_c(tc: ThermocoupleType, measured_mv: float, cold_junction_c: float, *, refine: bool = False) -> float:
    """Hot-junction temperature from the measured EMF and the cold-junction temperature."""
    return temperature_c(tc, measured_mv + emf_mv(tc, cold_junction_c), refine=refine)


def temperature_range_c(tc: ThermocoupleType) -> tuple[float, float]:
    """The range of the reference function, degC."""
    segs = FORWARD[ThermocoupleType(tc)]
    return segs[0].lo, segs[-1].hi


def emf_range_mv(tc: ThermocoupleType) -> tuple[float, float]:
    """The EMF range the inverse is defined on, mV."""
    segs = INVERSE[ThermocoupleType(tc)]
    return segs[0].lo, segs[-1].hi


def linear_chip_corrected_c(
    tc: ThermocoupleType, chip_c: float, cold_junction_c: float, slope_uv_per_c: float, *, refine: bool = False
) -> float:
    """NIST temperature from a straight-line chip reading (MAX31855): the chip computed
    chip_c = cj + V / slope, so V = (chip_c - cj) * slope; then T = E^-1(V + E(cj))."""
    measured_mv = (chip_c - cold_junction_c) * slope_uv_per_c / 1000.0
    return compensated_c(tc, measured_mv, cold_junction_c, refine=refine)
