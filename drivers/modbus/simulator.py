"""A simulated PLC: a register image whose values change, served over Modbus TCP or RTU.

Run ``python -m edge_agent.drivers.modbus.simulator --port 15020 [--layout reference]`` for the demo and the
benchmark. The image is also the ``backend = "sim"`` of the driver (read in process, no socket)
and the server of the tests, which use its fault switches (``busy_units``, ``silent_units``) and
its request counter.

Values move with time: about ``change_per_s`` (2 %) of the tags change per second, chosen at
random (analog values walk, booleans toggle), and tags named ``*count*`` count up (``count_per_s``
each, part of the 2 %).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from edge_agent.drivers.contract import Scalar
from edge_agent.drivers.modbus.codec import encode_value
from edge_agent.drivers.modbus.tags import DataType, Order, PollClass, Table, Tag

FUNCTION_TABLE = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING_REGISTER, 4: Table.INPUT_REGISTER}
FUNCTION_TABLE.update({5: Table.COIL, 15: Table.COIL, 6: Table.HOLDING_REGISTER, 16: Table.HOLDING_REGISTER})
FUNCTION_TABLE.update({22: Table.HOLDING_REGISTER, 23: Table.HOLDING_REGISTER})
POLL_GAP_S = 0.3  # requests closer than this belong to one poll (see PlcImage.time_polls)


class UnitImage:
    """The four tables of one unit id; addresses not defined by a tag answer 'illegal address'."""

    def __init__(self) -> None:
        self.regs = {t: array.array("H", bytes(2 * 65536)) for t in Table if not t.is_bits}
        self.bits = {t: bytearray(65536) for t in Table if t.is_bits}
        self.valid = {t: bytearray(65536) for t in Table}

    def define(self, table: Table, address: int, count: int) -> None:
        self.valid[table][address : address + count] = b"\x01" * count

    def is_valid(self, table: Table, address: int, count: int) -> bool:
        v = self.valid[table]
        return address + count <= 65536 and v.find(0, address, address + count) < 0


class PlcImage:
    """Register images of one or more unit ids, with tags whose values move with time.

    Like most PLCs, a unit serves every address from 0 to its highest tag (gaps read as 0);
    ``strict = True`` serves only the tags' own addresses."""

    def __init__(
        self,
        tags: Sequence[Tag],
        *,
        default_unit: int = 1,
        seed: int = 1,
        change_per_s: float = 0.02,
        count_per_s: float = 0.1,
        strict: bool = False,
    ) -> None:
        self.tags = list(tags)
        self.default_unit = default_unit
        self.units: dict[int, UnitImage] = {}
        self.values: dict[str, Scalar] = {}
        self.requests: Counter[tuple[int, int]] = Counter()  # (unit, function code) -> count
        self.busy_units: set[int] = set()  # answer exception 6 (device busy)
        self.silent_units: set[int] = set()  # never answer (timeout)
        self.change_per_s = change_per_s  # of all tags, counters included
        self.count_per_s = count_per_s  # per counter
        self.clock = time.monotonic
        self._rng = random.Random(seed)
        self._counters = [t for t in self.tags if "count" in t.name and t.type.is_integer]
        self.meter = EnergyMeter.of(self.tags)
        metered = {t.name for t in self.tags if self.meter is not None and t.name in METER_TAGS}
        self._others = [
            t for t in self.tags if t not in self._counters and t.type is not DataType.STRING and t.name not in metered
        ]
        self._last_s = self.clock()
        self._carry = 0.0
        self._count_carry: dict[str, float] = {}
        self._on_poll: Callable[[int, float], None] | None = None
        self._gap_s = POLL_GAP_S
        self._poll_n = 0
        self._poll_first = self._poll_last = 0.0
        for tag in self.tags:
            img = self.unit(self._unit_of(tag))
            img.define(tag.table, 0 if not strict else tag.address, tag.end + 1 if not strict else tag.count)
            self.set(tag, initial_value(tag, self._rng))
        if self.meter is not None:
            for tag, value in self.meter.advance(0.0, self._rng):
                self.set(tag, value)

    def undefine(self, unit_id: int, table: Table, address: int, count: int = 1) -> None:
        """Make addresses answer "illegal data address" (a hole in the PLC's memory map)."""
        self.unit(unit_id).valid[table][address : address + count] = bytes(count)

    def _unit_of(self, tag: Tag) -> int:
        return self.default_unit if tag.unit_id is None else tag.unit_id

    def unit(self, unit_id: int) -> UnitImage:
        return self.units.setdefault(unit_id, UnitImage())

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def set(self, tag: Tag, value: Scalar) -> None:
        """Write an engineering value into the image (as a PLC program would)."""
        img = self.unit(self._unit_of(tag))
        if tag.table.is_bits:
            img.bits[tag.table][tag.address] = int(bool(value))
        elif tag.type is DataType.BIT:
            shift = tag.bit or 0
            if tag.byte_order is Order.LITTLE:
                shift = (shift + 8) % 16
            old = img.regs[tag.table][tag.address] & ~(1 << shift)
            img.regs[tag.table][tag.address] = old | (int(bool(value)) << shift)
        else:
            img.regs[tag.table][tag.address : tag.address + tag.count] = array.array("H", encode_value(tag, value))
        self.values[tag.name] = value

    def advance(self, now_s: float | None = None) -> None:
        """Move values on by the time elapsed since the last call."""
        now = self.clock() if now_s is None else now_s
        dt = max(0.0, now - self._last_s)
        self._last_s = now
        for tag in self._counters:
            self._carry_count(tag, dt)
        if self.meter is not None:
            for tag, value in self.meter.advance(dt, self._rng):
                self.set(tag, value)
        random_per_s = self.change_per_s * len(self.tags) - self.count_per_s * len(self._counters)
        self._carry += dt * max(0.0, random_per_s)
        n, self._carry = int(self._carry), self._carry - int(self._carry)
        for tag in self._rng.sample(self._others, min(n, len(self._others))):
            self.set(tag, next_value(tag, self.values[tag.name], self._rng))

    def _carry_count(self, tag: Tag, dt: float) -> None:
        acc = self._count_carry.get(tag.name, 0.0) + dt * self.count_per_s
        steps = int(acc)
        self._count_carry[tag.name] = acc - steps
        if steps:
            lo, hi = 0, (1 << (16 * tag.count)) - 1
            self.set(tag, lo + (int(self.values[tag.name]) + steps - lo) % (hi - lo + 1))

    # -- the datastore interface pymodbus' request handler calls --------------------------
    def device_ids(self) -> list[int]:
        return list(self.units)

    def _check(self, unit_id: int, func: int, address: int, count: int) -> Any:
        from pymodbus.constants import ExcCodes
        from pymodbus.exceptions import NoSuchIdException

        self.requests[(unit_id, func)] += 1
        if unit_id in self.silent_units or unit_id not in self.units:
            raise NoSuchIdException(f"unit {unit_id} does not answer")
        if unit_id in self.busy_units:
            return ExcCodes.DEVICE_BUSY
        if func not in FUNCTION_TABLE:
            return ExcCodes.ILLEGAL_FUNCTION
        if not self.units[unit_id].is_valid(FUNCTION_TABLE[func], address, count):
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    def time_polls(self, on_poll: Callable[[int, float], None], gap_s: float = POLL_GAP_S) -> None:
        """Call ``on_poll(requests, span_ms)`` for each poll served: requests closer than ``gap_s``
        are one poll, timed from the arrival of its first request to the answer of its last."""
        self._on_poll, self._gap_s = on_poll, gap_s

    def _timed(self, t_in: float) -> None:
        if self._poll_n and t_in - self._poll_last > self._gap_s and self._on_poll is not None:
            self._on_poll(self._poll_n, 1000.0 * (self._poll_last - self._poll_first))
            self._poll_n = 0
        if not self._poll_n:
            self._poll_first = t_in
        self._poll_n += 1

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1) -> Any:
        """Serve a read (pymodbus datastore interface)."""
        if self._on_poll is not None:
            self._timed(time.perf_counter())
            try:
                return await self._get(device_id, func_code, address, count)
            finally:
                self._poll_last = time.perf_counter()
        return await self._get(device_id, func_code, address, count)

    async def _get(self, device_id: int, func_code: int, address: int, count: int) -> Any:
        if (exc := self._check(device_id, func_code, address, count)) is not None:
            return exc
        self.advance()
        table = FUNCTION_TABLE[func_code]
        img = self.units[device_id]
        if table.is_bits:
            return [bool(b) for b in img.bits[table][address : address + count]]
        return img.regs[table][address : address + count].tolist()

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: Any) -> Any:
        """Serve a write (pymodbus datastore interface)."""
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if (exc := self._check(device_id, func_code, address, len(values))) is not None:
            return exc
        table = FUNCTION_TABLE[func_code]
        img = self.units[device_id]
        if table.is_bits:
            img.bits[table][address : address + len(values)] = bytes(int(bool(v)) for v in values)
        else:
            img.regs[table][address : address + len(values)] = array.array("H", values)
        return None


def initial_value(tag: Tag, rng: random.Random) -> Scalar:
    """A plausible starting value for a tag."""
    if tag.type in (DataType.BOOL, DataType.BIT):
        return rng.random() < 0.5
    if tag.type is DataType.STRING:
        return ("PLC-" + tag.name.upper())[: 2 * tag.count]
    if "count" in tag.name:
        return 0
    lo, hi = _span(tag)
    v = lo + (hi - lo) * rng.random()
    return round(v) * tag.scale + tag.offset if tag.type.is_integer else v


def _span(tag: Tag) -> tuple[float, float]:
    if tag.min is not None and tag.max is not None:
        return tag.min, tag.max
    return (0.0, 1000.0) if tag.type.is_integer and tag.type.value.startswith("u") else (-100.0, 100.0)


def next_value(tag: Tag, old: Scalar, rng: random.Random) -> Scalar:
    """Toggle a boolean, walk a number within its span."""
    if isinstance(old, bool):
        return not old
    lo, hi = _span(tag)
    step = max((hi - lo) * 0.02, abs(tag.scale)) * (1 if rng.random() < 0.5 else -1)
    v = min(hi, max(lo, float(old) + step))
    if tag.type.is_integer:
        return round((v - tag.offset) / tag.scale) * tag.scale + tag.offset
    return v


# Where block k of a scaled reference layout starts in each table (a block uses less than this).
BLOCK_STRIDE = {Table.HOLDING_REGISTER: 500, Table.INPUT_REGISTER: 250, Table.COIL: 100, Table.DISCRETE_INPUT: 50}


def scaled_layout(blocks: int) -> list[Tag]:
    """``blocks`` copies of the reference layout side by side in one PLC (500 tags each): block k
    at k times :data:`BLOCK_STRIDE` in each table, its tag names prefixed ``b<k>_`` (k >= 1)."""
    tags: list[Tag] = []
    for k in range(blocks):
        for t in reference_layout():
            name = t.name if k == 0 else f"b{k}_{t.name}"
            tags.append(msgspec.structs.replace(t, name=name, address=t.address + k * BLOCK_STRIDE[t.table]))
    return tags


def reference_layout() -> list[Tag]:
    """The 500-tag reference PLC: the protocol minimum is 8 requests (4 + 2 + 1 + 1).

    Holding registers 0-499: 4 setpoint/speed floats per machine in all four orders, counters,
    status words (bits) and a recipe string; input registers 0-249: scaled int16 and uint32;
    coils 0-99 and discrete inputs 0-49.
    """
    tags: list[Tag] = []
    orders = [
        (Order.BIG, Order.BIG),
        (Order.BIG, Order.LITTLE),
        (Order.LITTLE, Order.BIG),
        (Order.LITTLE, Order.LITTLE),
    ]
    for i in range(160):  # 320 registers of float32, machine m = i // 4
        bo, wo = orders[i % 4]
        tags.append(
            Tag(
                name=f"m{i // 4:02d}_analog{i % 4}",
                address=2 * i,
                type=DataType.FLOAT32,
                byte_order=bo,
                word_order=wo,
                unit="bar",
                min=0.0,
                max=10.0,
            )
        )
    for i in range(20):  # 40 registers of uint32 part counters at 320..359
        tags.append(Tag(name=f"line{i:02d}_part_count", address=320 + 2 * i, type=DataType.UINT32))
    for i in range(20):  # status word bits at 360..379 (one bit per register)
        tags.append(Tag(name=f"m{i:02d}_running", address=360 + i, type=DataType.BIT, bit=i % 16))
    tags.append(Tag(name="recipe", address=380, type=DataType.STRING, length=8, poll=PollClass.FAST))
    for i in range(59):  # int16 setpoints at 388..446
        tags.append(
            Tag(
                name=f"sp{i:02d}",
                address=388 + i,
                type=DataType.INT16,
                scale=0.1,
                unit="degC",
                min=0.0,
                max=200.0,
                writable=True,
            )
        )
    for i in range(100):  # input registers 0..99: scaled temperatures
        tags.append(
            Tag(
                name=f"t{i:03d}",
                table=Table.INPUT_REGISTER,
                address=i,
                type=DataType.INT16,
                scale=0.1,
                unit="degC",
                min=0.0,
                max=150.0,
            )
        )
    for i in range(40):  # input registers 100..179: uint32 energy counters (kWh)
        tags.append(
            Tag(
                name=f"e{i:02d}_energy",
                table=Table.INPUT_REGISTER,
                address=100 + 2 * i,
                type=DataType.UINT32,
                unit="kWh",
                min=0.0,
                max=100000.0,
            )
        )
    for i in range(70):
        tags.append(Tag(name=f"q{i:02d}", table=Table.COIL, address=i, type=DataType.BOOL, writable=i < 10))
    for i in range(30):
        tags.append(Tag(name=f"di{i:02d}", table=Table.DISCRETE_INPUT, address=i, type=DataType.BOOL))
    return tags


METER_TAGS = ("energy_kwh", "power_kw")


class EnergyMeter:
    """The physics of a simulated energy meter: active power walks around ``run_kw``; the kWh
    register integrates it (as a real meter's import counter does)."""

    def __init__(self, energy: Tag, power: Tag, *, start_kwh: float = 1520.0, run_kw: float = 7.5) -> None:
        self.energy_tag, self.power_tag = energy, power
        self.kwh, self.kw, self.run_kw = start_kwh, run_kw, run_kw

    @classmethod
    def of(cls, tags: Sequence[Tag]) -> EnergyMeter | None:
        """A meter when the tag map has ``energy_kwh`` and ``power_kw`` tags, else None."""
        by_name = {t.name: t for t in tags}
        if all(n in by_name for n in METER_TAGS):
            return cls(by_name["energy_kwh"], by_name["power_kw"])
        return None

    def advance(self, dt: float, rng: random.Random) -> list[tuple[Tag, float]]:
        """Integrate ``dt`` seconds; return the new register values."""
        self.kwh += self.kw * dt / 3600.0
        self.kw = min(1.2 * self.run_kw, max(0.8 * self.run_kw, self.kw + rng.gauss(0.0, 0.05)))
        return [(self.energy_tag, self.kwh), (self.power_tag, self.kw)]


def meter_layout() -> list[Tag]:
    """A three-phase energy meter's registers (input registers, float32 big-endian, as most
    meters): import energy kWh at 0, total active power kW at 2, voltage L1-N V at 4."""
    return [
        Tag(name="energy_kwh", table=Table.INPUT_REGISTER, address=0, type=DataType.FLOAT32, unit="kWh"),
        Tag(name="power_kw", table=Table.INPUT_REGISTER, address=2, type=DataType.FLOAT32, unit="kW"),
        Tag(
            name="voltage_v",
            table=Table.INPUT_REGISTER,
            address=4,
            type=DataType.FLOAT32,
            unit="V",
            min=225.0,
            max=235.0,
        ),
    ]


LAYOUTS: dict[str, Callable[[], list[Tag]]] = {
    "reference": reference_layout,  # 500 tags
    "reference-x2": lambda: scaled_layout(2),  # 1,000 tags (cost curves: several of these PLCs)
    "reference-x4": lambda: scaled_layout(4),  # 2,000 tags
    "meter": meter_layout,  # an energy meter (kWh, kW, V)
}


async def serve_tcp(image: PlcImage, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Start a Modbus TCP server on (host, port) in the background; return it (``await s.shutdown()``)."""
    from pymodbus.server import ModbusTcpServer

    server = ModbusTcpServer(_placeholder(), address=(host, port), ignore_missing_devices=True)
    server.context = image  # type: ignore[assignment]  # duck-typed datastore
    await server.serve_forever(background=True)
    return server


async def serve_rtu(image: PlcImage, port: str, baudrate: int = 115200) -> Any:
    """Start a Modbus RTU server on a serial port (or pty) in the background; return it."""
    from pymodbus.server import ModbusSerialServer

    server = ModbusSerialServer(_placeholder(), port=port, baudrate=baudrate, ignore_missing_devices=True)
    server.context = image  # type: ignore[assignment]
    await server.serve_forever(background=True)
    return server


def bound_port(server: Any) -> int:
    """The TCP port a server listens on (useful with port 0)."""
    return int(server.transport.sockets[0].getsockname()[1])


def _placeholder() -> Any:
    from pymodbus.simulator import DataType as SimType
    from pymodbus.simulator import SimData, SimDevice

    return SimDevice(0, simdata=[SimData(0, datatype=SimType.REGISTERS)])


async def _main(port: int, layout: str, host: str) -> None:
    image = PlcImage(LAYOUTS[layout]())
    server = await serve_tcp(image, host, port)
    print(f"simplc: {len(image.tags)} tags on {host}:{bound_port(server)}", flush=True)
    last = 0
    try:
        while True:
            await asyncio.sleep(10)
            total = image.total_requests
            print(f"simplc: {total} requests ({(total - last) / 10:.1f}/s)", flush=True)
            last = total
    finally:
        await server.shutdown()


def main(argv: Iterable[str] | None = None) -> None:
    """Command line: ``python -m edge_agent.drivers.modbus.simulator --port N [--layout reference]``."""
    p = argparse.ArgumentParser(
        prog="python -m edge_agent.drivers.modbus.simulator", description=__doc__.split("\n")[0]
    )
    p.add_argument("--port", type=int, default=15020)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--layout", choices=sorted(LAYOUTS), default="reference")
    args = p.parse_args(list(argv) if argv is not None else None)
    try:
        asyncio.run(_main(args.port, args.layout, args.host))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
