"""Per-frame MLX90640 computation (Melexis datasheet section 11.2), vectorised over the pixels.

From the RAM words of one subpage and the restored :class:`Calibration`: supply voltage, ambient
(sensor) temperature, gain, pixel offsets with their Ta/Vdd dependence, the compensation pixel
(thermal gradient), sensitivity and its Ta dependence, emissivity, and the object temperature with
the extended-range correction. Pure numpy; no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from edge_agent.drivers.mlx90640.calibration import COLS, ROWS, Array, Calibration

RAM_START = 0x0400
RAM_WORDS = 832  # 0x0400..0x073F: 768 pixels, then the auxiliary words
KELVIN = 273.15
TA0_C, VDD0_V = 25.0, 3.3
TR_OFFSET_C = 8.0  # reflected temperature = Ta - 8 when unknown (the sensor's own case, datasheet)


class Pattern(enum.IntEnum):
    """Control register bit 12: how pixels are split between the two subpages."""

    INTERLEAVED = 0  # subpage = row parity
    CHESS = 1  # subpage = (row + column) parity (the default, recommended)


def subpage_mask(pattern: Pattern) -> npt.NDArray[np.int64]:
    """(24, 32) array of each pixel's subpage (0 or 1)."""
    r = np.arange(ROWS)[:, None]
    c = np.arange(COLS)[None, :]
    if pattern is Pattern.CHESS:
        return (r + c) % 2
    return np.broadcast_to(r % 2, (ROWS, COLS)).copy()


def _s16(v: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(v, dtype=np.int64)
    return np.where(a >= 0x8000, a - 0x10000, a).astype(np.float64)


def aux(ram: npt.ArrayLike, address: int) -> float:
    """A signed auxiliary RAM word (0x0700..0x073F) from the 832 words read at 0x0400."""
    v = int(np.asarray(ram)[address - RAM_START])
    return float(v - 0x10000 if v >= 0x8000 else v)


def supply_voltage(cal: Calibration, ram: npt.ArrayLike, resolution_reg: int) -> float:
    """Vdd in volts (11.2.2.2), with the ADC resolution correction."""
    corr = 2.0**cal.resolution_ee / 2.0**resolution_reg
    return (corr * aux(ram, 0x072A) - cal.vdd25) / cal.k_vdd + VDD0_V


def ambient_temperature(cal: Calibration, ram: npt.ArrayLike, vdd_v: float) -> float:
    """Ta in degC (11.2.2.3): the PTAT sensor, ratiometric to Vbe, corrected for Vdd."""
    vptat, vbe = aux(ram, 0x0720), aux(ram, 0x0700)
    art = vptat / (vptat * cal.alpha_ptat + vbe) * 2.0**18
    return (art / (1 + cal.kv_ptat * (vdd_v - VDD0_V)) - cal.vptat25) / cal.kt_ptat + TA0_C


@dataclass(frozen=True)
class SubpageResult:
    """Object temperatures (degC, NaN outside the subpage), with the frame's Ta and Vdd."""

    to_c: Array
    ta_c: float
    vdd_v: float
    subpage: int


def _cp_offsets(cal: Calibration, ram: npt.ArrayLike, kgain: float, dta: float, dv: float, pattern: Pattern) -> Array:
    """Compensation pixel offsets of subpages 0 and 1 (11.2.2.6)."""
    sp0 = aux(ram, 0x0708) * kgain
    sp1 = aux(ram, 0x0728) * kgain
    off1 = cal.offset_cp[1] + (cal.il_chess[0] if pattern is Pattern.INTERLEAVED else 0.0)
    scale = (1 + cal.kta_cp * dta) * (1 + cal.kv_cp * dv)
    return np.array([sp0 - cal.offset_cp[0] * scale, sp1 - off1 * scale])


def compensated_ir(
    cal: Calibration,
    ram: npt.ArrayLike,
    ta_c: float,
    vdd_v: float,
    p: npt.NDArray[np.int64],
    pattern: Pattern,
    emissivity: float,
) -> Array:
    """V_IR compensated for gain, offset (Ta, Vdd), emissivity and the thermal gradient (11.2.2.5-7)."""
    kgain = cal.gain / aux(ram, 0x070A)
    pix = _s16(np.asarray(ram)[:768]).reshape(ROWS, COLS) * kgain
    dta, dv = ta_c - TA0_C, vdd_v - VDD0_V
    pix_os = pix - cal.offset * (1 + cal.kta * dta) * (1 + cal.kv * dv)
    cp = _cp_offsets(cal, ram, kgain, dta, dv, pattern)
    return pix_os / emissivity - cal.tgc * cp[p]


def compensated_alpha(cal: Calibration, ta_c: float, p: npt.NDArray[np.int64]) -> Array:
    """Sensitivity less the compensation pixel's, corrected for Ta (11.2.2.8)."""
    acp = np.asarray(cal.alpha_cp)
    return (cal.alpha - cal.tgc * acp[p]) * (1 + cal.ks_ta * (ta_c - TA0_C))


def reflected_term(ta_c: float, tr_c: float, emissivity: float) -> float:
    """Ta_r = Tr^4 - (Tr^4 - Ta^4) / emissivity, in K^4 (11.2.2.9)."""
    ta4 = (ta_c + KELVIN) ** 4
    tr4 = (tr_c + KELVIN) ** 4
    return tr4 - (tr4 - ta4) / emissivity


def basic_temperature(v_ir: Array, alpha_c: Array, ta_r: float, ks_to2: float) -> Array:
    """To in degC by the datasheet's first formula (range 0 degC .. CT3, with KsTo2 and Sx)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sx = ks_to2 * np.sqrt(np.sqrt(alpha_c**3 * v_ir + alpha_c**4 * ta_r))
        return np.asarray(np.sqrt(np.sqrt(v_ir / (alpha_c * (1 - ks_to2 * KELVIN) + sx) + ta_r)) - KELVIN)


def object_temperature(
    cal: Calibration, v_ir: Array, alpha_c: Array, ta_c: float, tr_c: float, emissivity: float
) -> Array:
    """To in degC (11.2.2.9): the basic formula picks the range, then its KsTo and corner apply."""
    ta_r = reflected_term(ta_c, tr_c, emissivity)
    basic = basic_temperature(v_ir, alpha_c, ta_r, cal.ks_to[1])
    rng = np.minimum(np.searchsorted(np.asarray(cal.ct[1:]), basic, side="right"), 3)  # 0: < 0 degC .. 3: >= CT4
    ks = np.asarray(cal.ks_to)[rng]
    corner = np.asarray(cal.ct)[rng]
    corr = np.asarray(cal.alpha_corr)[rng]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.sqrt(np.sqrt(v_ir / (alpha_c * corr * (1 + ks * (basic - corner))) + ta_r)) - KELVIN)


def subpage_temperatures(
    cal: Calibration,
    ram: npt.ArrayLike,
    control: int,
    subpage: int,
    emissivity: float = 1.0,
    tr_c: float | None = None,
) -> SubpageResult:
    """Every pixel of one subpage from its 832 RAM words; the other subpage's pixels are NaN."""
    resolution_reg = (control >> 10) & 3
    pattern = Pattern((control >> 12) & 1)
    vdd = supply_voltage(cal, ram, resolution_reg)
    ta = ambient_temperature(cal, ram, vdd)
    p = subpage_mask(pattern)
    v_ir = compensated_ir(cal, ram, ta, vdd, p, pattern, emissivity)
    alpha_c = compensated_alpha(cal, ta, p)
    to = object_temperature(cal, v_ir, alpha_c, ta, ta - TR_OFFSET_C if tr_c is None else tr_c, emissivity)
    return SubpageResult(np.where(p == subpage, to, np.nan), ta, vdd, subpage)
