"""MAX31856 precision thermocouple-to-digital converter (SPI mode 1 or 3).

Registers (read at the address, write at address | 0x80, reads auto-increment): CR0 0x00,
CR1 0x01, MASK 0x02, CJ thresholds 0x03-0x04, TC thresholds 0x05-0x08, CJ offset 0x09,
CJ temperature 0x0A-0x0B (14-bit signed, left-justified, 0.015625 degC), linearised thermocouple
temperature 0x0C-0x0E (19-bit signed, left-justified, 0.0078125 degC), fault status SR 0x0F.
The chip linearises all eight types itself, so readings are final degC (``Linearisation.DONE``).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec
from edge_agent.drivers.buses.emulated import RegisterChip
from edge_agent.drivers.buses.spi import SpiBus
from edge_agent.drivers.contract import (
    Capability,
    ChannelReading,
    DriverSpec,
    DType,
    Options,
    Quality,
    TcType,
    ValueSpec,
    on_hardware,
)
from edge_agent.drivers.errors import CommError, DeviceIdMismatch
from edge_agent.drivers.max318xx.chip_array import SPI_CHANNELS_EXAMPLE, SpiChipArray, check_channel_names
from edge_agent.drivers.max318xx.simulator import Backend, SimFault, ThermalSim

CR0, CR1, MASK, CJTH, LTCBH, SR = 0x00, 0x01, 0x02, 0x0A, 0x0C, 0x0F
CR0_CMODE, CR0_1SHOT, CR0_OCFAULT_SHORT_LEAD, CR0_FAULTCLR, CR0_50HZ = 0x80, 0x40, 0x10, 0x02, 0x01
TC_LSB_C = 0.0078125
CJ_LSB_C = 0.015625

TC_CODE: dict[TcType, int] = {
    TcType.B: 0, TcType.E: 1, TcType.J: 2, TcType.K: 3, TcType.N: 4, TcType.R: 5, TcType.S: 6, TcType.T: 7,
}  # fmt: skip
# Datasheet operating range of each type; outside it the chip sets the TC Range fault.
TC_RANGE_C: dict[TcType, tuple[float, float]] = {
    TcType.B: (250.0, 1820.0), TcType.E: (-200.0, 1000.0), TcType.J: (-210.0, 1200.0),
    TcType.K: (-200.0, 1372.0), TcType.N: (-200.0, 1300.0), TcType.R: (-50.0, 1768.0),
    TcType.S: (-50.0, 1768.0), TcType.T: (-200.0, 400.0),
}  # fmt: skip
AVERAGING_CODE = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}

# Fault status bits, most severe first, with the quality each one gives the reading.
SR_BITS: tuple[tuple[int, str, Quality | None], ...] = (
    (0x01, "open_circuit", Quality.OPEN_CIRCUIT),
    (0x02, "over_under_voltage", Quality.SHORT_CIRCUIT),
    (0x40, "tc_range", Quality.OUT_OF_RANGE),
    (0x80, "cj_range", Quality.OUT_OF_RANGE),
    (0x08, "tc_high", None),  # user thresholds: reported, the value stays good
    (0x04, "tc_low", None),
    (0x20, "cj_high", None),
    (0x10, "cj_low", None),
)


class ConversionMode(enum.StrEnum):
    CONTINUOUS = "continuous"  # the chip converts every ~100 ms; a read takes the latest
    ONE_SHOT = "one_shot"  # each read triggers one conversion and waits for it (lower power)


class Max31856Channel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    device: str = "/dev/spidev0.0"
    tc_type: TcType = TcType.K
    sim: ThermalSim = msgspec.field(default_factory=ThermalSim)


class Max31856Options(Options):
    channels: Annotated[list[Max31856Channel], msgspec.Meta(min_length=1)]
    backend: Backend = Backend.HW
    averaging: Annotated[int, msgspec.Meta(ge=1, le=16)] = 1  # samples averaged: 1, 2, 4, 8 or 16
    mains_hz: Annotated[int, msgspec.Meta(ge=50, le=60)] = 50  # notch filter: 50 or 60
    conversion: ConversionMode = ConversionMode.CONTINUOUS
    open_detect: bool = True  # open-circuit detection (short-lead mode, OCFAULT = 01)
    max_speed_hz: Annotated[int, msgspec.Meta(ge=10_000, le=5_000_000)] = 4_000_000


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def config_registers(o: Max31856Options, ch: Max31856Channel) -> tuple[int, int]:
    """CR0 and CR1 for these options (the values written at open)."""
    cr0 = (CR0_CMODE if o.conversion is ConversionMode.CONTINUOUS else 0) | (CR0_50HZ if o.mains_hz == 50 else 0)
    cr0 |= CR0_OCFAULT_SHORT_LEAD if o.open_detect else 0
    cr1 = AVERAGING_CODE[o.averaging] << 4 | TC_CODE[ch.tc_type]
    return cr0, cr1


def conversion_time_s(o: Max31856Options) -> float:
    """One-shot conversion time (datasheet maximum, CJ enabled) for the filter and averaging."""
    first, extra = (0.1855, 0.04) if o.mains_hz == 50 else (0.155, 0.03333)
    return first + (o.averaging - 1) * extra


def decode_temperatures(regs: list[int]) -> tuple[float, float]:
    """(thermocouple_c, cold_junction_c) from registers CJTH..LTCBL (5 bytes)."""
    cj = _signed((regs[0] << 8 | regs[1]) >> 2, 14) * CJ_LSB_C
    tc = _signed((regs[2] << 16 | regs[3] << 8 | regs[4]) >> 5, 19) * TC_LSB_C
    return tc, cj


def decode_faults(sr: int) -> tuple[tuple[str, ...], Quality]:
    """Fault names set in SR and the quality they give the reading."""
    names = tuple(name for bit, name, _ in SR_BITS if sr & bit)
    q = next((quality for bit, _, quality in SR_BITS if sr & bit and quality is not None), Quality.GOOD)
    return names, q


class Max31856Chip(RegisterChip):
    """Emulated MAX31856: a register file with power-on defaults, 1SHOT self-clearing and the
    fault status the driven temperatures imply."""

    DEFAULTS = {CR1: 0x03, MASK: 0xFF, 0x03: 0x7F, 0x04: 0xC0, 0x05: 0x7F, 0x06: 0xFF, 0x07: 0x80}

    def __init__(self) -> None:
        super().__init__(16)
        for addr, value in self.DEFAULTS.items():
            self.regs[addr] = value
        self.conversions = 0

    def write_register(self, addr: int, value: int) -> None:
        if addr >= CJTH:
            return  # temperature and status registers are read-only here
        super().write_register(addr, value)
        if addr == CR0 and value & CR0_1SHOT:
            self.conversions += 1
            self.regs[CR0] &= ~CR0_1SHOT & 0xFF  # the chip clears 1SHOT when done

    def set_temperatures(self, tc_c: float, cj_c: float) -> None:
        """Load the temperature registers as a finished conversion would."""
        tc = max(-(1 << 18), min((1 << 18) - 1, round(tc_c / TC_LSB_C))) & 0x7FFFF
        cj = max(-(1 << 13), min((1 << 13) - 1, round(cj_c / CJ_LSB_C))) & 0x3FFF
        self.regs[CJTH : CJTH + 2] = (cj << 2).to_bytes(2, "big")
        self.regs[LTCBH : LTCBH + 3] = (tc << 5).to_bytes(3, "big")

    def drive(self, hot_c: float, board_c: float, fault: SimFault) -> None:
        tc_type = next((t for t, code in TC_CODE.items() if code == self.regs[CR1] & 0x0F), TcType.K)
        lo, hi = TC_RANGE_C[tc_type]
        sr = 0x01 if fault is SimFault.OPEN_CIRCUIT and self.regs[CR0] & 0x30 else 0
        sr |= 0x02 if fault in (SimFault.SHORT_GND, SimFault.SHORT_VCC) else 0
        sr |= 0x40 if not lo <= hot_c <= hi else 0
        self.set_temperatures(hot_c if not sr & 0x03 else 2047.0, board_c)
        self.regs[SR] = sr


class Max31856Driver(SpiChipArray):
    SPI_MODE = 1

    def __init__(
        self, options: Any, *, clock: Callable[[], float] = time.monotonic, buses: Mapping[str, SpiBus] | None = None
    ) -> None:
        super().__init__(options, clock=clock, buses=buses)
        self.sleep: Callable[[float], None] = time.sleep if options.backend is Backend.HW else (lambda _s: None)

    def make_sim_chip(self, channel: Max31856Channel) -> Max31856Chip:
        return Max31856Chip()

    def configure(self, channel: Max31856Channel, bus: SpiBus) -> None:
        """Write CR0/CR1 and read them back: a mismatch means no (or a different) chip."""
        cr0, cr1 = config_registers(self.o, channel)
        bus.xfer([0x80 | CR0, cr0, cr1])
        back = bus.xfer([CR0, 0, 0])[1:]
        if back != [cr0, cr1]:
            raise DeviceIdMismatch(
                f"MAX31856 {channel.name}: wrote CR0/CR1 {cr0:02X}/{cr1:02X}, read back "
                f"{back[0]:02X}/{back[1]:02X} (chip missing or SPI mode not 1/3?)"
            )

    def read_channel(self, channel: Max31856Channel, bus: SpiBus) -> ChannelReading:
        """(One-shot: trigger and wait, then) read CJ, TC and SR in one burst."""
        if self.o.conversion is ConversionMode.ONE_SHOT:
            cr0, _ = config_registers(self.o, channel)
            bus.xfer([0x80 | CR0, cr0 | CR0_1SHOT])
            self.sleep(conversion_time_s(self.o))
        raw = bus.xfer([CJTH] + [0] * 6)[1:]
        if len(raw) != 6:
            raise CommError(f"MAX31856 {channel.name}: short transfer")
        tc_c, cj_c = decode_temperatures(raw[:5])
        faults, q = decode_faults(raw[5])
        return ChannelReading(
            tc_c if q is Quality.GOOD else None,
            cold_junction_c=cj_c,
            quality=q,
            faults=faults,
            sensor=str(channel.tc_type),
        )


def _check(options: Max31856Options) -> list[str]:
    errors = check_channel_names(options)
    if options.averaging not in AVERAGING_CODE:
        errors.append(f"averaging: must be 1, 2, 4, 8 or 16, got {options.averaging}")
    if options.mains_hz not in (50, 60):
        errors.append(f"mains_hz: must be 50 or 60, got {options.mains_hz}")
    return errors


def declared(o: Max31856Options) -> list[ValueSpec]:
    """One temperature per channel, named as configured."""
    return [ValueSpec(ch.name, DType.FLOAT32, "degC", "thermocouple temperature") for ch in o.channels]


SPEC = DriverSpec(
    name="max31856",
    factory=Max31856Driver,
    options=Max31856Options,
    provides=frozenset({Capability.TEMPERATURE, Capability.VALUES}),
    description="MAX31856 thermocouple converters, all eight types (SPI, one chip per channel), sim backend",
    check=_check,
    values=declared,
    example=SPI_CHANNELS_EXAMPLE,
    device_access=on_hardware("spi"),
)
