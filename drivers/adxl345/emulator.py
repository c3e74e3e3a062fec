"""An emulated ADXL345: register file, 32-entry FIFO, sample clock, and SPI/I2C transaction ports.

Samples come from a source (``source(n, rate_hz) -> (n, 3) g``, e.g. the physical model) at the
rate in BW_RATE while POWER_CTL has the measure bit set. The FIFO follows the datasheet: in stream
mode it keeps the newest 32 samples, OVERRUN (INT_SOURCE bit 0) is set when it is full and cleared
when data is read; reading DATAX0..DATAZ1 pops one entry at the end of the transaction. The SPI port
honours the read and multi-byte bits: a burst without 0x40 repeats the first register. Its
``xfer_segments`` (a spidev ``SPI_IOC_MESSAGE``) runs several transactions, CS high between them;
a run of FIFO bursts pops its entries at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from edge_agent.drivers.adxl345.registers import (
    DEVID_VALUE,
    FIFO_DEPTH,
    FIFO_ENTRIES_MASK,
    FORMAT_FULL_RES,
    INT_DATA_READY,
    INT_OVERRUN,
    INT_WATERMARK,
    POWER_MEASURE,
    SCALE_G_PER_LSB,
    SPI_MULTI,
    SPI_READ,
    Reg,
    rate_hz_of,
)
from edge_agent.drivers.buses.emulated import FakeI2CBus

Source = Callable[[int, float], Any]
_CHUNK_S = 0.125  # samples are generated in chunks this long, then released by the clock
_FIFO_BURST = bytes([SPI_READ | SPI_MULTI | Reg.DATAX0]) + bytes(6)  # one FIFO entry, zero dummy bytes
_ENTRY = 6  # bytes per FIFO entry (x, y, z as little-endian int16)
_FIFO_BYTES = FIFO_DEPTH * _ENTRY


class Adxl345Emulator:
    """Register-level model of the chip; ``spi`` and ``i2c`` are its bus ports."""

    def __init__(self, source: Source, *, clock: Callable[[], float] = time.monotonic, address: int = 0x53) -> None:
        self.source = source
        self.clock = clock
        self.address = address
        self.regs = bytearray(64)
        self.regs[Reg.DEVID] = DEVID_VALUE
        self.regs[Reg.BW_RATE] = 0x0A  # 100 Hz after reset
        # The FIFO as its bytes, oldest entry first: pushing a chunk and popping N entries are one
        # slice operation each (a deque of 6-byte entries cost a Python step per sample).
        self._fifo = bytearray()
        self.overrun = False
        self.lost_samples = 0  # ground truth for tests
        self.produced = 0
        self._t_start: float | None = None
        self._chunk = memoryview(b"")  # generated samples not yet released by the clock
        self._rate_hz = rate_hz_of(self.regs[Reg.BW_RATE])
        self.spi = _SpiPort(self)
        self._pointer = 0  # I2C register pointer
        self.i2c = FakeI2CBus({address: self})  # smbus2-like; a wrong address gets no ACK (OSError 121)

    @property
    def rate_hz(self) -> float:
        return self._rate_hz

    @property
    def fifo_entries(self) -> int:
        """Samples in the FIFO now (FIFO_STATUS without advancing the clock)."""
        return len(self._fifo) // _ENTRY

    def _counts(self, g: Any) -> bytes:
        fmt = self.regs[Reg.DATA_FORMAT]
        rng = fmt & 0x03
        if fmt & FORMAT_FULL_RES:
            scale, bits = SCALE_G_PER_LSB, 10 + rng
        else:
            scale, bits = (2 << rng) * 2 / 1024, 10
        lim = 1 << (bits - 1)
        counts = np.clip(np.rint(np.asarray(g) / scale), -lim, lim - 1).astype("<i2")
        return counts.tobytes()

    def tick(self) -> None:
        """Move the sample clock to now: push due samples into the FIFO."""
        if self._t_start is None:
            return
        due = int((self.clock() - self._t_start) * self._rate_hz) - self.produced
        while due > 0:
            if not self._chunk:
                n = max(int(self.rate_hz * _CHUNK_S), 1)
                self._chunk = memoryview(self._counts(self.source(n, self.rate_hz)))
            take = min(due, len(self._chunk) // _ENTRY)
            self._push(self._chunk[: take * _ENTRY])
            self._chunk = self._chunk[take * _ENTRY :]
            self.produced += take
            due -= take

    def _push(self, data: memoryview) -> None:
        fifo = self._fifo
        if self.regs[Reg.FIFO_CTL] & 0xC0 == 0:  # bypass: only the output registers
            fifo[:] = data[-_ENTRY:] if data else b""
            return
        self.lost_samples += max(0, (len(fifo) + len(data)) // _ENTRY - FIFO_DEPTH)
        fifo += data[-_FIFO_BYTES:]
        if len(fifo) >= _FIFO_BYTES:  # stream mode keeps the newest 32
            del fifo[: len(fifo) - _FIFO_BYTES]
            self.overrun = True

    def read_register(self, reg: int) -> int:
        if Reg.DATAX0 <= reg <= Reg.DATAZ1:
            return self._fifo[reg - Reg.DATAX0] if self._fifo else 0
        if reg == Reg.FIFO_STATUS:
            return min(self.fifo_entries, FIFO_ENTRIES_MASK)
        if reg == Reg.INT_SOURCE:
            wm = self.fifo_entries >= (self.regs[Reg.FIFO_CTL] & 0x1F)
            ready = INT_DATA_READY if self._fifo else 0
            return ready | (INT_WATERMARK if wm else 0) | (INT_OVERRUN if self.overrun else 0)
        return self.regs[reg & 0x3F]

    def write_register(self, reg: int, value: int) -> None:
        if reg in (Reg.DEVID, Reg.INT_SOURCE, Reg.FIFO_STATUS) or Reg.DATAX0 <= reg <= Reg.DATAZ1:
            return  # read-only
        self.regs[reg] = value
        if reg == Reg.BW_RATE:
            self._rate_hz = rate_hz_of(value)
        if reg == Reg.POWER_CTL:
            measuring = bool(value & POWER_MEASURE)
            if measuring and self._t_start is None:
                self._t_start, self.produced = self.clock(), 0
            elif not measuring:
                self._t_start = None
        if reg == Reg.FIFO_CTL and value & 0xC0 == 0:
            self._fifo.clear()
            self.overrun = False

    def pop_entries(self, n: int) -> bytes:
        """Pop up to ``n`` FIFO entries (fewer if it holds fewer) as 6-byte records, in one go."""
        size = min(n * _ENTRY, len(self._fifo))
        if size <= 0:
            return b""
        out = bytes(self._fifo[:size])
        del self._fifo[:size]
        self.overrun = False
        return out

    def transaction(self, reg: int, n: int, increment: bool) -> list[int]:
        """Read ``n`` registers in one bus transaction; pops the FIFO if data was read."""
        if reg == Reg.DATAX0 and n == _ENTRY and increment and self._fifo:  # one sample's burst: fast path
            entry = list(self._fifo[:_ENTRY])  # (the clock is advanced on status reads: same observable behaviour)
            del self._fifo[:_ENTRY]
            self.overrun = False
            return entry
        self.tick()
        if n == 1:  # a status read (FIFO_STATUS, INT_SOURCE on every drain): the loop below without its lists
            r = reg & 0x3F if increment else reg
            value = self.read_register(r)
            if Reg.DATAX0 <= r <= Reg.DATAZ1:
                self.pop_entries(1)
            return [value]
        regs = [(reg + i) & 0x3F if increment else reg for i in range(n)]
        out = [self.read_register(r) for r in regs]
        if any(Reg.DATAX0 <= r <= Reg.DATAZ1 for r in regs):
            self.pop_entries(1)
        return out

    def i2c_write(self, data: bytes) -> None:
        """One I2C write: the register pointer, then the bytes to write there (auto-increment)."""
        if not data:
            return
        self._pointer = data[0] & 0x3F
        if len(data) > 1:
            self.tick()
            for i, value in enumerate(data[1:]):
                self.write_register(self._pointer + i, value)

    def i2c_read(self, n: int) -> bytes:
        """One I2C read of ``n`` registers from the pointer (a FIFO burst pops one entry)."""
        return bytes(self.transaction(self._pointer, n, True))


class _SpiPort:
    """spidev-like: ``xfer2([cmd, ...])``; cmd bit 7 read, bit 6 multi-byte, bits 5:0 register."""

    def __init__(self, chip: Adxl345Emulator) -> None:
        self.chip = chip
        self.transfers = 0  # CS-framed transfers

    def xfer2(self, data: list[int]) -> list[int]:
        self.transfers += 1
        cmd, rest = data[0], data[1:]
        reg = cmd & 0x3F
        if cmd & SPI_READ:
            return [0, *self.chip.transaction(reg, len(rest), bool(cmd & SPI_MULTI))]
        self.chip.tick()
        for i, value in enumerate(rest if cmd & SPI_MULTI else rest[:1]):
            self.chip.write_register(reg + i, value)
        return [0] * len(data)

    def xfer_segments(self, segments: list[bytes], gap_us: int) -> list[bytes]:
        """Like the spidev message: each segment is its own transaction (CS high between). Leading
        FIFO bursts pop their entries at once; what the FIFO could not serve is run one by one."""
        n = len(segments)
        bursts = n if segments.count(_FIFO_BURST) == n else next(i for i, s in enumerate(segments) if s != _FIFO_BURST)
        data = self.chip.pop_entries(bursts)
        out = [b"\0" + data[i : i + _ENTRY] for i in range(0, len(data), _ENTRY)]
        self.transfers += len(out)
        out += [bytes(self.xfer2(list(seg))) for seg in segments[len(out) :]]
        return out

    def close(self) -> None:
        pass
