"""Options of the ``modbus`` driver (the keys of ``driver = {type = "modbus", ...}``)."""

from __future__ import annotations

import enum
import logging
import warnings
from typing import Annotated, Literal

import msgspec
from edge_agent.drivers.contract import FilePath, Options
from edge_agent.drivers.modbus.plan import MAX_BITS, MAX_REGISTERS, Limits, oversize
from edge_agent.drivers.modbus.tags import Tag, TagMapError, check_tags, load_csv


class Backend(enum.StrEnum):
    HW = "hw"  # a real device over ``transport``
    SIM = "sim"  # an in-process simulated PLC (drivers.modbus.simplc), no socket
    TCP = "tcp"  # deprecated spelling of backend = "hw" + transport = "tcp" (until 0.3)
    RTU = "rtu"  # deprecated spelling of backend = "hw" + transport = "rtu" (until 0.3)


class Transport(enum.StrEnum):
    TCP = "tcp"  # Modbus TCP to host:port
    RTU = "rtu"  # Modbus RTU on serial_port


log = logging.getLogger(__name__)


class Layout(enum.StrEnum):
    REFERENCE = "reference"  # the 500-tag reference PLC of drivers.modbus.simplc
    REFERENCE_X2 = "reference-x2"  # two reference blocks in one PLC: 1,000 tags (cost curves)
    REFERENCE_X4 = "reference-x4"  # four: 2,000 tags
    METER = "meter"  # the simulated energy meter (kWh counter, active power) of drivers.modbus.simplc


Seconds = Annotated[float, msgspec.Meta(gt=0, le=600)]


class ModbusOptions(Options):
    backend: Backend = Backend.HW
    transport: Transport | None = None  # None: tcp (or what a deprecated backend = "tcp"/"rtu" says)
    # TCP
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 502
    # RTU (serial line)
    serial_port: str = "/dev/ttyUSB0"
    baudrate: Annotated[int, msgspec.Meta(ge=300, le=4_000_000)] = 19200
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    inter_request_delay_s: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.0  # silent time between requests
    # device and requests
    unit_id: Annotated[int, msgspec.Meta(ge=0, le=255)] = 1  # default for tags without unit_id
    timeout_s: Seconds = 1.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1
    max_registers: Annotated[int, msgspec.Meta(ge=1, le=MAX_REGISTERS)] = MAX_REGISTERS
    max_bits: Annotated[int, msgspec.Meta(ge=1, le=MAX_BITS)] = MAX_BITS
    max_gap: Annotated[int, msgspec.Meta(ge=0, le=MAX_REGISTERS)] = 16
    max_gap_bits: Annotated[int, msgspec.Meta(ge=0, le=MAX_BITS)] = 256
    slow_every: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10  # slow tags: every N reads
    reprobe_every: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 60  # isolated bad tags: retry every N
    backoff_min_s: Seconds = 1.0
    backoff_max_s: Seconds = 60.0
    # tags: inline, from a CSV file, and/or a built-in layout (merged in that order)
    tags: list[Tag] = []
    tags_csv: FilePath | None = None  # relative: to the config file's directory
    layout: Layout | None = None
    sim_seed: int = 1

    def __post_init__(self) -> None:
        """One vocabulary: ``backend`` hw/sim as for every driver, ``transport`` tcp/rtu. The old
        ``backend = "tcp"/"rtu"`` still works for one release, with a deprecation warning."""
        if self.backend in (Backend.TCP, Backend.RTU):
            old = Transport(self.backend.value)
            if self.transport is not None and self.transport is not old:
                raise ValueError(f'backend = "{old}" (deprecated) contradicts transport = "{self.transport}"')
            message = (
                f'modbus: backend = "{old}" is deprecated: write transport = "{old}" (backend "hw" is the default)'
            )
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            log.warning("%s", message)
            self.backend, self.transport = Backend.HW, old
        elif self.transport is None:
            self.transport = Transport.TCP

    def limits(self) -> Limits:
        return Limits(self.max_registers, self.max_bits, self.max_gap, self.max_gap_bits)


def all_tags(o: ModbusOptions) -> list[Tag]:
    """The tag map: inline tags, then the CSV file's, then the layout's; TagMapError if unreadable."""
    tags = list(o.tags)
    if o.tags_csv:
        tags += load_csv(o.tags_csv)
    if o.layout is not None:
        from edge_agent.drivers.modbus.simulator import LAYOUTS

        tags += LAYOUTS[o.layout]()
    return tags


def check(o: ModbusOptions) -> list[str]:
    """Cross-field checks of the options and the whole tag map ("key: problem")."""
    try:
        tags = all_tags(o)
    except TagMapError as exc:
        return [f"tags_csv: {exc}"]
    out = check_tags(tags)
    out += [f"tags: {p}" for p in oversize(tags, o.limits())]
    if not tags:
        out.append("tags: no tags (give tags, tags_csv or layout)")
    if o.backoff_min_s > o.backoff_max_s:
        out.append("backoff_min_s: must not exceed backoff_max_s")
    return out
