"""The driver error hierarchy: one root, mixed with builtins where it helps callers."""

from __future__ import annotations


class DriverError(Exception):
    """Root of every error a driver raises; the runtime turns it into a quality and an event."""

    quality: str = "device_error"


class DeviceNotFound(DriverError, FileNotFoundError):
    """The device node, bus or host does not exist."""

    quality = "comm_error"


class DeviceIdMismatch(DriverError):
    """The chip answered with an unexpected identity (wrong part or wiring)."""


class DeviceTimeout(DriverError, TimeoutError):
    """The device did not answer in time."""

    quality = "timeout"


class CommError(DriverError, ConnectionError):
    """The bus or connection failed (reset, garbage, CRC)."""

    quality = "comm_error"


class SensorFault(DriverError):
    """The sensor reports a fault (open circuit, short...); ``quality`` names it."""

    def __init__(self, message: str, quality: str = "bad") -> None:
        super().__init__(message)
        self.quality = quality
