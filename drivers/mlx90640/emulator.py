"""An emulated MLX90640 behind the I2C bus interface: a consistent EEPROM and frames of a scene.

The EEPROM is generated (the datasheet example's global words, pixel and row/column refinements
from a seeded random spread), so every emulated camera is a different but valid device. Each
subpage's RAM words are produced by running the datasheet's computation backwards from the
scene's temperatures: object temperature -> compensated IR signal (inverting the extended-range
formula, with the basic formula's range choice solved by iteration) -> thermal-gradient and
emissivity terms -> offset with its Ta/Vdd dependence -> gain -> integer counts. The driver, run
forwards over these words, must read the scene back (tests/drivers/test_mlx90640.py).

I2C framing as the chip's: a write sends a 16-bit register address (big-endian) and optionally
16-bit words to write there; a read returns big-endian words from the address, auto-incrementing.
A new subpage is measured each time the host has cleared the status register's "new data" bit and
looks again (no real-time clock: the caller's polling sets the pace).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Annotated

import msgspec
import numpy as np
import numpy.typing as npt
from edge_agent.drivers.mlx90640 import compute as C
from edge_agent.drivers.mlx90640.calibration import COLS, EEPROM_START, EEPROM_WORDS, ROWS, Array, Calibration, extract

STATUS, CONTROL, I2C_CONFIG = 0x8000, 0x800D, 0x800F
CONTROL_DEFAULT = 0x1901  # chess, 18-bit ADC, 2 Hz, subpages on
VBE_COUNTS = 19442  # the datasheet example's Vbe reading

# The datasheet example's global calibration words (0x2410..0x243F) that the generator keeps.
_EXAMPLE = {
    0x2410: 0x4210, 0x2411: 0xFFBB, 0x2420: 0x79A6, 0x2421: 0x2F44, 0x2430: 0x18EF, 0x2431: 0x2FF1,
    0x2432: 0x5952, 0x2433: 0x9D68, 0x2434: 0x5454, 0x2435: 0x0994, 0x2436: 0x5354, 0x2437: 0x5354,
    0x2438: 0x2363, 0x2439: 0xE446, 0x243A: 0xFBB5, 0x243B: 0x044B, 0x243C: 0xF020, 0x243D: 0x9797,
    0x243E: 0x9797, 0x243F: 0x2889,
}  # fmt: skip


def _pack_nibbles(values: npt.NDArray[np.int64]) -> list[int]:
    v = (values & 0xF).reshape(-1, 4)
    return [int(a | b << 4 | c << 8 | d << 12) for a, b, c, d in v]


def make_eeprom(seed: int = 0) -> npt.NDArray[np.uint16]:
    """832 EEPROM words of a plausible device: the example's globals, seeded per-pixel spread."""
    rng = np.random.default_rng(seed)
    ee = np.zeros(EEPROM_WORDS, dtype=np.int64)
    ee[0x07:0x0A] = rng.integers(1, 0xFFFF, 3)  # device id
    for addr, word in _EXAMPLE.items():
        ee[addr - EEPROM_START] = word
    ee[0x12:0x18] = _pack_nibbles(rng.integers(-3, 4, ROWS))  # offset rows
    ee[0x18:0x20] = _pack_nibbles(rng.integers(-3, 4, COLS))  # offset columns
    ee[0x22:0x28] = _pack_nibbles(rng.integers(-2, 5, ROWS))  # sensitivity rows
    ee[0x28:0x30] = _pack_nibbles(rng.integers(-2, 5, COLS))  # sensitivity columns
    offset = rng.integers(-12, 13, (ROWS, COLS)) & 0x3F
    alpha = rng.integers(-10, 11, (ROWS, COLS)) & 0x3F
    kta = rng.integers(-2, 3, (ROWS, COLS)) & 0x7
    pixels = offset << 10 | alpha << 4 | kta << 1
    pixels[pixels == 0] = 1 << 4  # a word of 0 means a failed pixel
    ee[0x40:] = pixels.reshape(-1)
    return ee.astype(np.uint16)


class SceneKind(enum.StrEnum):
    MOTOR = "motor"  # a motor with its drive-end bearing at the hot spot
    CABINET = "cabinet"  # a switch cabinet with one hot terminal


class SceneOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The emulated camera's view (``driver.sim = {...}``); temperatures in degC."""

    scene: SceneKind = SceneKind.MOTOR
    ambient_c: Annotated[float, msgspec.Meta(ge=-20, le=60)] = 25.0
    body_c: Annotated[float, msgspec.Meta(ge=-20, le=150)] = 45.0  # motor housing / breakers
    hot_c: Annotated[float, msgspec.Meta(ge=-20, le=300)] = 55.0  # bearing / terminal, at start
    hot_growth_c_per_min: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0
    hot_start_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # run time before the hot spot starts to grow
    noise_c: Annotated[float, msgspec.Meta(ge=0, le=5)] = 0.1  # pixel noise (NETD is ~0.1 K at 1 Hz)
    sensor_c: float | None = None  # the camera's own temperature; default ambient + 8 (self-heating)
    vdd_v: Annotated[float, msgspec.Meta(ge=3.0, le=3.6)] = 3.3
    seed: int = 0


def _disc(r0: float, c0: float, radius: float) -> npt.NDArray[np.float64]:
    """Weights 1 inside a disc (pixel units), a soft half-pixel edge."""
    r = np.arange(ROWS)[:, None]
    c = np.arange(COLS)[None, :]
    d = np.hypot(r - r0, c - c0)
    return np.asarray(np.clip(radius + 0.5 - d, 0.0, 1.0))


def scene_temperatures(o: SceneOptions, hot_c: float) -> Array:
    """The (24, 32) apparent temperatures of the scene with its hot spot at ``hot_c``."""
    t = np.full((ROWS, COLS), o.ambient_c)
    if o.scene is SceneKind.MOTOR:
        t[7:19, 4:24] = o.body_c  # housing (rows 7-18, columns 4-23)
        t[9:17, 24:28] = o.body_c - 5.0  # shaft end shield
        t[8:18, 1:4] = o.body_c - 8.0  # fan cover
        w = _disc(12.5, 22.0, 2.0)  # drive-end bearing
    else:
        t[2:22, 3:29] = o.body_c - 10.0  # cabinet back plate
        for c0 in (5, 11, 17, 23):
            t[5:12, c0 : c0 + 4] = o.body_c  # breakers
        t[15:18, 4:28] = o.body_c - 5.0  # terminal strip
        w = _disc(16.0, 14.0, 1.0)  # the loose terminal
    return np.asarray(t * (1 - w) + hot_c * w)


class Mlx90640Emulator:
    """The chip: EEPROM, RAM, status and control registers; frames from ``scene()``."""

    def __init__(
        self, scene: Callable[[], Array], *, eeprom: npt.ArrayLike | None = None, options: SceneOptions | None = None
    ) -> None:
        self.o = options or SceneOptions()
        self.scene = scene
        self.eeprom = np.asarray(make_eeprom(self.o.seed) if eeprom is None else eeprom, dtype=np.uint16)
        self.cal: Calibration = extract(self.eeprom)
        self.ram = np.zeros(C.RAM_WORDS, dtype=np.uint16)
        self.regs = {STATUS: 0x0000, CONTROL: CONTROL_DEFAULT, I2C_CONFIG: 0x0000}
        self.pointer = 0
        self.next_subpage = 0
        self.frames = 0
        self.rng = np.random.default_rng(self.o.seed + 1)
        self.closed = False

    # -- I2C ------------------------------------------------------------------------------------
    def i2c_write(self, data: bytes) -> None:
        """Register address, then words to write (control and status only; EEPROM writes ignored)."""
        if len(data) < 2:
            return
        self.pointer = data[0] << 8 | data[1]
        for i in range(2, len(data) - 1, 2):
            addr = self.pointer + (i - 2) // 2
            if addr in self.regs:
                self.regs[addr] = data[i] << 8 | data[i + 1]

    def i2c_read(self, n: int) -> bytes:
        """Big-endian words from the register pointer."""
        if self.pointer == STATUS and not self.regs[STATUS] & 0x0008:
            self.measure()
        count = (n + 1) // 2
        return self._words(self.pointer, count).astype(">u2").tobytes()[:n]

    def _words(self, addr: int, count: int) -> npt.NDArray[np.uint16]:
        """``count`` words from ``addr``: a block of the EEPROM or RAM, else register by register."""
        for start, block in ((EEPROM_START, self.eeprom), (C.RAM_START, self.ram)):
            if start <= addr and addr + count <= start + len(block):
                return block[addr - start : addr - start + count]
        return np.array([self.regs.get(addr + k, 0) for k in range(count)], dtype=np.uint16)

    def close(self) -> None:
        self.closed = True

    # -- measurement ----------------------------------------------------------------------------
    def measure(self) -> None:
        """Measure the next subpage of the scene: write its RAM words, set "new data"."""
        sub = self.next_subpage
        self.next_subpage ^= 1
        self.write_subpage(self.scene(), sub)
        self.regs[STATUS] = (self.regs[STATUS] & ~0x0007 & 0xFFFF) | 0x0008 | sub
        self.frames += 1

    def write_subpage(self, scene_c: Array, subpage: int) -> None:
        """Invert the datasheet computation for the pixels of one subpage."""
        control = self.regs[CONTROL]
        pattern = C.Pattern((control >> 12) & 1)
        res_reg = (control >> 10) & 3
        ta = self._write_aux(res_reg, pattern)
        vdd = C.supply_voltage(self.cal, self.ram, res_reg)
        p = C.subpage_mask(pattern)
        target = scene_c + self.rng.normal(0.0, self.o.noise_c, scene_c.shape)
        counts = self._pixel_counts(target, ta, vdd, p, pattern)
        flat = self.ram[:768].reshape(ROWS, COLS)
        flat[p == subpage] = counts[p == subpage]

    def _sensor_c(self) -> float:
        return self.o.ambient_c + 8.0 if self.o.sensor_c is None else self.o.sensor_c

    def _write_aux(self, res_reg: int, pattern: C.Pattern) -> float:
        """Vdd, PTAT/Vbe, gain and compensation-pixel words; returns Ta as the driver will read it."""
        cal = self.cal
        corr = 2.0**cal.resolution_ee / 2.0**res_reg
        self._set(0x072A, round(((self.o.vdd_v - C.VDD0_V) * cal.k_vdd + cal.vdd25) / corr))
        vdd = C.supply_voltage(cal, self.ram, res_reg)
        art = ((self._sensor_c() - C.TA0_C) * cal.kt_ptat + cal.vptat25) * (1 + cal.kv_ptat * (vdd - C.VDD0_V))
        self._set(0x0700, VBE_COUNTS)
        self._set(0x0720, round(art * VBE_COUNTS / (2.0**18 - art * cal.alpha_ptat)))
        self._set(0x070A, cal.gain - 110)  # Kgain slightly above 1: exercised, not trivial
        ta = C.ambient_temperature(cal, self.ram, vdd)
        kgain = cal.gain / C.aux(self.ram, 0x070A)
        dta, dv = ta - C.TA0_C, vdd - C.VDD0_V
        scale = (1 + cal.kta_cp * dta) * (1 + cal.kv_cp * dv)
        off1 = cal.offset_cp[1] + (cal.il_chess[0] if pattern is C.Pattern.INTERLEAVED else 0.0)
        self._set(0x0708, round((24.0 + cal.offset_cp[0] * scale) / kgain))
        self._set(0x0728, round((23.0 + off1 * scale) / kgain))
        return ta

    def _set(self, addr: int, value: int) -> None:
        self.ram[addr - C.RAM_START] = min(max(int(value), -0x8000), 0x7FFF) & 0xFFFF

    def _pixel_counts(
        self, to_c: Array, ta: float, vdd: float, p: npt.NDArray[np.int64], pattern: C.Pattern
    ) -> npt.NDArray[np.uint16]:
        """Raw pixel counts that the forward computation (emissivity 1) turns into ``to_c``."""
        cal = self.cal
        alpha_c = (cal.alpha - cal.tgc * np.asarray(cal.alpha_cp)[p]) * (1 + cal.ks_ta * (ta - C.TA0_C))
        v_ir = _invert_to(cal, np.asarray(to_c, dtype=np.float64), alpha_c, (ta + C.KELVIN) ** 4)
        kgain = cal.gain / C.aux(self.ram, 0x070A)
        cp = np.array([C.aux(self.ram, 0x0708), C.aux(self.ram, 0x0728)]) * kgain
        dta, dv = ta - C.TA0_C, vdd - C.VDD0_V
        off1 = cal.offset_cp[1] + (cal.il_chess[0] if pattern is C.Pattern.INTERLEAVED else 0.0)
        scale = (1 + cal.kta_cp * dta) * (1 + cal.kv_cp * dv)
        cp_os = cp - np.array([cal.offset_cp[0], off1]) * scale
        pix_os = v_ir + cal.tgc * cp_os[p]
        pix_gain = pix_os + cal.offset * (1 + cal.kta * dta) * (1 + cal.kv * dv)
        raw = np.clip(np.rint(pix_gain / kgain), -0x8000, 0x7FFF).astype(np.int64)
        return (raw & 0xFFFF).astype(np.uint16)


def _invert_to(cal: Calibration, to_c: Array, alpha_c: Array, ta_r: float, iterations: int = 4) -> Array:
    """V_IR from To (emissivity 1): the extended-range formula solved for V_IR, its range and
    KsTo term taken from the basic formula's temperature, which depends on V_IR: iterate."""
    t4 = (to_c + C.KELVIN) ** 4 - ta_r
    basic = to_c
    v = t4 * alpha_c
    for _ in range(iterations):
        rng = np.minimum(np.searchsorted(np.asarray(cal.ct[1:]), basic, side="right"), 3)
        ks = np.asarray(cal.ks_to)[rng]
        corner = np.asarray(cal.ct)[rng]
        corr = np.asarray(cal.alpha_corr)[rng]
        v = t4 * alpha_c * corr * (1 + ks * (basic - corner))
        ks2 = cal.ks_to[1]
        sx = ks2 * np.sqrt(np.sqrt(alpha_c**3 * v + alpha_c**4 * ta_r))
        basic = np.sqrt(np.sqrt(v / (alpha_c * (1 - ks2 * C.KELVIN) + sx) + ta_r)) - C.KELVIN
    return np.asarray(v)


class LiveScene:
    """The configured scene with a hot spot that grows by ``hot_growth_c_per_min`` and can be
    switched at run time (:meth:`set_hot`), as the demo's bearing fault grows."""

    def __init__(self, o: SceneOptions, clock: Callable[[], float]) -> None:
        self.o = o
        self.clock = clock
        self.base_c = o.hot_c
        self.growth_c_per_min = o.hot_growth_c_per_min
        self.start_s = o.hot_start_s  # growth starts this long after the first frame
        self.since_s: float | None = None

    def set_hot(self, hot_c: float, growth_c_per_min: float = 0.0) -> None:
        """The hot spot is ``hot_c`` now and grows from here."""
        self.base_c, self.growth_c_per_min, self.since_s, self.start_s = hot_c, growth_c_per_min, self.clock(), 0.0

    def hot_c(self) -> float:
        """The hot spot's temperature now (at most 300 degC, the sensor's range)."""
        now = self.clock()
        if self.since_s is None:
            self.since_s = now
        grown_s = max(now - self.since_s - self.start_s, 0.0)
        return min(self.base_c + self.growth_c_per_min * grown_s / 60.0, 300.0)

    def __call__(self) -> Array:
        return scene_temperatures(self.o, self.hot_c())
