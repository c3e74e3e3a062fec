"""Register access over SPI or I2C behind one small interface; hardware libraries load lazily.

The byte framing lives here: an SPI read sends ``reg | 0x80`` (``| 0x40`` for a multi-byte burst)
followed by dummy bytes; an I2C read is an SMBus block read at the register. The emulated chip
(:mod:`drivers.adxl345.emulator`) answers the same spidev/smbus2 calls, so tests cover this code.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from drivers.adxl345.registers import SPI_MULTI, SPI_READ
from drivers.errors import CommError, DeviceNotFound


class RegisterBus(Protocol):
    def read(self, reg: int, n: int) -> bytes: ...

    def write(self, reg: int, value: int) -> None: ...

    def close(self) -> None: ...


class SpiPort(Protocol):
    """The part of ``spidev.SpiDev`` we use."""

    def xfer2(self, data: list[int]) -> list[int]: ...

    def close(self) -> None: ...


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

    def close(self) -> None:
        self.port.close()


def _numbers(device: str, pattern: str) -> list[int]:
    m = re.search(pattern, device)
    if not m:
        raise DeviceNotFound(f"adxl345: cannot parse device {device!r} (expected {pattern})")
    return [int(g) for g in m.groups()]


def open_spi(device: str, speed_hz: int) -> SpiBus:
    """Open ``/dev/spidevB.C`` in mode 3 with spidev."""
    import spidev  # the `pi` extra

    bus, cs = _numbers(device, r"spidev(\d+)\.(\d+)$")
    port: Any = spidev.SpiDev()
    try:
        port.open(bus, cs)
    except OSError as exc:
        raise DeviceNotFound(f"adxl345: cannot open {device}: {exc}") from exc
    port.mode = 3
    port.max_speed_hz = speed_hz
    return SpiBus(port)


def open_i2c(device: str, address: int) -> I2cBus:
    """Open ``/dev/i2c-N`` with smbus2."""
    import smbus2  # the `pi` extra

    (bus,) = _numbers(device, r"i2c-(\d+)$")
    try:
        port: Any = smbus2.SMBus(bus)
    except OSError as exc:
        raise DeviceNotFound(f"adxl345: cannot open {device}: {exc}") from exc
    return I2cBus(port, address)
