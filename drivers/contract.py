"""The driver contract: everything a hardware driver offers the runtime, in one file.

A driver is hardware access only: it opens a device, returns one reading per call and closes it.
It never computes features and never sees MQTT. Each driver ships a simulated backend beside the
real one, selected from config (``backend = "sim"``), so every plugin runs with no hardware.

Third-party drivers are separate distributions registering a :class:`DriverSpec` in the
entry-point group ``edge_agent.drivers``::

    [project.entry-points."edge_agent.drivers"]
    mychip = "mychip_driver:SPEC"

The runtime validates the spec when it is loaded (``check_driver_spec``), not when it first runs.

The contract is versioned (:data:`CONTRACT_VERSION`, "MAJOR.MINOR"): a spec states the version
it was written for (``contract_version``, default: the version it was built against). The agent
refuses a spec of another major version and warns about a newer minor one (docs/driver-guide.md).
"""

from __future__ import annotations

import enum
import inspect
import logging
import math
import typing
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Generic, Protocol, TypeGuard, TypeVar, runtime_checkable

import msgspec

ENTRY_POINT_GROUP = "edge_agent.drivers"

CONTRACT_VERSION: Final = "1.2"
"""The driver contract's version, "MAJOR.MINOR": a new minor only adds (fields with defaults,
reading types); a new major changes or removes something a driver relies on."""

_log = logging.getLogger("edge_agent.registry")


class ContractError(Exception):
    """A driver or plugin spec does not meet its contract; the message names what and where.
    The agent records such a package as broken (``edge-agent drivers`` shows why); it never runs."""


Scalar = float | int | bool | str


HEX: Final = {"format": "hex"}
"""``Annotated[int, msgspec.Meta(ge=0x03, le=0x77, extra=HEX)]``: config messages show this
integer option in hex, as its users write it (I2C addresses, register numbers)."""


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

    VALUES = "values"  # Values: named scalars with quality
    WAVEFORM = "waveform"  # Waveform: sampled signal blocks
    TEMPERATURE = "temperature"  # TemperatureReading: per-channel temperatures (also a Values)
    REGISTERS = "registers"  # Values of PLC tags; the driver may also ``write(tag, value)``
    DIGITAL = "digital"  # Values of GPIO inputs, counters, tachometer
    THERMAL_IMAGE = "thermal_image"  # ThermalFrame: a thermal array's object temperatures (also a Values)


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
    BAD_VALUE = "bad_value"  # set by the agent: the value was not as declared (docs/messages.md)


class DType(enum.StrEnum):
    """The type of a declared value as it travels in a message's ``d`` map."""

    FLOAT32 = "float32"  # a measurement; may be narrowed to single precision on the wire
    FLOAT64 = "float64"  # needs full precision (counters as floats, totals, timestamps)
    INT = "int"
    BOOL = "bool"
    STR = "str"


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """One value a driver returns or a plugin emits, declared in its spec."""

    key: str  # dotted key exactly as emitted in "d" ("x.velocity_rms_mm_s", "line_speed"); "*" = any name
    dtype: DType
    unit: str = ""  # engineering unit as in docs/messages.md ("mm/s", "degC", "g", "rpm"; "" = none)
    description: str = ""
    writable: bool = False  # a PLC tag that cmd/write (and Sparkplug DCMD) may set
    length: int | None = None  # a list of up to ``length`` values of ``dtype`` (spectrum peaks); None = one


@dataclass(frozen=True, slots=True)
class ValueRef:
    """An option that names a value (an alarm's feature, a linked speed): check-config checks it
    against the declared values and names ``option`` when it is not there."""

    option: str  # where in the plugin's options, e.g. "alarms[0].feature" or "speed_key"
    key: str  # the dotted key it names
    instance: str | None = None  # another instance's data (the data link); None: this instance's
    instance_option: str = ""  # where ``instance`` is set ("speed_instance"), for its error
    driver: bool = False  # True: a key of this instance's driver's reading, not of the plugin's output
    numeric: bool = False  # must be a number (alarm limits, speeds)


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

    samples: Any  # numpy.ndarray, float32/float64, (n, axes); typed Any to keep numpy optional
    rate_hz: float
    axes: tuple[str, ...]
    t0_ms: int
    unit: str = "g"
    lost_samples: int = 0
    raw: Any = None  # optional int16 counts for capture, same shape
    scale: float = 1.0  # raw * scale == samples


class Linearisation(enum.StrEnum):
    """How ``ChannelReading.temperature_c`` was obtained."""

    DONE = "done"  # final degC: chip-linearised (MAX31856) or an instrument's reading
    LINEAR = "linear"  # straight-line approximation of a thermocouple (MAX31855)
    RTD = "rtd"  # no temperature yet: convert resistance_ohm with Callendar-Van Dusen


class TcType(enum.StrEnum):
    """Thermocouple letter types (``ChannelReading.sensor``; plugins.temperature.its90 has each one's tables)."""

    B = "B"
    E = "E"
    J = "J"
    K = "K"
    N = "N"
    R = "R"
    S = "S"
    T = "T"


@dataclass(frozen=True, slots=True)
class ChannelReading:
    """One temperature sensor's reading; ``faults`` names every fault bit the device reported."""

    temperature_c: float | None
    cold_junction_c: float | None = None
    quality: Quality = Quality.GOOD
    faults: tuple[str, ...] = ()
    linearisation: Linearisation = Linearisation.DONE
    sensor: str = ""  # thermocouple letter ("K"), "pt100", "pt1000" or the instrument's name
    slope_uv_per_c: float | None = None  # LINEAR only: the chip's assumed Seebeck slope
    resistance_ohm: float | None = None  # RTD only
    r0_ohm: float | None = None  # RTD only
    # set by the agent on the first reading after a calibration of the channel changed: how much the
    # change moved this value (a step to shift the trend by, not a rate of change); drivers leave it 0
    calibration_step_c: float = 0.0


@dataclass(frozen=True, slots=True)
class TemperatureReading(Values):
    """One read of every temperature channel; ``values``/``quality`` are the flat Values view
    (``name`` in degC, or ``name_ohm`` for an RTD not yet converted)."""

    channels: Mapping[str, ChannelReading] = field(default_factory=dict)


def temperature_reading(channels: Mapping[str, ChannelReading], ts_ms: int | None = None) -> TemperatureReading:
    """A TemperatureReading with its flat Values view (``name`` degC, ``name_ohm`` for an RTD not converted)."""
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


@dataclass(frozen=True, slots=True)
class ThermalFrame(Values):
    """One frame of a thermal array: ``frame_c`` (rows, columns) apparent object temperatures in
    degC at ``emissivity`` (NaN: a failed pixel); ``values`` is the flat view (``ta_c``, ``max_c``...)."""

    frame_c: Any = None  # numpy.ndarray float32 (rows, columns)
    ta_c: float = float("nan")  # the sensor's own (ambient) temperature
    reflected_c: float = float("nan")  # reflected apparent temperature used
    emissivity: float = 1.0  # emissivity the frame was computed at


READING_TYPES: Final[Mapping[Capability, type]] = {
    Capability.VALUES: Values,
    Capability.WAVEFORM: Waveform,
    Capability.TEMPERATURE: TemperatureReading,
    Capability.REGISTERS: Values,
    Capability.DIGITAL: Values,
    Capability.THERMAL_IMAGE: ThermalFrame,
}
"""The reading type ``read()`` returns for each capability (an instance of it, or of a subclass)."""


class Options(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for a driver's options (the keys of ``driver = {...}`` other than ``type``)."""


OptionsT = TypeVar("OptionsT", bound=Options)
ReadingT = TypeVar("ReadingT")
R_co = TypeVar("R_co", covariant=True)


@runtime_checkable
class Driver(Protocol[R_co]):
    """A device handle returning readings of type ``R_co``. Methods may be plain (run in the
    runtime's bounded thread pool) or ``async def`` (awaited on the event loop, for drivers with
    asyncio clients)."""

    def open(self) -> object:
        """Open the device; raise a DriverError subclass with a clear message on failure."""

    def read(self) -> R_co | Awaitable[R_co]:
        """Return one reading (the type of the capability: ``READING_TYPES``)."""

    def close(self) -> object:
        """Release the device; must be safe to call twice and after a failed open."""


@runtime_checkable
class Writable(Protocol):
    """Optional driver feature ``write``: set one value on the device (a PLC tag, a GPIO output).
    ``cmd/write`` and Sparkplug DCMD reach it through the plugin; plain or ``async def``."""

    def write(self, tag: str, value: Any) -> object:
        """Write ``value`` to ``tag`` and return the value written; raise ValueError for a refused
        value, a DriverError when the device fails."""


@runtime_checkable
class DeclaresDeadlines(Protocol):
    """Optional driver feature ``deadline_s``: how long a call may take before the runtime abandons it
    (seconds, for every call or by method name: ``{"open": 30, "read": 2}``); else 3 x interval_s."""

    deadline_s: float | Mapping[str, float]


@runtime_checkable
class ReportsFailure(Protocol):
    """Optional driver feature ``failure``: a failure the driver saw between calls (its own thread or
    process died); when it is not None the runtime closes and reopens the driver, raising it as the cause."""

    failure: BaseException | None


DRIVER_FEATURES: Final[Mapping[str, type]] = {
    "write": Writable,
    "deadline_s": DeclaresDeadlines,
    "failure": ReportsFailure,
}
"""The optional driver features by attribute name: checked when a spec is loaded (on the driver
class its ``factory`` is or returns), listed by ``edge-agent drivers``."""

DEADLINE_METHODS: Final = frozenset({"open", "read", "close", "write"})


@dataclass(frozen=True)
class DriverSpec(Generic[OptionsT, ReadingT]):
    """What a driver package registers: its name, options schema, factory and capabilities.
    Generic over its options (``OptionsT``) and reading (``ReadingT``) types, inferred from ``factory``."""

    name: str
    factory: Callable[[OptionsT], Driver[ReadingT]]  # called with an instance of ``options``
    options: type[OptionsT]
    provides: frozenset[Capability]
    description: str = ""
    # Optional cross-field checks beyond the schema; returns messages "key: problem".
    check: Callable[[OptionsT], list[str]] | None = None
    # Optional: a one-line-per-item plan shown by `check-config --plan` (Modbus requests).
    plan: Callable[[OptionsT], list[str]] | None = None
    # What one read() returns (for Values readings: the keys of ``Values.values``), computed
    # from the options; None = not declared (check-config then cannot check references).
    values: Callable[[OptionsT], Sequence[ValueSpec]] | None = None
    contract_version: str = CONTRACT_VERSION  # the version this driver was written for
    # Optional options of a typical instance: the generated reference shows its declared values.
    example: Mapping[str, Any] | None = None
    # The Unix groups whose devices the hardware backend opens ("i2c", "spi", "gpio", "dialout"),
    # fixed or computed from the options (none for backend = "sim"); deploy/install.sh gives the
    # service exactly the groups its configured drivers declare (`edge-agent device-groups`).
    device_access: frozenset[str] | Callable[[OptionsT], Collection[str]] = frozenset()


def parse_version(text: object) -> tuple[int, int] | None:
    """``"1.2"`` -> (1, 2); None when it is not "MAJOR.MINOR"."""
    if not isinstance(text, str):
        return None
    major, dot, minor = text.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        return None
    return int(major), int(minor)


def check_contract_version(declared: object, current: str, source: str) -> None:
    """Refuse another major version, warn about a newer minor (both versions in the message)."""
    theirs, ours = parse_version(declared), parse_version(current)
    assert ours is not None
    if theirs is None:
        raise ContractError(f'{source}: contract_version must be "MAJOR.MINOR", got {declared!r}')
    if theirs[0] != ours[0]:
        raise ContractError(
            f"{source}: written for contract {declared}, this agent implements {current} "
            "(another major version: upgrade the package or the agent)"
        )
    if theirs[1] > ours[1]:
        _log.warning(
            "%s: written for contract %s, newer than this agent's %s; features added after %s are missing",
            source,
            declared,
            current,
            current,
        )


def valid_name(name: object) -> bool:
    """Driver and plugin names: letters, digits, ``_`` and ``-``."""
    return isinstance(name, str) and bool(name) and name.replace("_", "").replace("-", "").isalnum()


def valid_group(name: object) -> bool:
    """A Unix group name as device_access uses them: lower-case letters, digits, ``_``."""
    return isinstance(name, str) and name.isidentifier() and name.islower()


def on_hardware(*groups: str) -> Callable[[Any], frozenset[str]]:
    """``device_access`` for a driver that needs ``groups`` unless its ``backend`` is sim/mock."""
    needed = frozenset(groups)
    return lambda options: needed if str(getattr(options, "backend", "hw")) == "hw" else frozenset()


def device_groups(spec: DriverSpec[Any, Any], options: Any) -> frozenset[str]:
    """The groups a driver needs for these options (its ``device_access``, computed if callable)."""
    access = spec.device_access
    groups = frozenset(access(options) if callable(access) else access)
    bad = sorted(str(g) for g in groups if not valid_group(g))
    if bad:
        raise ContractError(f"driver {spec.name!r}: device_access returned invalid group names {bad}")
    return groups


def check_options_type(options: object, source: str) -> None:
    """The options must be a msgspec.Struct whose annotations resolve (validation and the
    agent's file-path resolution read them); else the spec is refused, not half-used."""
    if not (isinstance(options, type) and issubclass(options, msgspec.Struct)):
        raise ContractError(f"{source}: options must be a msgspec.Struct subclass")
    try:
        typing.get_type_hints(options, include_extras=True)
        msgspec.structs.fields(options)
    except Exception as exc:
        raise ContractError(
            f"{source}: the annotations of options {options.__name__} do not resolve ({type(exc).__name__}: {exc})"
        ) from None


def valid_deadline_s(seconds: object) -> TypeGuard[float]:
    """A declared deadline: a finite number of seconds > 0 (inf would be a deadline that never fires)."""
    return isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0 < seconds < math.inf


def driver_class(spec: DriverSpec[Any, Any]) -> type | None:
    """The class of the drivers ``spec.factory`` makes: the factory itself, or its declared return
    type; None when neither says (a lambda): its optional features are then seen only at run time."""
    factory: Any = spec.factory
    if isinstance(factory, type):
        return factory
    try:
        returned = typing.get_type_hints(factory).get("return")
    except Exception:  # annotations that do not resolve: nothing to inspect
        return None
    returned = typing.get_origin(returned) or returned
    return returned if isinstance(returned, type) and returned is not Driver else None


def _declares(cls: type, name: str) -> bool:
    """The class (or a base) defines or annotates ``name``."""
    return any(name in vars(k) or name in vars(k).get("__annotations__", {}) for k in cls.__mro__)


def feature_problem(owner: object, name: str) -> str | None:
    """Why ``owner``'s (a driver class or a driver) optional feature ``name`` does not fit its
    Protocol, else None; a class is checked at load, a driver by the conformance kit."""
    value = getattr(owner, name, None)
    if name == "write":
        if not callable(value):
            return "write must be a method write(tag, value)"
        try:
            inspect.signature(value).bind(*([None] if isinstance(owner, type) else []), "tag", 0)
        except TypeError:
            return f"write must take (tag, value), it is write{inspect.signature(value)}"
        except ValueError:  # no signature to read (a builtin): trust it
            return None
    if name == "deadline_s" and value is not None:
        items = value.items() if isinstance(value, Mapping) else [("", value)]
        for method, seconds in items:
            if method and method not in DEADLINE_METHODS:
                return f"deadline_s names {method!r}, not one of {sorted(DEADLINE_METHODS)}"
            if not valid_deadline_s(seconds):
                return f"deadline_s must be finite seconds > 0 or a map {{method: seconds}}, got {value!r}"
    if name == "failure" and value is not None and not isinstance(value, BaseException):
        return f"failure must be None or an exception, got {value!r}"
    return None


def driver_features(spec: DriverSpec[Any, Any]) -> tuple[str, ...]:
    """The optional features (``DRIVER_FEATURES``) the spec's driver class declares, by name."""
    cls = driver_class(spec)
    return () if cls is None else tuple(n for n in DRIVER_FEATURES if _declares(cls, n))


def check_driver_features(spec: DriverSpec[Any, Any], source: str) -> None:
    """Refuse a driver class whose optional feature does not fit its Protocol, naming it."""
    cls = driver_class(spec)
    if cls is None:
        return
    for name in driver_features(spec):
        problem = feature_problem(cls, name)
        if problem:
            protocol = DRIVER_FEATURES[name].__name__
            raise ContractError(f"{source}: optional feature {name!r} of {cls.__name__} ({protocol}): {problem}")


def check_driver_spec(obj: object, source: str) -> DriverSpec[Any, Any]:
    """Validate a loaded entry point; raise ContractError naming what is wrong and where."""
    if not isinstance(obj, DriverSpec):
        raise ContractError(f"{source}: expected a drivers.contract.DriverSpec, got {type(obj).__name__}")
    check_contract_version(obj.contract_version, CONTRACT_VERSION, source)
    if not valid_name(obj.name):
        raise ContractError(f"{source}: invalid driver name {obj.name!r}")
    check_options_type(obj.options, source)
    if not callable(obj.factory):
        raise ContractError(f"{source}: factory is not callable")
    if not obj.provides or not all(isinstance(c, Capability) for c in obj.provides):
        raise ContractError(f"{source}: provides must be a non-empty set of Capability")
    access = obj.device_access
    if not callable(access) and not (isinstance(access, frozenset) and all(map(valid_group, access))):
        raise ContractError(f"{source}: device_access must be a frozenset of group names like 'i2c', or a callable")
    for name in ("check", "plan", "values"):
        if getattr(obj, name) is not None and not callable(getattr(obj, name)):
            raise ContractError(f"{source}: {name} must be callable or None")
    check_driver_features(obj, source)
    return obj
