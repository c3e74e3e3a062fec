"""The MLX90640 driver: EEPROM calibration at open, two subpages per read, object temperatures.

Protocol (datasheet 8 and 10): 16-bit register addresses and words, big-endian. Open reads the
832 EEPROM words (one 1664-byte read) and restores the calibration, then writes the control
register (pattern, refresh rate, 18-bit ADC, subpage mode). Each read waits for the status
register's "new data" bit, reads the RAM (0x0400..0x073F, one 1664-byte read), clears the bit and
computes that subpage's pixels, until both subpages of a frame are new.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from edge_agent.drivers.buses.i2c import I2cBus, Smbus2Bus
from edge_agent.drivers.contract import Quality, ThermalFrame
from edge_agent.drivers.errors import CommError, DeviceIdMismatch, DeviceTimeout, DriverError, SensorFault
from edge_agent.drivers.mlx90640 import compute as C
from edge_agent.drivers.mlx90640.calibration import COLS, EEPROM_START, EEPROM_WORDS, ROWS, Calibration, extract
from edge_agent.drivers.mlx90640.emulator import CONTROL, STATUS, LiveScene, Mlx90640Emulator
from edge_agent.drivers.mlx90640.options import REFRESH_CODES, Backend, Mlx90640Options, ReadingPattern


class Mlx90640Driver:
    """One MLX90640 on an I2C bus; ``read()`` returns a :class:`ThermalFrame`."""

    def __init__(
        self,
        options: Mlx90640Options,
        *,
        bus: I2cBus | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.o = options
        self._given_bus = bus
        self.bus: I2cBus | None = None
        self.clock, self.sleep = clock, sleep
        self.cal: Calibration | None = None
        self.control = 0
        self.frame = np.full((ROWS, COLS), np.nan)
        self.chip: Mlx90640Emulator | None = None  # the sim backend's emulated chip
        self.scene: LiveScene | None = None

    def _name(self) -> str:
        return f"mlx90640 at 0x{self.o.address:02x} on {self.o.device}"

    def _open_bus(self) -> I2cBus:
        if self._given_bus is not None:
            return self._given_bus
        if self.o.backend is Backend.SIM:
            from edge_agent.drivers.buses.emulated import FakeI2CBus

            self.scene = LiveScene(self.o.sim, self.clock)
            self.chip = Mlx90640Emulator(self.scene, options=self.o.sim)
            return FakeI2CBus({self.o.address: self.chip})
        return Smbus2Bus(self.o.device)

    def open(self) -> None:
        self.bus = self._open_bus()
        words = self._read_words(EEPROM_START, EEPROM_WORDS)
        if not words.any() or (words == 0xFFFF).all():
            raise DeviceIdMismatch(f"{self._name()}: EEPROM reads all {int(words[0]):#06x}: not an MLX90640")
        try:
            self.cal = extract(words)
        except (ValueError, ZeroDivisionError) as exc:
            raise DeviceIdMismatch(f"{self._name()}: EEPROM calibration unusable: {exc}") from exc
        if self.cal.k_vdd == 0 or self.cal.kt_ptat == 0 or self.cal.gain == 0:
            raise DeviceIdMismatch(f"{self._name()}: EEPROM calibration has a zero kVdd, KtPTAT or gain")
        control = self._read_words(CONTROL, 1)[0]
        pattern = 1 if self.o.pattern is ReadingPattern.CHESS else 0
        self.control = (
            (int(control) & ~0x1F81 & 0xFFFF) | pattern << 12 | 2 << 10 | REFRESH_CODES[self.o.refresh_hz] << 7 | 1
        )
        self._write_word(CONTROL, self.control)

    def _read_words(self, address: int, count: int) -> Any:
        assert self.bus is not None
        try:
            raw = self.bus.write_read(self.o.address, address.to_bytes(2, "big"), 2 * count)
        except OSError as exc:
            raise CommError(f"{self._name()}: read {address:#06x}: {exc.strerror or exc}") from exc
        if len(raw) != 2 * count:
            raise CommError(f"{self._name()}: read {address:#06x}: {len(raw)} bytes, expected {2 * count}")
        return np.frombuffer(raw, dtype=">u2").astype(np.uint16)

    def _write_word(self, address: int, value: int) -> None:
        assert self.bus is not None
        try:
            self.bus.write(self.o.address, address.to_bytes(2, "big") + (value & 0xFFFF).to_bytes(2, "big"))
        except OSError as exc:
            raise CommError(f"{self._name()}: write {address:#06x}: {exc.strerror or exc}") from exc

    def _wait_subpage(self) -> int:
        """Wait for "new data" (status bit 3); return the subpage measured (bits 2:0)."""
        deadline = self.clock() + 2.5 / self.o.refresh_hz + 0.5
        while True:
            status = int(self._read_words(STATUS, 1)[0])
            if status & 0x0008:
                return status & 0x0007
            if self.clock() > deadline:
                raise DeviceTimeout(f"{self._name()}: no new subpage in {2.5 / self.o.refresh_hz + 0.5:.1f} s")
            self.sleep(0.125 / self.o.refresh_hz)

    def _subpage(self) -> C.SubpageResult:
        sub = self._wait_subpage()
        ram = self._read_words(C.RAM_START, C.RAM_WORDS)
        self._write_word(STATUS, 0x0030 & 0xFFF7)  # clear "new data", keep overwrite enabled
        if sub > 1:
            raise CommError(f"{self._name()}: status names subpage {sub}")
        assert self.cal is not None
        try:
            with np.errstate(all="ignore"):
                return C.subpage_temperatures(self.cal, ram, self.control, sub, self.o.emissivity, self.o.reflected_c)
        except (ZeroDivisionError, OverflowError, ValueError) as exc:  # a zero gain or PTAT word: garbage
            raise SensorFault(f"{self._name()}: implausible RAM words ({exc})", Quality.IMPLAUSIBLE.value) from exc

    def read(self) -> ThermalFrame:
        """Both subpages of a new frame, merged; failed pixels are NaN."""
        if self.cal is None:
            raise DriverError(f"{self._name()}: read before open")
        seen: set[int] = set()
        last: C.SubpageResult | None = None
        while len(seen) < 2:
            last = self._subpage()
            seen.add(last.subpage)
            mask = ~np.isnan(last.to_c)
            self.frame[mask] = last.to_c[mask]
        assert last is not None
        frame = np.where(self.cal.broken, np.nan, self.frame).astype(np.float32)
        return _reading(frame, last, self.o)

    def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
            self.bus = None

    def set_hot(self, hot_c: float, growth_c_per_min: float = 0.0) -> None:
        """Switch the simulated scene's hot spot (sim backend only)."""
        if self.scene is None:
            raise DriverError("mlx90640: set_hot needs backend = 'sim'")
        self.scene.set_hot(hot_c, growth_c_per_min)


def _reading(frame: Any, last: C.SubpageResult, o: Mlx90640Options) -> ThermalFrame:
    good = frame[np.isfinite(frame)]
    stats = (float(good.max()), float(good.mean()), float(good.min())) if good.size else (None, None, None)
    values = {"ta_c": last.ta_c, "vdd_v": last.vdd_v, "max_c": stats[0], "mean_c": stats[1], "min_c": stats[2]}
    tr = last.ta_c - C.TR_OFFSET_C if o.reflected_c is None else o.reflected_c
    return ThermalFrame(
        values={k: v for k, v in values.items() if v is not None},
        frame_c=frame,
        ta_c=last.ta_c,
        reflected_c=tr,
        emissivity=o.emissivity,
    )
