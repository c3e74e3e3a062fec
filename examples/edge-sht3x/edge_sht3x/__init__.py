"""The `sht3x` driver for edge-agent: Sensirion SHT30/31/35 humidity and temperature over I2C.

Made with `edge-agent new driver sht3x --bus i2c`, then filled in from the datasheet (Sensirion
SHT3x-DIS): a single-shot measurement is the 16-bit command 0x2400 (high repeatability, no clock
stretching), then after at most 15 ms a 6-byte read: temperature MSB, LSB, CRC, humidity MSB,
LSB, CRC. CRC-8: polynomial 0x31, init 0xFF (0xBEEF -> 0x92). T = -45 + 175 x S_T / 65535 degC,
RH = 100 x S_RH / 65535 %RH.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Literal

from edge_agent.drivers.contract import Capability, DriverSpec, DType, Options, Values, ValueSpec, on_hardware
from edge_agent.drivers.errors import CommError, DriverError
from edge_agent.drivers.buses.i2c import I2cBus, Smbus2Bus

MEASURE_HIGH = bytes([0x24, 0x00])  # single shot, high repeatability, clock stretching disabled
MEASURE_S = 0.016  # datasheet: 15 ms max at high repeatability (+1 ms margin)
SOFT_RESET = bytes([0x30, 0xA2])


class Backend(enum.StrEnum):
    HW = "hw"  # the chip on /dev/i2c-N (needs smbus2: pip install edge-agent[pi])
    SIM = "sim"  # the emulated chip of emulator.py: no hardware


class Sht3xOptions(Options):
    """The keys of ``driver = { type = "sht3x", ... }`` in the agent's config."""

    backend: Backend = Backend.HW
    device: str = "/dev/i2c-1"
    address: Literal[0x44, 0x45] = 0x44  # ADDR pin low: 0x44, high: 0x45
    sim_temperature_c: float = 23.5  # backend "sim": what the emulated chip measures
    sim_humidity_pct: float = 45.0


def crc8(data: bytes) -> int:
    """The SHT3x checksum of one 2-byte word (CRC-8, polynomial 0x31, init 0xFF, no final XOR)."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def temperature_c(raw: int) -> float:
    """Datasheet: T[degC] = -45 + 175 x S_T / (2^16 - 1)."""
    return -45.0 + 175.0 * raw / 65535.0


def humidity_pct(raw: int) -> float:
    """Datasheet: RH[%] = 100 x S_RH / (2^16 - 1)."""
    return 100.0 * raw / 65535.0


def decode(frame: bytes) -> tuple[float, float]:
    """A 6-byte measurement to (degC, %RH); CommError naming the word whose CRC is wrong."""
    if len(frame) != 6:
        raise CommError(f"sht3x: expected 6 bytes, got {len(frame)}")
    words = []
    for name, i in (("temperature", 0), ("humidity", 3)):
        word, crc = frame[i : i + 2], frame[i + 2]
        if crc8(word) != crc:
            raise CommError(f"sht3x: {name} CRC mismatch (got 0x{crc:02X}, computed 0x{crc8(word):02X})")
        words.append(int.from_bytes(word, "big"))
    return temperature_c(words[0]), humidity_pct(words[1])


class Sht3xDriver:
    """Plain methods: the agent runs them in its I/O thread pool, never two at once."""

    def __init__(
        self, options: Sht3xOptions, *, bus: I2cBus | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.o = options
        self._injected = bus  # tests pass a FakeI2CBus
        self.sleep = sleep
        self.bus: I2cBus | None = None

    def open(self) -> None:
        """Open the bus (hardware import happens only here); DeviceNotFound when it is missing."""
        if self._injected is not None:
            self.bus = self._injected
        elif Backend(self.o.backend) is Backend.SIM:
            from edge_sht3x.emulator import sim_bus

            self.bus = sim_bus(self.o)
            self.sleep = lambda _s: None  # the emulated chip converts at once
        else:
            self.bus = Smbus2Bus(self.o.device)

    def read(self) -> Values:
        """One single-shot measurement; bus and CRC errors are CommErrors (quality comm_error)."""
        if self.bus is None:
            raise DriverError("sht3x: read before open")
        where = f"sht3x {self.o.device} 0x{self.o.address:02X}"
        try:
            self.bus.write(self.o.address, MEASURE_HIGH)
            self.sleep(MEASURE_S)
            frame = self.bus.read(self.o.address, 6)
        except OSError as exc:  # errno 121: no ACK (wiring, address, power)
            raise CommError(f"{where}: {exc}") from exc
        t, rh = decode(frame)
        return Values({"temperature_c": t, "humidity_pct": rh})

    def close(self) -> None:
        """Release the bus; safe twice and after a failed open."""
        if self.bus is not None:
            self.bus.close()
            self.bus = None


def declared(options: Sht3xOptions) -> list[ValueSpec]:
    """What one read returns (check-config and the conformance kit check against it)."""
    return [
        ValueSpec("temperature_c", DType.FLOAT32, "degC", "air temperature"),
        ValueSpec("humidity_pct", DType.FLOAT32, "%RH", "relative humidity"),
    ]


SPEC: DriverSpec[Sht3xOptions, Values] = DriverSpec(
    name="sht3x",
    factory=Sht3xDriver,
    options=Sht3xOptions,
    provides=frozenset({Capability.VALUES}),
    description="Sensirion SHT3x humidity and temperature (I2C, CRC-checked), sim backend",
    values=declared,
    device_access=on_hardware("i2c"),  # the service gets the i2c group when backend = "hw"
)
