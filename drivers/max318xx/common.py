"""The reading type of temperature drivers (``Capability.TEMPERATURE``) and the small thermal
model their simulated backends share.

The reading types (:class:`TemperatureReading`, :class:`ChannelReading`, :class:`Linearisation`)
live in :mod:`drivers.contract` and are re-exported here. A :class:`TemperatureReading` *is* a
:class:`drivers.contract.Values` (one value per channel, degC, with quality), so every
temperature driver also provides ``Capability.VALUES``; the ``temperature`` plugin reads the
richer per-channel :class:`ChannelReading` instead.

Drivers report what the chip measures and never do feature math. Two conversions are left to
the consumer (the ``temperature`` plugin does both with ``plugins.temperature``):

- ``Linearisation.LINEAR``: the chip assumed a straight line (MAX31855: 41.276 uV/degC for
  type K); ``temperature_c`` is the chip's number, ``slope_uv_per_c`` lets a consumer recover the
  thermocouple voltage and apply the NIST inverse.
- ``Linearisation.RTD``: ``temperature_c`` is None; ``resistance_ohm`` and ``r0_ohm`` are
  given and Callendar-Van Dusen turns them into degC.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol

import msgspec
from edge_agent.drivers.buses.spi import SpiBus, SpidevBus
from edge_agent.drivers.contract import (  # the reading types live in the contract; re-exported here
    ChannelReading as ChannelReading,
)
from edge_agent.drivers.contract import Linearisation as Linearisation
from edge_agent.drivers.contract import Quality, Scalar
from edge_agent.drivers.contract import TemperatureReading as TemperatureReading
from edge_agent.drivers.errors import DriverError

# The options the generated reference (docs/reference/) shows for the one-chip-per-channel SPI drivers.
SPI_CHANNELS_EXAMPLE = {
    "channels": [
        {"name": "bearing_de", "device": "/dev/spidev0.0"},
        {"name": "bearing_nde", "device": "/dev/spidev0.1"},
    ]
}


def make_reading(channels: Mapping[str, ChannelReading], ts_ms: int | None = None) -> TemperatureReading:
    """Build a TemperatureReading with its flat Values view (``name`` degC, ``name_ohm`` for RTDs)."""
    values: dict[str, Scalar] = {}
    quality: dict[str, Quality] = {}
    for name, ch in channels.items():
        if ch.temperature_c is not None:
            values[name] = ch.temperature_c
        elif ch.resistance_ohm is not None:
            values[f"{name}_ohm"] = ch.resistance_ohm
        else:
            values[name] = math.nan
        if ch.quality is not Quality.GOOD:
            quality[name if name in values else f"{name}_ohm"] = ch.quality
    return TemperatureReading(values=values, quality=quality, ts_ms=ts_ms, channels=dict(channels))


class Backend(enum.StrEnum):
    HW = "hw"
    SIM = "sim"


class ThermalProfile(enum.StrEnum):
    AMBIENT = "ambient"  # flat at start_c, slow +-amplitude_c drift over period_s
    BEARING = "bearing"  # starts at start_c, ramps at ramp_c_per_min up to max_c, then holds


class SimFault(enum.StrEnum):
    NONE = "none"
    OPEN_CIRCUIT = "open_circuit"
    SHORT_GND = "short_gnd"
    SHORT_VCC = "short_vcc"


class ThermalSim(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The simulated process a sim chip measures (``sim = { profile = "bearing", ... }``)."""

    profile: ThermalProfile = ThermalProfile.AMBIENT
    start_c: float = 25.0
    ramp_c_per_min: float = 0.0
    max_c: float = 120.0
    amplitude_c: Annotated[float, msgspec.Meta(ge=0)] = 0.5
    period_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    noise_c: Annotated[float, msgspec.Meta(ge=0)] = 0.05
    ambient_c: float = 25.0  # the cold junction / board temperature
    seed: int = 0
    fault: SimFault = SimFault.NONE
    fault_after_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    fault_for_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # 0 = the fault stays


class ThermalModel:
    """Hot-junction and board temperature of one simulated sensor as functions of time."""

    def __init__(self, cfg: ThermalSim) -> None:
        self.cfg = cfg
        self._rng = random.Random(cfg.seed)

    def process_c(self, t_s: float) -> float:
        """The measured process temperature at ``t_s`` seconds after start, with noise."""
        c = self.cfg
        if c.profile is ThermalProfile.BEARING:
            ramp = c.start_c + c.ramp_c_per_min * t_s / 60.0
            base = min(ramp, c.max_c) if c.ramp_c_per_min >= 0 else max(ramp, c.max_c)
        else:
            base = c.start_c + c.amplitude_c * math.sin(2.0 * math.pi * t_s / c.period_s)
        return base + (self._rng.gauss(0.0, c.noise_c) if c.noise_c else 0.0)

    def board_c(self, t_s: float) -> float:
        """The cold-junction (board) temperature: ambient with a slow, small drift."""
        return self.cfg.ambient_c + 0.2 * math.sin(2.0 * math.pi * t_s / 1800.0)

    def fault(self, t_s: float) -> SimFault:
        """The injected fault active at ``t_s``."""
        c = self.cfg
        if c.fault is SimFault.NONE or t_s < c.fault_after_s:
            return SimFault.NONE
        if c.fault_for_s and t_s >= c.fault_after_s + c.fault_for_s:
            return SimFault.NONE
        return c.fault


class TcType(enum.StrEnum):
    """Thermocouple letter types (the same letters as plugins.temperature.its90)."""

    B = "B"
    E = "E"
    J = "J"
    K = "K"
    N = "N"
    R = "R"
    S = "S"
    T = "T"


def comm_fault(exc: Exception) -> ChannelReading:
    """The reading of a channel whose chip did not answer properly."""
    q = Quality(getattr(exc, "quality", Quality.COMM_ERROR))
    return ChannelReading(None, quality=q, faults=(f"comm: {exc}",))


class SimChip(SpiBus, Protocol):
    """An emulated chip that the thermal model can drive."""

    def drive(self, hot_c: float, board_c: float, fault: SimFault) -> None: ...


class SpiChipArray:
    """Base of the MAX318xx drivers: one chip per channel, each on its own chip select.

    Subclasses set SPI_MODE and implement ``make_sim_chip``, ``configure`` and ``read_channel``.
    A chip that fails to configure or answer marks only its own channel (comm_error) and is
    configured again on the next read, so one bad chip does not blind the others.
    """

    SPI_MODE = 0

    def __init__(
        self,
        options: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
        buses: Mapping[str, SpiBus] | None = None,
    ) -> None:
        self.o = options
        self._clock = clock
        self._t0 = 0.0
        self._injected = dict(buses or {})  # tests and integrators: a bus per channel name
        self.buses: dict[str, SpiBus] = {}
        self._models: dict[str, ThermalModel] = {}
        self._configured: set[str] = set()

    def make_sim_chip(self, channel: Any) -> SimChip:
        raise NotImplementedError

    def configure(self, channel: Any, bus: SpiBus) -> None:
        raise NotImplementedError

    def read_channel(self, channel: Any, bus: SpiBus) -> ChannelReading:
        raise NotImplementedError

    def open(self) -> None:
        """Open every channel's bus (hardware or emulated chip) and configure the chips."""
        self._t0 = self._clock()
        for ch in self.o.channels:
            if ch.name in self._injected:
                self.buses[ch.name] = self._injected[ch.name]
            elif self.o.backend is Backend.SIM:
                self.buses[ch.name] = self.make_sim_chip(ch)
                self._models[ch.name] = ThermalModel(ch.sim)
            else:
                self.buses[ch.name] = SpidevBus(ch.device, mode=self.SPI_MODE, max_speed_hz=self.o.max_speed_hz)
            self._try_configure(ch)

    def _try_configure(self, ch: Any) -> DriverError | None:
        try:
            self.configure(ch, self.buses[ch.name])
        except DriverError as exc:
            self._configured.discard(ch.name)
            return exc
        self._configured.add(ch.name)
        return None

    def _drive_sim(self, name: str, t_s: float) -> None:
        model = self._models.get(name)
        chip = self.buses[name]
        if model is not None and hasattr(chip, "drive"):
            chip.drive(model.process_c(t_s), model.board_c(t_s), model.fault(t_s))

    def read(self) -> TemperatureReading:
        """Read every channel; per-channel problems become that channel's quality."""
        if not self.buses:
            raise DriverError(f"{type(self).__name__}: read before open")
        t_s = self._clock() - self._t0
        out: dict[str, ChannelReading] = {}
        for ch in self.o.channels:
            self._drive_sim(ch.name, t_s)
            err = None if ch.name in self._configured else self._try_configure(ch)
            try:
                if err is not None:
                    raise err
                out[ch.name] = self.read_channel(ch, self.buses[ch.name])
            except DriverError as exc:
                out[ch.name] = comm_fault(exc)
        return make_reading(out)

    def close(self) -> None:
        """Release every bus; safe twice."""
        for bus in self.buses.values():
            bus.close()
        self.buses.clear()
        self._models.clear()
        self._configured.clear()


def check_channel_names(options: Any) -> list[str]:
    """Cross-field check shared by the multi-channel drivers: names unique and usable as keys."""
    names = [ch.name for ch in options.channels]
    errors = [
        f"channels[{i}].name: {n!r} must be letters, digits, '_' or '-' (it becomes a message key)"
        for i, n in enumerate(names)
        if not n or not n.replace("_", "").replace("-", "").isalnum()
    ]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(f"channels: duplicate names {dupes}")
    return errors
