"""MAX31855 thermocouple-to-digital converter (SPI, read-only 32-bit frame).

Frame: D31..D18 thermocouple temperature (14-bit signed, 0.25 degC), D16 fault, D15..D4
internal (cold-junction) temperature (12-bit signed, 0.0625 degC), D2 SCV, D1 SCG, D0 OC;
D17 and D3 always read 0. The chip assumes a straight line between the thermocouple voltage and
temperature (41.276 uV/degC for the K variant); the reading is marked ``Linearisation.LINEAR``
with that slope so that the consumer can apply the NIST inverse (``plugins.temperature``).

One driver instance reads several chips, one per chip select (``channels``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
from edge_agent.drivers.buses.spi import SpiBus
from edge_agent.drivers.contract import (
    Capability,
    ChannelReading,
    DriverSpec,
    DType,
    Linearisation,
    Options,
    Quality,
    TcType,
    ValueSpec,
    on_hardware,
)
from edge_agent.drivers.errors import CommError
from edge_agent.drivers.max318xx.chip_array import SPI_CHANNELS_EXAMPLE, SpiChipArray, check_channel_names
from edge_agent.drivers.max318xx.simulator import Backend, SimFault, ThermalSim

# Datasheet table 1: the Seebeck slope each MAX31855 variant assumes, uV/degC.
SLOPE_UV_PER_C: dict[TcType, float] = {
    TcType.K: 41.276,
    TcType.J: 57.953,
    TcType.N: 36.256,
    TcType.T: 52.18,
    TcType.S: 9.587,
    TcType.R: 10.506,
    TcType.E: 76.373,
}

TC_LSB_C = 0.25
CJ_LSB_C = 0.0625


class Max31855Channel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    device: str = "/dev/spidev0.0"
    sim: ThermalSim = msgspec.field(default_factory=ThermalSim)


class Max31855Options(Options):
    channels: Annotated[list[Max31855Channel], msgspec.Meta(min_length=1)]
    backend: Backend = Backend.HW
    variant: TcType = TcType.K  # MAX31855K, J, N, T, S, R or E
    max_speed_hz: Annotated[int, msgspec.Meta(ge=10_000, le=5_000_000)] = 4_000_000


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def decode_frame(frame: int) -> tuple[float, float, tuple[str, ...]]:
    """Return (thermocouple_c, internal_c, faults) of one 32-bit frame; CommError if impossible."""
    if frame == 0:
        raise CommError("MAX31855: frame is all zeros (no chip answering, MISO held low?)")
    if frame & (1 << 17) or frame & (1 << 3):
        raise CommError(f"MAX31855: reserved bits set in frame 0x{frame:08X} (no chip, or noise)")
    tc_c = _signed(frame >> 18, 14) * TC_LSB_C
    cj_c = _signed((frame >> 4) & 0xFFF, 12) * CJ_LSB_C
    faults = tuple(name for bit, name in ((0, "open_circuit"), (1, "short_gnd"), (2, "short_vcc")) if frame >> bit & 1)
    if frame & (1 << 16) and not faults:
        faults = ("fault",)
    return tc_c, cj_c, faults


def encode_frame(tc_c: float, cj_c: float, faults: Sequence[str] = ()) -> int:
    """The frame a MAX31855 sends for these values (used by the emulated chip and tests)."""
    tc = max(-8192, min(8191, round(tc_c / TC_LSB_C))) & 0x3FFF
    cj = max(-2048, min(2047, round(cj_c / CJ_LSB_C))) & 0xFFF
    bits = {"open_circuit": 1, "short_gnd": 2, "short_vcc": 4}
    fault_bits = sum(bits.get(f, 0) for f in faults)
    return tc << 18 | (1 << 16 if faults else 0) | cj << 4 | fault_bits


def _quality(faults: tuple[str, ...]) -> Quality:
    if "open_circuit" in faults:
        return Quality.OPEN_CIRCUIT
    if "short_gnd" in faults or "short_vcc" in faults:
        return Quality.SHORT_CIRCUIT
    return Quality.BAD if faults else Quality.GOOD


class Max31855Chip:
    """Emulated MAX31855: answers every transfer with its current frame (MOSI is ignored).

    The emulation is of the digital interface: ``drive`` sets the reported temperature to the
    process temperature (an ideal straight-line chip), quantised to 0.25 degC.
    """

    def __init__(self, frame: int = 0x0190_1900) -> None:
        self.frame = frame
        self.transfers = 0
        self.closed = False

    def xfer(self, data: Sequence[int]) -> list[int]:
        self.transfers += 1
        return [(self.frame >> (8 * (3 - i))) & 0xFF if i < 4 else 0 for i in range(len(data))]

    def drive(self, hot_c: float, board_c: float, fault: SimFault) -> None:
        faults = {SimFault.OPEN_CIRCUIT: ("open_circuit",), SimFault.SHORT_GND: ("short_gnd",),
                  SimFault.SHORT_VCC: ("short_vcc",)}.get(fault, ())  # fmt: skip
        self.frame = encode_frame(0.0 if faults else hot_c, board_c, faults)

    def close(self) -> None:
        self.closed = True


class Max31855Driver(SpiChipArray):
    SPI_MODE = 0

    def make_sim_chip(self, channel: Max31855Channel) -> Max31855Chip:
        return Max31855Chip()

    def configure(self, channel: Max31855Channel, bus: SpiBus) -> None:
        """Nothing to configure: the MAX31855 is read-only."""

    def read_channel(self, channel: Max31855Channel, bus: SpiBus) -> ChannelReading:
        """Read one frame and decode it into a ChannelReading."""
        raw = bus.xfer([0, 0, 0, 0])
        if len(raw) != 4:
            raise CommError(f"MAX31855 {channel.name}: short transfer ({len(raw)} bytes)")
        tc_c, cj_c, faults = decode_frame(int.from_bytes(bytes(raw), "big"))
        variant = self.o.variant
        return ChannelReading(
            None if faults else tc_c,
            cold_junction_c=cj_c,
            quality=_quality(faults),
            faults=faults,
            linearisation=Linearisation.LINEAR,
            sensor=str(variant),
            slope_uv_per_c=SLOPE_UV_PER_C[variant],
        )


def _check(options: Max31855Options) -> list[str]:
    errors = check_channel_names(options)
    if options.variant not in SLOPE_UV_PER_C:
        errors.append(f"variant: no MAX31855 variant for type {options.variant} (K, J, N, T, S, R, E)")
    return errors


def declared(o: Max31855Options) -> list[ValueSpec]:
    """One temperature per channel, named as configured."""
    return [
        ValueSpec(
            ch.name,
            DType.FLOAT32,
            "degC",
            "thermocouple temperature (chip straight line; the temperature plugin corrects it)",
        )
        for ch in o.channels
    ]


SPEC = DriverSpec(
    name="max31855",
    factory=Max31855Driver,
    options=Max31855Options,
    provides=frozenset({Capability.TEMPERATURE, Capability.VALUES}),
    description="MAX31855 thermocouple converters (SPI, one chip per channel), sim backend",
    check=_check,
    values=declared,
    example=SPI_CHANNELS_EXAMPLE,
    device_access=on_hardware("spi"),
)
