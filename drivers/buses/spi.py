"""A minimal SPI bus interface and its spidev backend, shared by SPI chip drivers.

A driver talks to an :class:`SpiBus`; on hardware that is :class:`SpidevBus` (``spidev``
imported only here, when opened), in tests and ``backend = "sim"`` it is an emulated chip
(drivers/buses/emulated.py) implementing the same two methods, so the register code runs unchanged against both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from edge_agent.drivers.errors import CommError, DeviceNotFound

__all__ = ["SpiBus", "SpidevBus", "parse_device"]

_DEVICE_RE = re.compile(r"^/dev/spidev(\d+)\.(\d+)$")


class SpiBus(Protocol):
    """Full-duplex transfers with chip select held for the whole transfer."""

    def xfer(self, data: Sequence[int]) -> list[int]:
        """Send ``data`` and return as many bytes read back."""
        ...

    def close(self) -> None:
        """Release the bus; safe to call twice."""
        ...


def parse_device(device: str) -> tuple[int, int]:
    """Return (bus, chip_select) of a ``/dev/spidevB.C`` path; ValueError if malformed."""
    m = _DEVICE_RE.match(device)
    if not m:
        raise ValueError(f"SPI device must look like /dev/spidev0.0, got {device!r}")
    return int(m.group(1)), int(m.group(2))


class SpidevBus:
    """The hardware backend over the Linux spidev driver."""

    def __init__(self, device: str, *, mode: int, max_speed_hz: int) -> None:
        bus, cs = parse_device(device)
        try:
            import spidev  # only the hardware backend needs it
        except ImportError as exc:
            raise DeviceNotFound("python package 'spidev' is not installed (pip install edge-agent[pi])") from exc
        self._spi: Any = spidev.SpiDev()
        try:
            self._spi.open(bus, cs)
        except OSError as exc:
            raise DeviceNotFound(f"{device}: {exc.strerror or exc}") from exc
        self._spi.mode = mode
        self._spi.max_speed_hz = max_speed_hz
        self._device = device

    def xfer(self, data: Sequence[int]) -> list[int]:
        try:
            return list(self._spi.xfer2(list(data)))
        except OSError as exc:
            raise CommError(f"{self._device}: SPI transfer failed: {exc}") from exc

    def close(self) -> None:
        if self._spi is not None:
            self._spi.close()
            self._spi = None
