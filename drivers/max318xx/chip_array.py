"""The base of the MAX318xx drivers: one chip per channel, each on its own SPI chip select.

The reading types live in :mod:`edge_agent.drivers.contract` (``TemperatureReading``,
``ChannelReading``, ``temperature_reading``); the simulated process a sim chip measures lives in
:mod:`edge_agent.drivers.max318xx.simulator`. Drivers report what the chip measures and never do
feature math: the ``temperature`` plugin linearises (``Linearisation.LINEAR``) and converts RTD
resistances (``Linearisation.RTD``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from edge_agent.drivers.buses.spi import SpiBus, SpidevBus
from edge_agent.drivers.contract import ChannelReading, Quality, TemperatureReading, temperature_reading
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.max318xx.simulator import Backend, SimFault, ThermalModel

# The options the generated reference (docs/reference/) shows for the one-chip-per-channel SPI drivers.
SPI_CHANNELS_EXAMPLE = {
    "channels": [
        {"name": "bearing_de", "device": "/dev/spidev0.0"},
        {"name": "bearing_nde", "device": "/dev/spidev0.1"},
    ]
}


def comm_fault(exc: Exception) -> ChannelReading:
    """The reading of a channel whose chip did not answer properly."""
    q = Quality(getattr(exc, "quality", Quality.COMM_ERROR))
    return ChannelReading(None, quality=q, faults=(f"comm: {exc}",))


@runtime_checkable
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
        if model is not None and isinstance(chip, SimChip):
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
        return temperature_reading(out)

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
