"""MLX90640 calibration parameters from its EEPROM, as the Melexis datasheet (section 11.1) restores them.

The EEPROM is 832 16-bit words at 0x2400..0x273F. Global parameters are packed bit fields in
0x2410..0x243F; each pixel has one word at 0x2440 + 32 x row + column (offset, sensitivity, Kta
and an outlier flag) that refines row and column averages. Everything here is vectorised over the
24 x 32 pixels (rows 0..23, columns 0..31, i.e. the datasheet's (row, column) minus one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ROWS, COLS = 24, 32
PIXELS = ROWS * COLS
EEPROM_START = 0x2400
EEPROM_WORDS = 832
Array = npt.NDArray[np.float64]


def _signed(value: npt.ArrayLike, bits: int) -> npt.NDArray[np.int64]:
    """Two's complement of a ``bits``-wide field."""
    v = np.asarray(value, dtype=np.int64)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v)


def _field(word: int, shift: int, bits: int, signed: bool = False) -> int:
    """One bit field of a word, optionally two's complement."""
    v = (word >> shift) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >= 1 << (bits - 1) else v


def _nibbles(words: npt.NDArray[np.int64], count: int) -> npt.NDArray[np.int64]:
    """Signed 4-bit values packed four per word, least significant first (OCC/ACC rows and columns)."""
    w = np.asarray(words, dtype=np.int64)
    parts = np.stack([(w >> s) & 0xF for s in (0, 4, 8, 12)], axis=1).reshape(-1)[:count]
    return _signed(parts, 4)


@dataclass(frozen=True)
class Calibration:
    """Everything the per-frame computation needs; per-pixel arrays are (24, 32)."""

    k_vdd: int
    vdd25: int
    kv_ptat: float
    kt_ptat: float
    vptat25: int
    alpha_ptat: float
    gain: int
    resolution_ee: int
    offset: Array  # pixel offset reference (counts)
    alpha: Array  # sensitivity (counts per K^4)
    kta: Array
    kv: Array
    ks_ta: float
    tgc: float
    alpha_cp: tuple[float, float]  # compensation pixel sensitivity, subpage 0 and 1
    offset_cp: tuple[int, int]
    kta_cp: float
    kv_cp: float
    il_chess: tuple[float, float, float]  # C1, C2, C3 (interleaved mode)
    ks_to: tuple[float, float, float, float]  # sensitivity slope per object range
    ct: tuple[float, float, float, float]  # corner temperatures degC: -40, 0, CT3, CT4
    alpha_corr: tuple[float, float, float, float]  # sensitivity correction per range
    broken: npt.NDArray[np.bool_]  # pixel word 0x0000: the pixel failed
    outlier: npt.NDArray[np.bool_]  # outside the calibration specification


def extract(eeprom: npt.ArrayLike) -> Calibration:
    """Restore the calibration from the 832 EEPROM words (0x2400..0x273F); ValueError if not 832."""
    ee = np.asarray(eeprom, dtype=np.int64)
    if ee.shape != (EEPROM_WORDS,) or ee.min() < 0 or ee.max() > 0xFFFF:
        raise ValueError(f"MLX90640 EEPROM: expected {EEPROM_WORDS} 16-bit words, got shape {ee.shape}")
    w = {a: int(ee[a - EEPROM_START]) for a in range(0x2410, 0x2440)}
    pix = ee[0x40:].reshape(ROWS, COLS)
    res_ee = _field(w[0x2438], 12, 2)
    kta_scale1, kta_scale2, kv_scale = _field(w[0x2438], 4, 4) + 8, _field(w[0x2438], 0, 4), _field(w[0x2438], 8, 4)
    ks_to, ct = _ranges(w)
    return Calibration(
        k_vdd=_field(w[0x2433], 8, 8, True) * 32,
        vdd25=(_field(w[0x2433], 0, 8) - 256) * 32 - 8192,
        kv_ptat=_field(w[0x2432], 10, 6, True) / 4096.0,
        kt_ptat=_field(w[0x2432], 0, 10, True) / 8.0,
        vptat25=_field(w[0x2431], 0, 16, True),
        alpha_ptat=_field(w[0x2410], 12, 4) / 4.0 + 8.0,
        gain=_field(w[0x2430], 0, 16, True),
        resolution_ee=res_ee,
        offset=_offsets(w, ee, pix),
        alpha=_alphas(w, ee, pix),
        kta=_kta(w, pix, kta_scale1, kta_scale2),
        kv=_kv(w, kv_scale),
        ks_ta=_field(w[0x243C], 8, 8, True) / 8192.0,
        tgc=_field(w[0x243C], 0, 8, True) / 32.0,
        alpha_cp=_alpha_cp(w),
        offset_cp=(_field(w[0x243A], 0, 10, True), _field(w[0x243A], 0, 10, True) + _field(w[0x243A], 10, 6, True)),
        kta_cp=_field(w[0x243B], 0, 8, True) / 2.0**kta_scale1,
        kv_cp=_field(w[0x243B], 8, 8, True) / 2.0**kv_scale,
        il_chess=(
            _field(w[0x2435], 0, 6, True) / 16.0,
            _field(w[0x2435], 6, 5, True) / 2.0,
            _field(w[0x2435], 11, 5, True) / 8.0,
        ),
        ks_to=ks_to,
        ct=ct,
        alpha_corr=_alpha_corr(ks_to, ct),
        broken=pix == 0,
        outlier=(pix & 1) == 1,
    )


def _offsets(w: dict[int, int], ee: npt.NDArray[np.int64], pix: npt.NDArray[np.int64]) -> Array:
    """Offset average + row and column corrections + the pixel's own remnant, each scaled."""
    rows = _nibbles(ee[0x12:0x18], ROWS)
    cols = _nibbles(ee[0x18:0x20], COLS)
    s_row, s_col, s_rem = _field(w[0x2410], 8, 4), _field(w[0x2410], 4, 4), _field(w[0x2410], 0, 4)
    own = _signed(pix >> 10, 6)
    total = _field(w[0x2411], 0, 16, True) + (rows[:, None] << s_row) + (cols[None, :] << s_col) + (own << s_rem)
    return total.astype(np.float64)


def _alphas(w: dict[int, int], ee: npt.NDArray[np.int64], pix: npt.NDArray[np.int64]) -> Array:
    """Sensitivity: (reference + row + column + remnant corrections) / 2^(scale + 30)."""
    rows = _nibbles(ee[0x22:0x28], ROWS)
    cols = _nibbles(ee[0x28:0x30], COLS)
    word = w[0x2420]
    scale, s_row, s_col, s_rem = _field(word, 12, 4) + 30, _field(word, 8, 4), _field(word, 4, 4), _field(word, 0, 4)
    own = _signed((pix >> 4) & 0x3F, 6)
    total = w[0x2421] + (rows[:, None] << s_row) + (cols[None, :] << s_col) + (own << s_rem)
    return total.astype(np.float64) / 2.0**scale


def _parity_table(low: int, high: int, bits: int) -> npt.NDArray[np.int64]:
    """(2, 2) table [row parity, column parity] of the four values of two words: odd rows/columns
    in the datasheet's 1-based numbering are even indices here."""
    if bits == 8:
        ro_co, re_co, ro_ce, re_ce = (
            _field(low, 8, 8, True),
            _field(low, 0, 8, True),
            _field(high, 8, 8, True),
            _field(high, 0, 8, True),
        )
    else:
        ro_co, re_co, ro_ce, re_ce = (_field(low, s, 4, True) for s in (12, 8, 4, 0))
    return np.array([[ro_co, ro_ce], [re_co, re_ce]], dtype=np.int64)


def _by_parity(table: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    r = np.arange(ROWS)[:, None] % 2
    c = np.arange(COLS)[None, :] % 2
    return table[r, c]


def _kta(w: dict[int, int], pix: npt.NDArray[np.int64], scale1: int, scale2: int) -> Array:
    rc = _by_parity(_parity_table(w[0x2436], w[0x2437], 8))
    own = _signed((pix >> 1) & 0x7, 3)
    return (rc + (own << scale2)).astype(np.float64) / 2.0**scale1


def _kv(w: dict[int, int], scale: int) -> Array:
    return _by_parity(_parity_table(w[0x2434], 0, 4)).astype(np.float64) / 2.0**scale


def _alpha_cp(w: dict[int, int]) -> tuple[float, float]:
    scale = _field(w[0x2420], 12, 4) + 27
    sp0 = _field(w[0x2439], 0, 10) / 2.0**scale
    return sp0, sp0 * (1 + _field(w[0x2439], 10, 6, True) / 128.0)


def _ranges(w: dict[int, int]) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
    """KsTo per object temperature range and the corner temperatures (-40, 0, CT3, CT4)."""
    scale = 2.0 ** (_field(w[0x243F], 0, 4) + 8)
    step = _field(w[0x243F], 12, 2) * 10
    ct3 = _field(w[0x243F], 4, 4) * step
    ct4 = ct3 + _field(w[0x243F], 8, 4) * step
    ks = (
        _field(w[0x243D], 0, 8, True) / scale,
        _field(w[0x243D], 8, 8, True) / scale,
        _field(w[0x243E], 0, 8, True) / scale,
        _field(w[0x243E], 8, 8, True) / scale,
    )
    return ks, (-40.0, 0.0, float(ct3), float(ct4))


def _alpha_corr(ks: tuple[float, ...], ct: tuple[float, ...]) -> tuple[float, float, float, float]:
    r1 = 1.0 / (1 + ks[0] * (ct[1] - ct[0]))
    r3 = 1 + ks[1] * (ct[2] - ct[1])
    return r1, 1.0, r3, r3 * (1 + ks[2] * (ct[3] - ct[2]))
