"""Serial line instruments: RS-232/RS-485 ASCII thermometers and transmitters over pyserial.

A configurable line protocol: send ``request`` (nothing for instruments that stream), read
lines (CR, LF or CRLF) until one matches ``response_regex``; each named group is one channel,
its number in ``unit`` is converted to degC (after ``scale`` and ``offset``). Lines that do not
match (garbage, echoes, banners) are skipped; no match before ``timeout_s`` raises
DeviceTimeout. ``backend = "sim"`` answers from an in-process instrument emulator driven by the
thermal model, so the same parsing code runs with no port.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Callable
from typing import Annotated, Any, Protocol

import msgspec
from edge_agent.drivers.contract import (
    Capability,
    ChannelReading,
    DriverSpec,
    DType,
    Options,
    TemperatureReading,
    ValueSpec,
    on_hardware,
    temperature_reading,
)
from edge_agent.drivers.errors import CommError, DeviceNotFound, DeviceTimeout, DriverError, SensorFault
from edge_agent.drivers.max318xx.simulator import Backend, SimFault, ThermalModel, ThermalSim

_EOL = re.compile(rb"\r\n|\r|\n")


class Unit(enum.StrEnum):
    C = "C"
    F = "F"
    K = "K"


class Parity(enum.StrEnum):
    NONE = "N"
    EVEN = "E"
    ODD = "O"


class SerialLineOptions(Options):
    backend: Backend = Backend.HW
    port: str = "/dev/ttyUSB0"
    baudrate: Annotated[int, msgspec.Meta(ge=50, le=4_000_000)] = 9600
    bytesize: Annotated[int, msgspec.Meta(ge=5, le=8)] = 8
    parity: Parity = Parity.NONE
    stopbits: Annotated[int, msgspec.Meta(ge=1, le=2)] = 1
    request: str = ""  # e.g. "#01\r"; empty = the instrument streams lines by itself
    response_regex: str = r"(?P<t>[-+]?\d+(?:\.\d+)?)"  # one named group per channel
    unit: Unit = Unit.C  # unit of the numbers the instrument sends
    scale: float = 1.0  # value = number * scale + offset, then unit -> degC
    offset: float = 0.0
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    max_line_bytes: Annotated[int, msgspec.Meta(ge=16, le=65536)] = 256
    encoding: str = "ascii"
    sim: ThermalSim = msgspec.field(default_factory=ThermalSim)
    sim_response: str = "{t:+.2f}\r\n"  # sim: format string, one field per regex group


def to_celsius(value: float, unit: Unit) -> float:
    """Convert a temperature in ``unit`` to degC."""
    if unit is Unit.F:
        return (value - 32.0) * 5.0 / 9.0
    if unit is Unit.K:
        return value - 273.15
    return value


class Port(Protocol):
    """The part of pyserial's Serial that the driver uses."""

    def write(self, data: bytes) -> Any: ...

    def read(self, size: int = 1) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


class InstrumentEmulator:
    """A line instrument: answers each request line with ``template`` filled from ``source``.

    Used by the sim backend and, in tests, behind a pty. ``mode`` scripts misbehaviour: "ok",
    "garbage" (a noise line first), "partial" (the answer in two chunks), "silent" (no answer).
    """

    def __init__(self, template: str, source: Callable[[], dict[str, float]], request: str = "") -> None:
        self.template = template
        self.source = source
        self.request = request.strip()
        self.mode = "ok"
        self.requests = 0

    def answer(self, line: bytes) -> list[bytes]:
        """Chunks to send back for one received line (empty when silent or not addressed)."""
        if self.request and line.decode(errors="replace").strip() != self.request:
            return []
        self.requests += 1
        if self.mode == "silent":
            return []
        reply = self.template.format(**self.source()).encode()
        if self.mode == "garbage":
            return [b"\x00\xffERR?#\r\n", reply]
        if self.mode == "partial":
            half = len(reply) // 2
            return [reply[:half], reply[half:]]
        return [reply]


class SimPort:
    """An in-process port answering from an InstrumentEmulator (the ``sim`` backend)."""

    def __init__(self, emulator: InstrumentEmulator) -> None:
        self.emulator = emulator
        self._rx = b""
        self._streaming = not emulator.request

    def write(self, data: bytes) -> int:
        for line in _EOL.split(data):
            if line:
                self._rx += b"".join(self.emulator.answer(line))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if self._streaming and not self._rx:
            self._rx = b"".join(self.emulator.answer(b""))
        out, self._rx = self._rx[:size], self._rx[size:]
        return out

    def reset_input_buffer(self) -> None:
        self._rx = b""

    def close(self) -> None:
        self._rx = b""


class SerialLineDriver:
    """Request/response (or streaming) line protocol over one serial port."""

    def __init__(self, options: SerialLineOptions, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.o = options
        self._regex = re.compile(options.response_regex)
        self._clock = clock
        self.port: Port | None = None
        self._port_errors: tuple[type[BaseException], ...] = (OSError,)
        self.garbage_lines = 0  # lines that did not match, since open

    def _open_hw(self) -> Port:
        try:
            import termios  # pyserial's POSIX backend lets termios.error through

            import serial  # pyserial; imported only by the hardware backend
        except ImportError as exc:
            raise DeviceNotFound("python package 'pyserial' is not installed") from exc
        self._port_errors = (OSError, serial.SerialException, termios.error)
        try:
            port: Port = serial.Serial(
                self.o.port, self.o.baudrate, bytesize=self.o.bytesize, parity=str(self.o.parity),
                stopbits=self.o.stopbits, timeout=0.05, write_timeout=self.o.timeout_s,
            )  # fmt: skip
        except serial.SerialException as exc:
            raise DeviceNotFound(f"{self.o.port}: {exc}") from exc
        return port

    def _open_sim(self) -> Port:
        model = ThermalModel(self.o.sim)
        t0 = self._clock()
        groups = list(self._regex.groupindex)

        def source() -> dict[str, float]:
            t = self._clock() - t0
            base = model.process_c(t)
            return {g: base + 0.5 * i for i, g in enumerate(groups)}

        emulator = InstrumentEmulator(self.o.sim_response, source, self.o.request)
        self.emulator = emulator
        self._sim_model, self._sim_t0 = model, t0
        return SimPort(emulator)

    def open(self) -> None:
        """Open the port (or the emulated instrument)."""
        self.port = self._open_sim() if self.o.backend is Backend.SIM else self._open_hw()
        self.garbage_lines = 0

    def _sim_fault(self) -> bool:
        model = getattr(self, "_sim_model", None)
        return model is not None and model.fault(self._clock() - self._sim_t0) is not SimFault.NONE

    def _read_line_match(self, port: Port) -> re.Match[str]:
        deadline = self._clock() + self.o.timeout_s
        buf = b""
        while self._clock() < deadline:
            buf += port.read(64)
            *lines, buf = _EOL.split(buf)
            for raw in lines:
                m = self._regex.search(raw.decode(self.o.encoding, errors="replace"))
                if m:
                    return m
                if raw.strip():
                    self.garbage_lines += 1
            if len(buf) > self.o.max_line_bytes:
                self.garbage_lines += 1
                buf = b""
        raise DeviceTimeout(f"{self.o.port}: no matching line within {self.o.timeout_s:g} s")

    def _convert(self, text: str | None, name: str) -> float:
        if text is None:
            raise CommError(f"{self.o.port}: group {name!r} did not match")
        try:
            number = float(text)
        except ValueError as exc:  # the line arrived and matched: the instrument reports a fault ("----", "OPEN")
            raise SensorFault(f"{self.o.port}: the instrument sent {name!r} = {text!r}, not a number") from exc
        return to_celsius(number * self.o.scale + self.o.offset, self.o.unit)

    def read(self) -> TemperatureReading:
        """Send the request and parse the first matching response line."""
        if self.port is None:
            raise DriverError("serial_line: read before open")
        if self._sim_fault():
            raise DeviceTimeout(f"{self.o.port}: (sim) instrument does not answer")
        try:
            self.port.reset_input_buffer()
            if self.o.request:
                self.port.write(self.o.request.encode(self.o.encoding))
            m = self._read_line_match(self.port)
        except DriverError:
            raise  # DeviceTimeout is a TimeoutError, hence an OSError: keep it as it is
        except self._port_errors as exc:  # an unplugged adapter, a closed descriptor...
            raise CommError(f"{self.o.port}: {exc}") from exc
        channels = {
            name: ChannelReading(self._convert(text, name), sensor="serial") for name, text in m.groupdict().items()
        }
        return temperature_reading(channels)

    def close(self) -> None:
        """Close the port; safe twice."""
        if self.port is not None:
            self.port.close()
            self.port = None


def _check(options: SerialLineOptions) -> list[str]:
    try:
        rx = re.compile(options.response_regex)
    except re.error as exc:
        return [f"response_regex: invalid regular expression: {exc}"]
    if not rx.groupindex:
        return ["response_regex: needs at least one named group, e.g. (?P<t>[-+]?\\d+\\.\\d+)"]
    errors = [f"response_regex: group name {g!r} must not contain '.'" for g in rx.groupindex if "." in g]
    if options.backend is Backend.SIM:
        try:
            options.sim_response.format(**dict.fromkeys(rx.groupindex, 0.0))
        except (KeyError, ValueError, IndexError) as exc:
            errors.append(f"sim_response: does not format with the regex groups: {exc!r}")
    return errors


def declared(o: SerialLineOptions) -> list[ValueSpec]:
    """One temperature per named group of ``response_regex`` (none when the regex is invalid)."""
    try:
        groups = list(re.compile(o.response_regex).groupindex)
    except re.error:
        return []
    return [ValueSpec(g, DType.FLOAT32, "degC", f"instrument reading (sent in {o.unit})") for g in groups]


SPEC = DriverSpec(
    name="serial_line",
    factory=SerialLineDriver,
    options=SerialLineOptions,
    provides=frozenset({Capability.TEMPERATURE, Capability.VALUES}),
    description="ASCII line instruments over RS-232/RS-485 (request, regex, unit), sim backend",
    check=_check,
    values=declared,
    device_access=on_hardware("dialout"),
)
