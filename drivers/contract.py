"""The driver contract: everything a hardware driver offers the runtime, in one file.

A driver is hardware access only: it opens a device, returns one reading per call and closes it.
It never computes features and never sees MQTT. Each driver ships a simulated backend beside the
real one, selected from config (``backend = "sim"``), so every plugin runs with no hardware.

Third-party drivers are separate distributions registering a :class:`DriverSpec` in the
entry-point group ``edge_agent.drivers``::

    [project.entry-points."edge_agent.drivers"]
    mychip = "mychip_driver:SPEC"

The runtime validates the spec when it is loaded (``check_driver_spec``), not when it first runs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, runtime_checkable

import msgspec
from edge_agent.drivers.errors import DriverError

ENTRY_POINT_GROUP = "edge_agent.drivers"

Scalar = float | int | bool | str


class _RelativeToConfig:
    """Marks an option as a file path that the agent resolves against the config file's directory."""

    def __repr__(self) -> str:
        return "RELATIVE_TO_CONFIG"


RELATIVE_TO_CONFIG = _RelativeToConfig()
FilePath = Annotated[str, RELATIVE_TO_CONFIG]
"""A file path option (``tags_csv: FilePath | None = None``). The agent makes a relative path
absolute against the directory of the config file before the driver sees it, so it does not
depend on the working directory (the systemd unit runs in /run/edge-agent)."""


class Capability(enum.StrEnum):
    """What kind of reading a driver returns; plugins name the one they need."""

    VALUES = "values"  # drivers.contract.Values: named scalars with quality
    WAVEFORM = "waveform"  # drivers.contract.Waveform: sampled signal blocks
    TEMPERATURE = "temperature"  # drivers.thermocouple.TemperatureReading
    REGISTERS = "registers"  # Modbus/PLC tag values (a Values subtype)
    DIGITAL = "digital"  # GPIO inputs, counters, tachometer (Values)


class Quality(enum.StrEnum):
    """Quality codes carried in a message's ``q`` map; a value absent from ``q`` is good."""

    GOOD = "good"
    BAD = "bad"
    UNCERTAIN = "uncertain"
    TIMEOUT = "timeout"
    COMM_ERROR = "comm_error"
    ILLEGAL_ADDRESS = "illegal_address"
    DEVICE_BUSY = "device_busy"
    DEVICE_ERROR = "device_error"
    OPEN_CIRCUIT = "open_circuit"
    SHORT_CIRCUIT = "short_circuit"
    OUT_OF_RANGE = "out_of_range"
    STUCK = "stuck"
    IMPLAUSIBLE = "implausible"
    OVERRUN = "overrun"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Values:
    """One scheduled read of named scalar values; ``quality`` lists only the values not good."""

    values: Mapping[str, Scalar]
    quality: Mapping[str, Quality] = field(default_factory=dict)
    ts_ms: int | None = None  # acquisition time; None -> the runtime stamps it


@dataclass(frozen=True, slots=True)
class Waveform:
    """A contiguous block of samples, shape (n_samples, n_axes), in engineering units (g for
    accelerometers). ``lost_samples`` > 0 means the block is NOT continuous (FIFO overrun)."""

    samples: Any  # numpy.ndarray, float32/float64, (n, axes)
    rate_hz: float
    axes: tuple[str, ...]
    t0_ms: int
    unit: str = "g"
    lost_samples: int = 0
    raw: Any = None  # optional int16 counts for capture, same shape
    scale: float = 1.0  # raw * scale == samples


class Options(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for a driver's options (the keys of ``driver = {...}`` other than ``type``)."""


@runtime_checkable
class Driver(Protocol):
    """A device handle. Methods may be plain (run in the runtime's bounded thread pool) or
    ``async def`` (awaited on the event loop, for drivers with asyncio clients)."""

    def open(self) -> Any:
        """Open the device; raise a DriverError subclass with a clear message on failure."""

    def read(self) -> Any:
        """Return one reading (Values, Waveform or the capability's own type)."""

    def close(self) -> Any:
        """Release the device; must be safe to call twice and after a failed open."""


@dataclass(frozen=True)
class DriverSpec:
    """What a driver package registers: its name, options schema, factory and capabilities."""

    name: str
    factory: Callable[[Any], Driver]  # called with an instance of ``options``
    options: type[Options]
    provides: frozenset[Capability]
    description: str = ""
    # Optional cross-field checks beyond the schema; returns messages "key: problem".
    check: Callable[[Any], list[str]] | None = None
    # Optional: a one-line-per-item plan shown by `check-config --plan` (Modbus requests).
    plan: Callable[[Any], list[str]] | None = None


def check_driver_spec(obj: object, source: str) -> DriverSpec:
    """Validate a loaded entry point; raise DriverError naming what is wrong and where."""
    if not isinstance(obj, DriverSpec):
        raise DriverError(f"{source}: expected a drivers.contract.DriverSpec, got {type(obj).__name__}")
    if not obj.name or not obj.name.replace("_", "").replace("-", "").isalnum():
        raise DriverError(f"{source}: invalid driver name {obj.name!r}")
    if not (isinstance(obj.options, type) and issubclass(obj.options, msgspec.Struct)):
        raise DriverError(f"{source}: options must be a msgspec.Struct subclass")
    if not callable(obj.factory):
        raise DriverError(f"{source}: factory is not callable")
    if not obj.provides or not all(isinstance(c, Capability) for c in obj.provides):
        raise DriverError(f"{source}: provides must be a non-empty set of Capability")
    return obj
