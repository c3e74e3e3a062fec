"""MAX31865 RTD-to-digital converter (SPI mode 1 or 3), for Pt100/Pt1000 in 2, 3 or 4 wires.

Registers (read at the address, write at address | 0x80): configuration 0x00, RTD ratio
0x01-0x02 (15-bit, left-justified, D0 = fault), high/low fault thresholds 0x03-0x06, fault
status 0x07. R = code / 32768 x R_ref. The driver reports the resistance
(``Linearisation.RTD``); Callendar-Van Dusen turns it into degC in ``plugins.temperature.rtd``
(drivers do no conversion math, and plugins may import edge_agent.drivers but not the other way round).

The fault thresholds are set to the codes of -200 degC and 850 degC (the CVD range), so an
open RTD (ratio near 1) and a shorted one (ratio near 0) raise the chip's threshold faults.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from edge_agent.drivers.buses.emulated import RegisterChip
from edge_agent.drivers.buses.spi import SpiBus
from edge_agent.drivers.contract import (
    Capability,
    ChannelReading,
    DriverSpec,
    DType,
    Linearisation,
    Options,
    Quality,
    ValueSpec,
    on_hardware,
)
from edge_agent.drivers.errors import CommError, DeviceIdMismatch
from edge_agent.drivers.max318xx.chip_array import SPI_CHANNELS_EXAMPLE, SpiChipArray, check_channel_names
from edge_agent.drivers.max318xx.simulator import Backend, SimFault, ThermalSim

CONFIG, RTD_MSB, HFT_MSB, LFT_MSB, FAULT_STATUS = 0x00, 0x01, 0x03, 0x05, 0x07
CFG_VBIAS, CFG_AUTO, CFG_3WIRE, CFG_FAULTCLR, CFG_50HZ = 0x80, 0x40, 0x10, 0x02, 0x01
FULL_SCALE = 32768
# IEC 60751 resistance ratios at the ends of the CVD range (-200 degC, 850 degC).
RATIO_MIN, RATIO_MAX = 0.18520080, 3.90481125

FAULT_BITS: tuple[tuple[int, str], ...] = (
    (0x80, "rtd_high_threshold"),
    (0x40, "rtd_low_threshold"),
    (0x20, "refin_high"),
    (0x10, "refin_low_force_open"),
    (0x08, "rtdin_low_force_open"),
    (0x04, "over_under_voltage"),
)


class Max31865Channel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    device: str = "/dev/spidev0.0"
    wires: Annotated[int, msgspec.Meta(ge=2, le=4)] = 3
    r0_ohm: Annotated[float, msgspec.Meta(gt=0)] = 100.0  # Pt100: 100, Pt1000: 1000
    r_ref_ohm: Annotated[float, msgspec.Meta(gt=0)] = 430.0  # the board's reference resistor
    sim: ThermalSim = msgspec.field(default_factory=ThermalSim)


class Max31865Options(Options):
    channels: Annotated[list[Max31865Channel], msgspec.Meta(min_length=1)]
    backend: Backend = Backend.HW
    mains_hz: Annotated[int, msgspec.Meta(ge=50, le=60)] = 50
    max_speed_hz: Annotated[int, msgspec.Meta(ge=10_000, le=5_000_000)] = 4_000_000


def config_byte(o: Max31865Options, ch: Max31865Channel) -> int:
    """Configuration register: bias on, automatic conversion, wiring and mains filter."""
    return CFG_VBIAS | CFG_AUTO | (CFG_3WIRE if ch.wires == 3 else 0) | (CFG_50HZ if o.mains_hz == 50 else 0)


def threshold_codes(ch: Max31865Channel) -> tuple[int, int]:
    """(low, high) 15-bit fault thresholds: the CVD range, clipped to the ADC range."""
    low = int(RATIO_MIN * ch.r0_ohm / ch.r_ref_ohm * FULL_SCALE)
    high = min(FULL_SCALE - 1, int(RATIO_MAX * ch.r0_ohm / ch.r_ref_ohm * FULL_SCALE) + 1)
    return low, high


def decode_rtd(msb: int, lsb: int) -> tuple[int, bool]:
    """(15-bit ratio code, fault flag) of the RTD registers."""
    return (msb << 8 | lsb) >> 1, bool(lsb & 1)


def fault_quality(status: int, code: int, ch: Max31865Channel) -> Quality:
    """What a fault status means for the reading: open, short or out of range."""
    if status & 0x38 or (status & 0x80 and code >= FULL_SCALE * 0.98):
        return Quality.OPEN_CIRCUIT
    if status & 0x04 or (status & 0x40 and code * ch.r_ref_ohm / FULL_SCALE < 0.1 * ch.r0_ohm):
        return Quality.SHORT_CIRCUIT
    return Quality.OUT_OF_RANGE if status & 0xC0 else Quality.GOOD


def _pt_resistance_ohm(t_c: float, r0_ohm: float) -> float:
    # Emulated physics only (IEC 60751); the conversion the plugin uses is plugins.temperature.rtd.
    a, b, c = 3.9083e-3, -5.775e-7, -4.183e-12
    r = 1.0 + a * t_c + b * t_c * t_c + (c * (t_c - 100.0) * t_c**3 if t_c < 0 else 0.0)
    return r0_ohm * r


class Max31865Chip(RegisterChip):
    """Emulated MAX31865: ratio from the driven temperature, threshold comparison against the
    threshold registers, latched fault status cleared by FAULTCLR."""

    def __init__(self, r0_ohm: float = 100.0, r_ref_ohm: float = 430.0) -> None:
        super().__init__(8)
        self.regs[HFT_MSB : HFT_MSB + 2] = b"\xff\xff"
        self.r0_ohm, self.r_ref_ohm = r0_ohm, r_ref_ohm

    def write_register(self, addr: int, value: int) -> None:
        if addr in (RTD_MSB, RTD_MSB + 1, FAULT_STATUS):
            return
        super().write_register(addr, value & ~CFG_FAULTCLR if addr == CONFIG else value)
        if addr == CONFIG and value & CFG_FAULTCLR:
            self.regs[FAULT_STATUS] = 0  # a fault still present latches again at the next conversion
            self.regs[RTD_MSB + 1] &= 0xFE

    def set_code(self, code: int, extra_status: int = 0) -> None:
        """Load a conversion result; compare with the thresholds like the chip does."""
        code = max(0, min(FULL_SCALE - 1, code))
        high = int.from_bytes(self.regs[HFT_MSB : HFT_MSB + 2], "big") >> 1
        low = int.from_bytes(self.regs[LFT_MSB : LFT_MSB + 2], "big") >> 1
        self.regs[FAULT_STATUS] |= extra_status | (0x80 if code > high else 0) | (0x40 if code < low else 0)
        self.regs[RTD_MSB : RTD_MSB + 2] = ((code << 1) | (1 if self.regs[FAULT_STATUS] else 0)).to_bytes(2, "big")

    def drive(self, hot_c: float, board_c: float, fault: SimFault) -> None:
        if fault is SimFault.OPEN_CIRCUIT:
            self.set_code(FULL_SCALE - 1)
        elif fault in (SimFault.SHORT_GND, SimFault.SHORT_VCC):
            self.set_code(3, 0x04 if fault is SimFault.SHORT_VCC else 0)
        else:
            self.set_code(round(_pt_resistance_ohm(hot_c, self.r0_ohm) / self.r_ref_ohm * FULL_SCALE))


class Max31865Driver(SpiChipArray):
    SPI_MODE = 1

    def make_sim_chip(self, channel: Max31865Channel) -> Max31865Chip:
        return Max31865Chip(channel.r0_ohm, channel.r_ref_ohm)

    def configure(self, channel: Max31865Channel, bus: SpiBus) -> None:
        """Write thresholds and configuration, clear faults, and read the configuration back."""
        low, high = threshold_codes(channel)
        bus.xfer([0x80 | HFT_MSB, *((high << 1).to_bytes(2, "big")), *((low << 1).to_bytes(2, "big"))])
        cfg = config_byte(self.o, channel)
        bus.xfer([0x80 | CONFIG, cfg | CFG_FAULTCLR])
        back = bus.xfer([CONFIG, 0])[1]
        if back != cfg:
            raise DeviceIdMismatch(
                f"MAX31865 {channel.name}: wrote config {cfg:02X}, read back {back:02X} (chip missing?)"
            )

    def read_channel(self, channel: Max31865Channel, bus: SpiBus) -> ChannelReading:
        """Read ratio and fault status in one burst; clear latched faults after reporting them."""
        raw = bus.xfer([CONFIG] + [0] * 8)[1:]
        if len(raw) != 8:
            raise CommError(f"MAX31865 {channel.name}: short transfer")
        code, flagged = decode_rtd(raw[RTD_MSB], raw[RTD_MSB + 1])
        status = raw[FAULT_STATUS]
        faults = tuple(name for bit, name in FAULT_BITS if status & bit)
        q = fault_quality(status, code, channel) if (flagged or status) else Quality.GOOD
        if status:
            bus.xfer([0x80 | CONFIG, config_byte(self.o, channel) | CFG_FAULTCLR])
        r_ohm = code * channel.r_ref_ohm / FULL_SCALE
        return ChannelReading(
            None,
            quality=q,
            faults=faults,
            linearisation=Linearisation.RTD,
            sensor=f"pt{channel.r0_ohm:g}",
            resistance_ohm=r_ohm,
            r0_ohm=channel.r0_ohm,
        )


def _check(options: Max31865Options) -> list[str]:
    errors = check_channel_names(options)
    for i, ch in enumerate(options.channels):
        if RATIO_MIN * ch.r0_ohm >= ch.r_ref_ohm:
            errors.append(f"channels[{i}].r_ref_ohm: {ch.r_ref_ohm:g} is below the RTD's lowest resistance")
    if options.mains_hz not in (50, 60):
        errors.append(f"mains_hz: must be 50 or 60, got {options.mains_hz}")
    return errors


def declared(o: Max31865Options) -> list[ValueSpec]:
    """One RTD resistance per channel (``{name}_ohm``): the temperature plugin converts it."""
    return [
        ValueSpec(f"{ch.name}_ohm", DType.FLOAT32, "ohm", f"RTD resistance, R0 {ch.r0_ohm:g} ohm") for ch in o.channels
    ]


SPEC = DriverSpec(
    name="max31865",
    factory=Max31865Driver,
    options=Max31865Options,
    provides=frozenset({Capability.TEMPERATURE, Capability.VALUES}),
    description="MAX31865 RTD converters, Pt100/Pt1000, 2/3/4-wire (SPI, one chip per channel), sim backend",
    check=_check,
    values=declared,
    example=SPI_CHANNELS_EXAMPLE,
    device_access=on_hardware("spi"),
)
