"""Register access over SPI or I2C behind one small interface; hardware libraries load lazily.

The byte framing lives here: an SPI read sends ``reg | 0x80`` (``| 0x40`` for a multi-byte burst)
followed by dummy bytes; an I2C read is an SMBus block read at the register. The emulated chip
(:mod:`drivers.adxl345.emulator`) answers the same spidev/smbus2 calls, so tests cover this code.

FIFO draining: each entry is one 6-byte burst from DATAX0, and the datasheet wants chip select
high between two entries with at least 5 us before the next read (so the FIFO has popped). Over
SPI, :meth:`SpiBus.read_fifo` sends all of a drain's bursts as one message of CS-separated
segments when the port can (:class:`SegmentedSpiPort`: on hardware one ``SPI_IOC_MESSAGE(N)``
ioctl, see :class:`SpidevPort`), else one transaction per entry.
"""

from __future__ import annotations

import ctypes
import importlib
import re
import struct
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from edge_agent.drivers.adxl345.registers import SPI_MULTI, SPI_READ, Reg
from edge_agent.drivers.errors import CommError, DeviceNotFound

FIFO_ENTRY_BYTES = 6  # DATAX0..DATAZ1
FIFO_POP_US = 5  # datasheet: >= 5 us with CS high after an entry before the next FIFO read
_FIFO_BURST = bytes([SPI_READ | SPI_MULTI | Reg.DATAX0]) + bytes(FIFO_ENTRY_BYTES)


class RegisterBus(Protocol):
    def read(self, reg: int, n: int) -> bytes: ...

    def write(self, reg: int, value: int) -> None: ...

    def close(self) -> None: ...


def read_fifo_per_entry(bus: RegisterBus, entries: int) -> bytes:
    """Pop ``entries`` FIFO entries with one 6-byte register burst each."""
    return b"".join([bus.read(Reg.DATAX0, FIFO_ENTRY_BYTES) for _ in range(entries)])


@runtime_checkable
class FifoBus(RegisterBus, Protocol):
    """A register bus that pops many FIFO entries in one go (optional for a bus)."""

    def read_fifo(self, entries: int) -> bytes: ...


def pop_fifo(bus: RegisterBus, entries: int) -> bytes:
    """Pop ``entries`` FIFO entries with the bus's ``read_fifo``, or per entry if it has none."""
    return bus.read_fifo(entries) if isinstance(bus, FifoBus) else read_fifo_per_entry(bus, entries)


class SpiPort(Protocol):
    """The part of ``spidev.SpiDev`` we use."""

    def xfer2(self, data: list[int]) -> list[int]: ...

    def close(self) -> None: ...


@runtime_checkable
class SegmentedSpiPort(SpiPort, Protocol):
    """An SPI port that can also run several transfers as one message (optional for a port)."""

    def xfer_segments(self, segments: list[bytes], gap_us: int) -> list[bytes]:
        """Send each segment with CS low, CS high for >= ``gap_us`` between; the bytes read per segment."""
        ...


class I2cPort(Protocol):
    """The part of ``smbus2.SMBus`` we use."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def close(self) -> None: ...


class SpiBus:
    """ADXL345 SPI framing (mode 3) over a spidev-like port."""

    def __init__(self, port: SpiPort) -> None:
        self.port = port
        self._segments = port.xfer_segments if isinstance(port, SegmentedSpiPort) else None

    def read(self, reg: int, n: int) -> bytes:
        cmd = SPI_READ | (SPI_MULTI if n > 1 else 0) | (reg & 0x3F)
        try:
            rx = self.port.xfer2([cmd] + [0] * n)
        except OSError as exc:
            raise CommError(f"adxl345 spi: read 0x{reg:02X} failed: {exc}") from exc
        return bytes(rx[1:])

    def write(self, reg: int, value: int) -> None:
        try:
            self.port.xfer2([reg & 0x3F, value & 0xFF])
        except OSError as exc:
            raise CommError(f"adxl345 spi: write 0x{reg:02X} failed: {exc}") from exc

    def read_fifo(self, entries: int) -> bytes:
        """Pop ``entries`` FIFO entries: one message of CS-separated bursts if the port can."""
        if self._segments is None or entries <= 0:
            return read_fifo_per_entry(self, entries)
        try:
            rx = self._segments([_FIFO_BURST] * entries, FIFO_POP_US)
        except OSError as exc:
            raise CommError(f"adxl345 spi: FIFO read of {entries} entries failed: {exc}") from exc
        return b"".join([seg[1:] for seg in rx])

    def close(self) -> None:
        self.port.close()


class I2cBus:
    """ADXL345 register access over an smbus2-like port at one address."""

    def __init__(self, port: I2cPort, address: int) -> None:
        self.port = port
        self.address = address

    def read(self, reg: int, n: int) -> bytes:
        try:
            if n == 1:
                return bytes([self.port.read_byte_data(self.address, reg)])
            return bytes(self.port.read_i2c_block_data(self.address, reg, n))
        except OSError as exc:
            raise CommError(f"adxl345 i2c 0x{self.address:02X}: read 0x{reg:02X} failed: {exc}") from exc

    def write(self, reg: int, value: int) -> None:
        try:
            self.port.write_byte_data(self.address, reg, value & 0xFF)
        except OSError as exc:
            raise CommError(f"adxl345 i2c 0x{self.address:02X}: write 0x{reg:02X} failed: {exc}") from exc

    def read_fifo(self, entries: int) -> bytes:
        """Pop ``entries`` FIFO entries, one block read each (a repeated-start FIFO pop is undocumented)."""
        return read_fifo_per_entry(self, entries)

    def close(self) -> None:
        self.port.close()


# struct spi_ioc_transfer (linux/spi/spidev.h): tx_buf, rx_buf (u64), len, speed_hz (u32), delay_usecs
# (u16), bits_per_word, cs_change, tx_nbits, rx_nbits, word_delay_usecs, pad (u8): 32 bytes, the same
# layout for 32- and 64-bit userspace; native byte order like the kernel's.
SPI_IOC_TRANSFER = struct.Struct("=QQIIHBBBBBB")
_IOC_WRITE, _IOC_SIZEBITS = 1, 14  # asm-generic/ioctl.h (ARM, arm64, x86, RISC-V; not MIPS/PowerPC/SPARC)


def spi_ioc_message(n: int) -> int:
    """The ioctl number ``SPI_IOC_MESSAGE(n)`` = ``_IOW('k', 0, char[32 n])``."""
    size = n * SPI_IOC_TRANSFER.size
    if not 0 < size < 1 << _IOC_SIZEBITS:
        raise ValueError(f"spidev: {n} transfers do not fit one SPI_IOC_MESSAGE")
    return _IOC_WRITE << 30 | size << 16 | ord("k") << 8 | 0


def pack_transfers(tx_addr: int, rx_addr: int, lengths: list[int], gap_us: int) -> bytearray:
    """The ``spi_ioc_transfer`` array for consecutive segments of one tx and one rx buffer.

    Every segment waits ``gap_us`` after its last byte; all but the last set ``cs_change`` (CS goes
    high before the next segment; on the last one it would keep CS low after the message). Speed
    and word size 0: the device's settings.
    """
    msg = bytearray(SPI_IOC_TRANSFER.size * len(lengths))
    offset = 0
    for i, length in enumerate(lengths):
        cs_change = 0 if i == len(lengths) - 1 else 1
        fields = (tx_addr + offset, rx_addr + offset, length, 0, gap_us, 0, cs_change, 0, 0, 0, 0)
        SPI_IOC_TRANSFER.pack_into(msg, i * SPI_IOC_TRANSFER.size, *fields)
        offset += length
    return msg


class SpidevPort:
    """A py-spidev ``SpiDev`` plus :meth:`xfer_segments` as one ``SPI_IOC_MESSAGE(N)`` ioctl on its fd."""

    def __init__(self, dev: Any, *, ioctl: Callable[[int, int, bytearray], Any] | None = None) -> None:
        if ioctl is None:
            import fcntl  # POSIX only, like spidev itself

            ioctl = fcntl.ioctl
        self.dev = dev
        self._ioctl = ioctl

    def xfer2(self, data: list[int]) -> list[int]:
        return self.dev.xfer2(data)

    def xfer_segments(self, segments: list[bytes], gap_us: int) -> list[bytes]:
        """All segments in one system call; CS high for >= ``gap_us`` between two."""
        if not segments:
            return []
        lengths = [len(seg) for seg in segments]
        tx = ctypes.create_string_buffer(b"".join(segments), sum(lengths))
        rx = ctypes.create_string_buffer(sum(lengths))
        msg = pack_transfers(ctypes.addressof(tx), ctypes.addressof(rx), lengths, gap_us)
        self._ioctl(self.dev.fileno(), spi_ioc_message(len(segments)), msg)  # tx, rx stay alive until here
        data, out, pos = rx.raw, [], 0
        for length in lengths:
            out.append(data[pos : pos + length])
            pos += length
        return out

    def close(self) -> None:
        self.dev.close()


def _numbers(device: str, pattern: str) -> list[int]:
    m = re.search(pattern, device)
    if not m:
        raise DeviceNotFound(f"adxl345: cannot parse device {device!r} (expected {pattern})")
    return [int(g) for g in m.groups()]


def _hardware_module(name: str) -> Any:
    """Import a bus library of the `pi` extra; its absence is a device error, not a crash."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise DeviceNotFound(f"adxl345: python package {name!r} is not installed (pip install edge-agent[pi])") from exc


def open_spi(device: str, speed_hz: int) -> SpiBus:
    """Open ``/dev/spidevB.C`` in mode 3 with spidev."""
    spidev = _hardware_module("spidev")

    bus, cs = _numbers(device, r"spidev(\d+)\.(\d+)$")
    port: Any = spidev.SpiDev()
    try:
        port.open(bus, cs)
    except OSError as exc:
        raise DeviceNotFound(f"adxl345: cannot open {device}: {exc}") from exc
    port.mode = 3
    port.max_speed_hz = speed_hz
    return SpiBus(SpidevPort(port))


def open_i2c(device: str, address: int) -> I2cBus:
    """Open ``/dev/i2c-N`` with smbus2."""
    smbus2 = _hardware_module("smbus2")

    (bus,) = _numbers(device, r"i2c-(\d+)$")
    try:
        port: Any = smbus2.SMBus(bus)
    except OSError as exc:
        raise DeviceNotFound(f"adxl345: cannot open {device}: {exc}") from exc
    return I2cBus(port, address)
