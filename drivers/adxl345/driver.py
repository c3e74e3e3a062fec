"""The ADXL345 driver: init, a background FIFO drain into a ring buffer, Waveform blocks on read.

At 3200 Hz the 32-entry FIFO fills in 10 ms, far faster than a plugin polls, so a background
thread (one shared by every ADXL345 of the process) drains it every ``drain_interval_s`` into a
ring buffer; ``read()`` returns everything accumulated since the previous read as one Waveform.
An overrun (the chip's FIFO filled, or the ring buffer overflowed) is reported as
``lost_samples`` > 0 on the block that contains the gap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from edge_agent.drivers.adxl345.bus import RegisterBus, open_i2c, open_spi, pop_fifo
from edge_agent.drivers.adxl345.emulator import Adxl345Emulator
from edge_agent.drivers.adxl345.options import Adxl345Options, Backend, Bus
from edge_agent.drivers.adxl345.registers import (
    DEVID_VALUE,
    FIFO_DEPTH,
    FIFO_ENTRIES_MASK,
    FIFO_MODE_BYPASS,
    FIFO_MODE_STREAM,
    FORMAT_FULL_RES,
    INT_OVERRUN,
    POWER_MEASURE,
    RANGE_CODES,
    RATE_CODES,
    SCALE_G_PER_LSB,
    Reg,
)
from edge_agent.drivers.contract import Waveform
from edge_agent.drivers.errors import DeviceIdMismatch, DriverError
from edge_agent.drivers.named_thread import NamedThread
from edge_agent.drivers.simulation.vibration_model import FaultKind, VibrationModel

AXES = ("x", "y", "z")


class _Drainer:
    """One thread drains every ADXL345 of the process: a wake-up costs more than the SPI burst
    itself on a small box (KVM/Pi timer wake-ups), so N chips share one wake-up schedule."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drivers: list[Adxl345Driver] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, drv: Adxl345Driver) -> None:
        with self._lock:
            self._drivers.append(drv)
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = NamedThread(target=self._run, args=(self._stop,), name="adxl345-drain", daemon=True)
                self._thread.start()

    def remove(self, drv: Adxl345Driver) -> None:
        with self._lock:
            if drv in self._drivers:
                self._drivers.remove(drv)
            thread, stop = (self._thread, self._stop) if not self._drivers else (None, None)
            if thread is not None and stop is not None:
                self._thread = None
                stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _run(self, stop: threading.Event) -> None:
        # time.sleep, not stop.wait(interval): a wake-up is most of a drain's cost (measured on the
        # KVM test box: 40 us per Event.wait wake-up, 27 us per sleep), and stop is seen within one
        # interval anyway.
        while not stop.is_set():
            with self._lock:
                drivers = list(self._drivers)
            time.sleep(min((d.o.drain_interval_s for d in drivers), default=0.004))
            if stop.is_set():
                return
            for drv in drivers:
                drv.drain_guarded()


_DRAINER = _Drainer()


class Adxl345Driver:
    """One ADXL345; ``bus`` may be injected (tests), else opened from the options."""

    def __init__(
        self,
        options: Adxl345Options,
        *,
        bus: RegisterBus | None = None,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        self.o = options
        self.bus = bus
        self.clock = clock
        self.background = background
        self.chip: Adxl345Emulator | None = None  # the sim backend's emulated chip
        self.model: VibrationModel | None = None
        self._lock = threading.Lock()
        self._blocks: list[Any] = []
        self._buffered = 0
        self._lost = 0
        self._overruns = 0
        self._stop = threading.Event()
        self._pause_until = 0.0
        self._error: DriverError | None = None
        self._last_drain = 0.0
        self._t_read_ms = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def _open_bus(self) -> RegisterBus:
        o = self.o
        if o.backend is Backend.SIM:
            self.model = VibrationModel(o.sim, o.rate_hz, axes=3)
            model = self.model
            self.chip = Adxl345Emulator(lambda n, _rate: model.generate(n), clock=self.clock, address=o.address)
            from edge_agent.drivers.adxl345.bus import I2cBus, SpiBus

            return SpiBus(self.chip.spi) if o.bus is Bus.SPI else I2cBus(self.chip.i2c, o.address)
        if o.bus is Bus.SPI:
            return open_spi(o.device, o.spi_speed_hz)
        return open_i2c(o.device, o.address)

    def open(self) -> None:
        """Check the device id, configure full resolution, rate and stream FIFO, start draining."""
        if self.bus is None:
            self.bus = self._open_bus()
        devid = self.bus.read(Reg.DEVID, 1)[0]
        if devid != DEVID_VALUE:
            raise DeviceIdMismatch(
                f"adxl345 on {self.o.device}: DEVID is 0x{devid:02X}, expected 0xE5 (wiring, bus, address?)"
            )
        self._configure(self.bus)
        self._last_drain = self.clock()
        self._t_read_ms = time.time_ns() // 1_000_000
        if self.background:
            self._stop.clear()
            _DRAINER.add(self)

    def _configure(self, bus: RegisterBus) -> None:
        o = self.o
        bus.write(Reg.POWER_CTL, 0x00)  # standby while configuring
        bus.write(Reg.BW_RATE, RATE_CODES[o.rate_hz])
        bus.write(Reg.DATA_FORMAT, FORMAT_FULL_RES | RANGE_CODES[o.range_g])
        bus.write(Reg.FIFO_CTL, FIFO_MODE_BYPASS)  # clears the FIFO
        bus.write(Reg.FIFO_CTL, FIFO_MODE_STREAM | o.watermark)
        bus.write(Reg.POWER_CTL, POWER_MEASURE)

    def close(self) -> None:
        """Stop draining, put the chip in standby, release the bus; safe to call twice."""
        self._stop.set()
        _DRAINER.remove(self)
        if self.bus is not None:
            try:
                self.bus.write(Reg.POWER_CTL, 0x00)
            except DriverError:
                pass
            self.bus.close()
            self.bus = None

    # -- draining ------------------------------------------------------------------------------
    def drain_guarded(self) -> None:
        """Drain once from the shared thread; a bus error is kept for the next read()."""
        if self._stop.is_set() or self.bus is None or self.clock() < self._pause_until:
            return
        try:
            self.drain()
        except DriverError as exc:  # reported by the next read(); keep trying (transient bus errors)
            self._error = exc
            self._store(np.zeros((0, 3), dtype="<i2"), 1)  # samples popped before the error are gone
            self._pause_until = self.clock() + 0.1

    def drain(self) -> int:
        """Empty the chip's FIFO into the ring buffer once; return the number of samples read."""
        assert self.bus is not None
        bus = self.bus
        now = self.clock()
        entries = bus.read(Reg.FIFO_STATUS, 1)[0] & FIFO_ENTRIES_MASK
        # The FIFO only grows between drains, so it can have overflowed only if it is full now.
        overrun = entries >= FIFO_DEPTH and bool(bus.read(Reg.INT_SOURCE, 1)[0] & INT_OVERRUN)
        raw = pop_fifo(bus, entries)  # over SPI one message of CS-separated bursts
        lost = 0
        if overrun:  # the FIFO filled: what arrived since the last drain beyond what we read is gone
            lost = max(1, int((now - self._last_drain) * self.o.rate_hz) - entries)
        self._last_drain = now
        self._store(np.frombuffer(raw, dtype="<i2").reshape(-1, 3), lost)
        return entries

    def _store(self, counts: Any, lost: int) -> None:
        cap = int(self.o.buffer_s * self.o.rate_hz)
        with self._lock:
            if lost:
                self._lost += lost
                self._overruns += 1
            if len(counts):
                self._blocks.append(counts)
                self._buffered += len(counts)
            while self._buffered > cap:  # the reader is too slow: drop the oldest block
                dropped = self._blocks.pop(0)
                self._buffered -= len(dropped)
                self._lost += len(dropped)

    def read(self) -> Waveform:
        """Everything drained since the previous read, as one block (lost_samples > 0 on a gap)."""
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if self.bus is None:
            raise DriverError("adxl345: read before open")
        if not self.background:
            self.drain()
        with self._lock:
            blocks, lost = self._blocks, self._lost
            self._blocks, self._buffered, self._lost = [], 0, 0
        counts = np.concatenate(blocks) if blocks else np.zeros((0, 3), dtype="<i2")
        t0_ms, self._t_read_ms = self._t_read_ms, time.time_ns() // 1_000_000
        return Waveform(
            samples=counts.astype(np.float32) * np.float32(SCALE_G_PER_LSB),
            rate_hz=self.o.rate_hz,
            axes=AXES,
            t0_ms=t0_ms,
            unit="g",
            lost_samples=lost,
            raw=counts,
            scale=SCALE_G_PER_LSB,
        )

    @property
    def overruns(self) -> int:
        return self._overruns

    def set_fault(self, fault: str, fault_g: float, growth_g_per_min: float = 0.0) -> None:
        """Switch the simulated machine's bearing fault (sim backend only)."""
        if self.model is None:
            raise DriverError("adxl345: set_fault needs backend = 'sim'")
        self.model.set_fault(FaultKind(fault), fault_g, growth_g_per_min)
