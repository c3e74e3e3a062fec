"""An emulated SHT3x: answers the single-shot command with a CRC-protected frame, for backend
"sim" and the tests. ``corrupt`` flips a bit of the next frame; ``busy`` makes the chip NACK a read
that comes before a measurement (as the real chip does)."""

from __future__ import annotations

import errno

from edge_agent.drivers.buses.emulated import FakeI2CBus

from edge_sht3x import MEASURE_HIGH, SOFT_RESET, Sht3xOptions, crc8


def raw_temperature(t_c: float) -> int:
    """Inverse of the datasheet formula, clamped to 16 bits."""
    return max(0, min(0xFFFF, round((t_c + 45.0) * 65535.0 / 175.0)))


def raw_humidity(rh_pct: float) -> int:
    return max(0, min(0xFFFF, round(rh_pct * 65535.0 / 100.0)))


class Sht3xChip:
    """Command-based, not a register file: ``i2c_write`` takes commands, ``i2c_read`` the result."""

    def __init__(self, temperature_c: float = 23.5, humidity_pct: float = 45.0) -> None:
        self.temperature_c = temperature_c
        self.humidity_pct = humidity_pct
        self.corrupt = False
        self.commands: list[bytes] = []
        self._result: bytes | None = None

    def i2c_write(self, data: bytes) -> None:
        self.commands.append(bytes(data))
        if data == MEASURE_HIGH:
            self._result = self.frame()
        elif data == SOFT_RESET:
            self._result = None

    def i2c_read(self, n: int) -> bytes:
        if self._result is None:  # no measurement pending: the chip does not acknowledge
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        out, self._result = self._result[:n], None
        return out

    def frame(self) -> bytes:
        t = raw_temperature(self.temperature_c).to_bytes(2, "big")
        rh = raw_humidity(self.humidity_pct).to_bytes(2, "big")
        frame = bytearray(t + bytes([crc8(t)]) + rh + bytes([crc8(rh)]))
        if self.corrupt:
            frame[4] ^= 0x01
            self.corrupt = False
        return bytes(frame)


def sim_bus(options: Sht3xOptions) -> FakeI2CBus:
    """The bus of backend "sim": one emulated chip at the configured address."""
    return FakeI2CBus({options.address: Sht3xChip(options.sim_temperature_c, options.sim_humidity_pct)})
