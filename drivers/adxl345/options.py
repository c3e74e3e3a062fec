"""Options of the ``adxl345`` driver (``driver = { type = "adxl345", ... }``)."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec
from edge_agent.drivers.adxl345.registers import RANGE_CODES, RATE_CODES
from edge_agent.drivers.contract import HEX, Options
from edge_agent.drivers.simulation.vibration_model import ModelOptions

I2C_MAX_RATE_HZ = 800.0  # 400 kHz I2C cannot drain the FIFO faster than this


class Backend(enum.StrEnum):
    HW = "hw"
    SIM = "sim"  # emulated chip (register file + FIFO) fed by drivers.vibration_model


class Bus(enum.StrEnum):
    SPI = "spi"
    I2C = "i2c"


class Adxl345Options(Options):
    backend: Backend = Backend.HW
    bus: Bus = Bus.SPI
    device: str = "/dev/spidev0.0"  # or /dev/i2c-1 with bus = "i2c"
    address: Annotated[int, msgspec.Meta(ge=0x03, le=0x77, extra=HEX)] = 0x53  # I2C only (0x53 or 0x1D)
    rate_hz: float = 3200.0  # output data rate: 3200, 1600, 800, ... 6.25
    range_g: int = 16  # 2, 4, 8 or 16 (full resolution: 3.9 mg/LSB on every range)
    spi_speed_hz: Annotated[int, msgspec.Meta(ge=100_000, le=5_000_000)] = 5_000_000
    watermark: Annotated[int, msgspec.Meta(ge=1, le=31)] = 16
    drain_interval_s: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.004
    buffer_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 10.0  # ring buffer between reads
    sim: ModelOptions = msgspec.field(default_factory=ModelOptions)


def check_options(o: Adxl345Options) -> list[str]:
    """Cross-field checks: rate and range codes, FIFO drain speed, I2C bandwidth."""
    errs = []
    if o.rate_hz not in RATE_CODES:
        errs.append(f"rate_hz: {o.rate_hz} is not an ADXL345 rate ({', '.join(f'{r:g}' for r in RATE_CODES)})")
    if o.range_g not in RANGE_CODES:
        errs.append(f"range_g: {o.range_g} is not one of 2, 4, 8, 16")
    elif o.rate_hz in RATE_CODES and o.drain_interval_s * o.rate_hz > 24:
        errs.append(
            f"drain_interval_s: {o.drain_interval_s} s lets the 32-sample FIFO overflow at {o.rate_hz:g} Hz "
            f"(use <= {24 / o.rate_hz:.4f})"
        )
    if o.backend is Backend.HW and o.bus is Bus.I2C and o.rate_hz > I2C_MAX_RATE_HZ:
        errs.append(f"rate_hz: {o.rate_hz:g} Hz needs SPI; I2C at 400 kHz sustains <= {I2C_MAX_RATE_HZ:g} Hz")
    return errs
