"""The ``modbus`` driver's backends and their per-unit backoff: where each coalesced request goes.

Backends (one interface, :class:`Source`): pymodbus' async TCP and RTU clients, and the
in-process simulated PLC. Per unit id, a timeout puts the unit into a jittered, capped backoff
so that a dead unit costs nothing until its next attempt; a lost connection is reopened by the
next read after its own backoff. A coalesced read answered with "illegal data address" is split
in halves until the bad tags are isolated; the plan keeps the good halves from then on.
"""

from __future__ import annotations

import logging
import random
import struct
from collections.abc import Sequence
from typing import Any, Protocol

from edge_agent.drivers.contract import Quality, Scalar
from edge_agent.drivers.errors import CommError, DeviceTimeout, DriverError
from edge_agent.drivers.modbus.codec import Decoder, decoder, plain_code, registers_to_bytes
from edge_agent.drivers.modbus.options import ModbusOptions, Transport
from edge_agent.drivers.modbus.plan import ReadRequest
from edge_agent.drivers.modbus.tags import Table, Tag

log = logging.getLogger(__name__)

EXCEPTION_QUALITY = {
    1: Quality.DEVICE_ERROR,
    2: Quality.ILLEGAL_ADDRESS,
    3: Quality.DEVICE_ERROR,
    4: Quality.DEVICE_ERROR,
    6: Quality.DEVICE_BUSY,
    10: Quality.COMM_ERROR,
    11: Quality.TIMEOUT,
}


class ExceptionCode(DriverError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what}: Modbus exception {code}")
        self.code = code
        self.quality = str(EXCEPTION_QUALITY.get(code, Quality.DEVICE_ERROR))


class Source(Protocol):
    """Where registers come from: a pymodbus client or the simulated PLC."""

    async def connect(self) -> None: ...

    @property
    def connected(self) -> bool: ...

    async def read(self, table: Table, unit_id: int, address: int, count: int) -> Sequence[Any]: ...

    async def write(self, table: Table, unit_id: int, address: int, values: list[int], mask: int | None) -> None: ...

    def close(self) -> None: ...


class PymodbusSource:
    """pymodbus 3.x async client, TCP or RTU; its own reconnect is off (the driver backs off)."""

    def __init__(self, o: ModbusOptions) -> None:
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

        common: dict[str, Any] = {"timeout": o.timeout_s, "retries": o.retries, "reconnect_delay": 0}
        self.what = f"{o.host}:{o.port}" if o.transport is Transport.TCP else o.serial_port
        self.client: Any = (
            AsyncModbusTcpClient(o.host, port=o.port, **common)
            if o.transport is Transport.TCP
            else AsyncModbusSerialClient(
                o.serial_port,
                baudrate=o.baudrate,
                bytesize=o.bytesize,
                parity=o.parity,
                stopbits=o.stopbits,
                **common,
            )
        )

    async def connect(self) -> None:
        if not await self.client.connect():
            raise CommError(f"modbus: cannot connect to {self.what}")

    @property
    def connected(self) -> bool:
        return bool(self.client.connected)

    async def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

        try:
            rr = await fn(*args, **kw)
        except ConnectionException as exc:
            raise CommError(f"{what}: connection lost ({exc})") from exc
        except ModbusIOException as exc:
            raise DeviceTimeout(f"{what}: no answer from {self.what}") from exc
        except ModbusException as exc:  # anything else pymodbus reports: a garbled exchange
            raise CommError(f"{what}: {exc}") from exc
        if rr.isError():
            raise ExceptionCode(int(getattr(rr, "exception_code", 4)), what)
        return rr

    async def read(self, table: Table, unit_id: int, address: int, count: int) -> Sequence[Any]:
        c = self.client
        fn = {
            Table.COIL: c.read_coils,
            Table.DISCRETE_INPUT: c.read_discrete_inputs,
            Table.HOLDING_REGISTER: c.read_holding_registers,
            Table.INPUT_REGISTER: c.read_input_registers,
        }[table]
        rr = await self._call(f"unit {unit_id} {table} {address}+{count}", fn, address, count=count, device_id=unit_id)
        return rr.bits[:count] if table.is_bits else rr.registers  # type: ignore[no-any-return,unused-ignore]

    async def write(self, table: Table, unit_id: int, address: int, values: list[int], mask: int | None) -> None:
        c, what = self.client, f"unit {unit_id} write {table} {address}"
        if table is Table.COIL:
            await self._call(what, c.write_coil, address, bool(values[0]), device_id=unit_id)
        elif mask is not None:
            await self._call(
                what,
                c.mask_write_register,
                address=address,
                and_mask=~mask & 0xFFFF,
                or_mask=values[0] & mask,
                device_id=unit_id,
            )
        else:
            await self._call(what, c.write_registers, address, values, device_id=unit_id)

    def close(self) -> None:
        self.client.close()


class SimSource:
    """The simulated PLC read in process (no socket); same exceptions as a real device."""

    def __init__(self, tags: list[Tag], o: ModbusOptions) -> None:
        from edge_agent.drivers.modbus.simulator import PlcImage

        self.image = PlcImage(tags, default_unit=o.unit_id, seed=o.sim_seed)
        self.is_open = False

    async def connect(self) -> None:
        self.is_open = True

    @property
    def connected(self) -> bool:
        return self.is_open

    async def read(self, table: Table, unit_id: int, address: int, count: int) -> Sequence[Any]:
        from pymodbus.exceptions import NoSuchIdException

        func = {Table.COIL: 1, Table.DISCRETE_INPUT: 2, Table.HOLDING_REGISTER: 3, Table.INPUT_REGISTER: 4}[table]
        try:
            res = await self.image.async_getValues(unit_id, func, address, count)
        except NoSuchIdException as exc:
            raise DeviceTimeout(f"unit {unit_id}: no answer (sim)") from exc
        if not isinstance(res, list):
            raise ExceptionCode(int(res), f"unit {unit_id} {table} {address}+{count}")
        return res

    async def write(self, table: Table, unit_id: int, address: int, values: list[int], mask: int | None) -> None:
        func = 5 if table is Table.COIL else 6
        if mask is not None:
            old = self.image.unit(unit_id).regs[table][address]
            values = [(old & ~mask) | (values[0] & mask)]
        res = await self.image.async_setValues(unit_id, func, address, values)
        if res is not None:
            raise ExceptionCode(int(res), f"unit {unit_id} write {table} {address}")

    def close(self) -> None:
        self.is_open = False


class Backoff:
    """Jittered, capped exponential backoff: delay = min(max, min * 2^n) * U(0.5, 1)."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random) -> None:
        self.min_s, self.max_s, self._rng = min_s, max_s, rng
        self.failures = 0
        self.until = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.until

    def fail(self, now: float) -> float:
        delay = min(self.max_s, self.min_s * 2.0**self.failures) * self._rng.uniform(0.5, 1.0)
        self.failures += 1
        self.until = now + delay
        return delay

    def ok(self) -> None:
        self.failures = 0
        self.until = 0.0


class CompiledRequest:
    """A request with its tags' decoders and offsets, ready to decode a response fast: the plain
    numeric tags (no byte or word swap) of a register request unpack in one ``struct`` call, the
    others through their own decoder; values go into ``out`` in the request's tag order."""

    __slots__ = ("items", "plain", "req")

    def __init__(self, req: ReadRequest) -> None:
        self.req = req
        self.items: list[tuple[str, Decoder | None, int]] = [
            (t.name, None if req.table.is_bits else decoder(t), t.address - req.address) for t in req.tags
        ]
        # per tag: its index in the one unpack (with its scale and offset), or None (own decoder)
        self.plain: tuple[struct.Struct, list[tuple[int, float, float] | None]] | None = None
        if not req.table.is_bits:
            self.plain = _plain_unpack(req)

    def decode(self, data: Sequence[Any], out: dict[str, Scalar]) -> None:
        if self.req.table.is_bits:
            for name, _, off in self.items:
                out[name] = bool(data[off])
            return
        buf = registers_to_bytes(data)
        plain = self.plain
        try:
            raw = plain[0].unpack_from(buf) if plain is not None else ()
        except struct.error:  # a short answer: each tag on its own, as the decoders always did
            plain, raw = None, ()
        slots = plain[1] if plain is not None else None
        for i, (name, dec, off) in enumerate(self.items):
            slot = slots[i] if slots is not None else None
            if slot is None:
                out[name] = dec(buf, off)  # type: ignore[misc]
            else:
                index, scale, offset = slot
                # the same arithmetic as the tag's decoder (codec._scaled): exact when 1 and 0
                out[name] = raw[index] if scale == 1.0 and offset == 0.0 else raw[index] * scale + offset


def _plain_unpack(req: ReadRequest) -> tuple[struct.Struct, list[tuple[int, float, float] | None]] | None:
    """One big-endian struct for the request's plain numeric tags (pad bytes between them), and
    each tag's place in it (None: its own decoder); None when fewer than two tags qualify. A tag
    overlapping the one before it keeps its own decoder."""
    fmt, pos = [">"], 0
    slots: list[tuple[int, float, float] | None] = [None] * len(req.tags)
    n = 0
    for i, t in sorted(enumerate(req.tags), key=lambda it: it[1].address):
        code = plain_code(t)
        start = 2 * (t.address - req.address)
        if code is None or start < pos:
            continue
        fmt.append(f"{start - pos}x{code}" if start > pos else code)
        pos = start + struct.calcsize(">" + code)
        slots[i] = (n, t.scale, t.offset)
        n += 1
    return (struct.Struct("".join(fmt)), slots) if n >= 2 else None
