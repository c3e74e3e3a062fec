"""A minimal I2C bus interface and its smbus2 backend, shared by I2C chip drivers.

A driver talks to an :class:`I2cBus`; on hardware that is :class:`Smbus2Bus` (``smbus2`` imported
only here, when opened), in tests and ``backend = "sim"`` it is
:class:`edge_agent.drivers.testing.FakeI2CBus` with an emulated chip at the address, so the
register code runs unchanged against both. Errors stay ``OSError`` (errno 121: no ACK) at this
level; the driver turns them into a :class:`~edge_agent.drivers.errors.CommError` naming the chip.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from edge_agent.drivers.errors import DeviceNotFound

_DEVICE_RE = re.compile(r"^/dev/i2c-(\d+)$")


class I2cBus(Protocol):
    """Raw I2C transactions at a 7-bit address."""

    def write(self, address: int, data: bytes) -> None:
        """One write transaction (start, address+W, data, stop)."""
        ...

    def read(self, address: int, n: int) -> bytes:
        """One read transaction of ``n`` bytes."""
        ...

    def write_read(self, address: int, data: bytes, n: int) -> bytes:
        """Write then read with a repeated start (a register read)."""
        ...

    def close(self) -> None:
        """Release the bus; safe to call twice."""
        ...


def parse_device(device: str) -> int:
    """Return the bus number of ``/dev/i2c-N``; ValueError if malformed."""
    m = _DEVICE_RE.match(device)
    if not m:
        raise ValueError(f"I2C device must look like /dev/i2c-1, got {device!r}")
    return int(m.group(1))


class Smbus2Bus:
    """The hardware backend over the Linux i2c-dev driver (``smbus2``, the ``pi`` extra)."""

    def __init__(self, device: str) -> None:
        bus = parse_device(device)
        try:
            import smbus2  # only the hardware backend needs it
        except ImportError as exc:
            raise DeviceNotFound("python package 'smbus2' is not installed (pip install edge-agent[pi])") from exc
        self._msg: Any = smbus2.i2c_msg
        try:
            self._bus: Any = smbus2.SMBus(bus)
        except OSError as exc:
            raise DeviceNotFound(f"{device}: {exc.strerror or exc}") from exc

    def write(self, address: int, data: bytes) -> None:
        self._bus.i2c_rdwr(self._msg.write(address, list(data)))

    def read(self, address: int, n: int) -> bytes:
        msg = self._msg.read(address, n)
        self._bus.i2c_rdwr(msg)
        return bytes(msg)

    def write_read(self, address: int, data: bytes, n: int) -> bytes:
        msg = self._msg.read(address, n)
        self._bus.i2c_rdwr(self._msg.write(address, list(data)), msg)
        return bytes(msg)

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None
