"""The ``modbus`` driver object: open, read the plan, write a tag, close (all ``async def``)."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from typing import Any

from edge_agent.drivers.contract import Quality, Scalar, Values
from edge_agent.drivers.errors import CommError, DeviceTimeout, DriverError
from edge_agent.drivers.modbus.backends import (
    Backoff,
    CompiledRequest,
    ExceptionCode,
    PymodbusSource,
    SimSource,
    Source,
)
from edge_agent.drivers.modbus.codec import encode_value
from edge_agent.drivers.modbus.options import Backend, ModbusOptions, all_tags
from edge_agent.drivers.modbus.plan import ReadRequest, build_plan, split
from edge_agent.drivers.modbus.tags import DataType, Order, PollClass, Table, Tag

log = logging.getLogger(__name__)


class ModbusDriver:
    """One connection (TCP host or serial line) with one or more unit ids behind it."""

    def __init__(self, options: ModbusOptions) -> None:
        self.o = options
        self.tags = all_tags(options)
        self.by_name = {t.name: t for t in self.tags}
        self.limits = options.limits()
        self.plan = [CompiledRequest(r) for r in build_plan(self.tags, options.unit_id, self.limits)]
        self.isolated: dict[str, Quality] = {}  # tags dropped from the plan after isolation
        self._rng = random.Random()
        self._conn = Backoff(options.backoff_min_s, options.backoff_max_s, self._rng)
        self._units: dict[int, Backoff] = {}
        self._unit_error: dict[int, Quality] = {}
        self._answered: set[int] = set()  # units that answered in the last read
        self.source: Source | None = None
        self.reads = 0
        self.requests_sent = 0

    def _make_source(self) -> Source:
        if self.o.backend is Backend.SIM:
            return SimSource(self.tags, self.o)
        return PymodbusSource(self.o)

    async def open(self) -> None:
        """Create the client and try to connect; a device that is down is retried by ``read``."""
        self.source = self._make_source()
        try:
            await self.source.connect()
        except DriverError as exc:
            self._conn.fail(time.monotonic())
            log.warning("%s (will retry)", exc)

    async def close(self) -> None:
        """Close the connection (safe twice)."""
        if self.source is not None:
            self.source.close()
            self.source = None

    def _unit(self, unit_id: int) -> Backoff:
        if unit_id not in self._units:
            self._units[unit_id] = Backoff(self.o.backoff_min_s, self.o.backoff_max_s, self._rng)
        return self._units[unit_id]

    async def _ensure_connected(self, now: float) -> Source:
        if self.source is None:
            raise DriverError("modbus: read before open")
        if self.source.connected:
            return self.source
        if not self._conn.ready(now):
            raise CommError(f"modbus: not connected, next attempt in {self._conn.until - now:.1f} s")
        try:
            await self.source.connect()
        except DriverError:
            self._conn.fail(now)
            raise
        self._conn.ok()
        return self.source

    def due(self, req: ReadRequest) -> bool:
        """Whether a request is read this time (slow ones every ``slow_every`` reads)."""
        return req.poll is PollClass.FAST or (self.reads - 1) % self.o.slow_every == 0

    async def read(self) -> Values:
        """Read every due request; tags of failed requests get a quality instead of a value."""
        ts_ms = time.time_ns() // 1_000_000
        now = time.monotonic()
        self.reads += 1
        source = await self._ensure_connected(now)
        values: dict[str, Scalar] = {}
        quality: dict[str, Quality] = dict(self.isolated)
        errors: list[DriverError] = []
        ok = 0
        answered: set[int] = set()
        for comp in list(self.plan):
            if not self.due(comp.req):
                continue
            err = await self._read_one(source, comp, now, values, quality)
            if err is None:
                ok += 1
                answered.add(comp.req.unit_id)
            else:
                errors.append(err)
                if isinstance(err, CommError):
                    break
        if self.isolated and not errors and self.reads % self.o.reprobe_every == 0:
            await self._reprobe(source, values, quality)
        self._answered = answered
        return self._finish(values, quality, errors, ok, ts_ms)

    async def _reprobe(self, source: Source, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
        """Try isolated tags alone again (a PLC program download may have added the address)."""
        for name in list(self.isolated):
            req = build_plan([self.by_name[name]], self.o.unit_id, self.limits)[0]
            try:
                self.requests_sent += 1
                data = await source.read(req.table, req.unit_id, req.address, req.count)
            except ExceptionCode:
                continue
            except DriverError:
                return
            comp = CompiledRequest(req)
            comp.decode(data, values)
            self.plan.append(comp)
            del self.isolated[name]
            quality.pop(name, None)
            log.info("tag %s answers again; read on its own until the instance restarts", name)

    def _finish(
        self,
        values: dict[str, Scalar],
        quality: dict[str, Quality],
        errors: list[DriverError],
        ok: int,
        ts_ms: int,
    ) -> Values:
        if any(isinstance(e, CommError) for e in errors) and self.source is not None:
            self.source.close()
            self._conn.fail(time.monotonic())
        if errors and ok == 0 and not values:
            raise errors[0]  # the whole device failed: one device-level error
        for comp in self.plan:  # tags skipped by a CommError break
            for t in comp.req.tags:
                if t.name not in values and t.name not in quality and self.due(comp.req):
                    quality[t.name] = Quality.COMM_ERROR
        return Values(values, quality, ts_ms)

    async def _read_one(
        self,
        source: Source,
        comp: CompiledRequest,
        now: float,
        values: dict[str, Scalar],
        quality: dict[str, Quality],
    ) -> DriverError | None:
        req = comp.req
        unit = self._unit(req.unit_id)
        # A silent unit backs off so its timeouts do not delay the units that answer; when none
        # answers there is nothing to protect: ask every read, so recovery (or a busy PLC) shows
        # at the next poll instead of after a backoff of up to backoff_max_s.
        if not unit.ready(now) and self._answered - {req.unit_id}:
            q = self._unit_error.get(req.unit_id, Quality.TIMEOUT)
            quality.update(dict.fromkeys((t.name for t in req.tags), q))
            return DeviceTimeout(f"unit {req.unit_id}: backing off after {q}")
        try:
            await self._pause()
            self.requests_sent += 1
            data = await source.read(req.table, req.unit_id, req.address, req.count)
        except ExceptionCode as exc:
            if exc.code == 2 and len(req.tags) > 1:
                return await self._isolate(source, comp, values, quality)
            quality.update(dict.fromkeys((t.name for t in req.tags), Quality(exc.quality)))
            return exc
        except (DeviceTimeout, CommError) as exc:
            quality.update(dict.fromkeys((t.name for t in req.tags), Quality(exc.quality)))
            if isinstance(exc, DeviceTimeout):
                delay = unit.fail(now)
                self._unit_error[req.unit_id] = Quality.TIMEOUT
                log.warning("%s; unit %d backs off %.1f s", exc, req.unit_id, delay)
            return exc
        unit.ok()
        comp.decode(data, values)
        return None

    async def _pause(self) -> None:
        if self.o.inter_request_delay_s > 0 and self.requests_sent:
            await asyncio.sleep(self.o.inter_request_delay_s)

    async def _isolate(
        self, source: Source, comp: CompiledRequest, values: dict[str, Scalar], quality: dict[str, Quality]
    ) -> DriverError | None:
        """Split a request that hit an illegal address until the bad tags stand alone."""
        good: list[CompiledRequest] = []
        pending = [comp.req]
        while pending:
            req = pending.pop()
            halves = split(req, self.limits)
            for part in halves or ():
                try:
                    self.requests_sent += 1
                    data = await source.read(part.table, part.unit_id, part.address, part.count)
                except DriverError as exc:
                    if not isinstance(exc, ExceptionCode) or exc.code != 2:
                        quality.update(dict.fromkeys((t.name for t in part.tags), Quality(exc.quality)))
                        good.append(CompiledRequest(part))  # keep it planned; only illegal addresses drop
                        continue
                    if len(part.tags) == 1:
                        self.isolated[part.tags[0].name] = Quality.ILLEGAL_ADDRESS
                    else:
                        pending.append(part)
                    continue
                c = CompiledRequest(part)
                c.decode(data, values)
                good.append(c)
        self._replace(comp, good)
        bad = [t.name for t in comp.req.tags if t.name in self.isolated]
        quality.update(dict.fromkeys(bad, Quality.ILLEGAL_ADDRESS))
        if not bad:
            return None
        log.warning("unit %d: illegal address isolated to tag(s) %s", comp.req.unit_id, ", ".join(bad))
        return ExceptionCode(2, f"unit {comp.req.unit_id} tag(s) {', '.join(bad)}")

    def _replace(self, comp: CompiledRequest, parts: list[CompiledRequest]) -> None:
        i = self.plan.index(comp)
        parts.sort(key=lambda c: c.req.address)
        self.plan[i : i + 1] = parts

    async def write(self, name: str, value: Any) -> Scalar:
        """Write one writable tag (type and range checked); return the value written."""
        tag = self.by_name.get(name)
        if tag is None or not tag.writable:
            raise ValueError(f"tag {name!r} is not a writable tag")
        checked = check_write_value(tag, value)
        source = await self._ensure_connected(time.monotonic())
        regs = encode_value(tag, checked)
        unit = self.o.unit_id if tag.unit_id is None else tag.unit_id
        mask = None
        if tag.type is DataType.BIT:
            shift = ((tag.bit or 0) + (8 if tag.byte_order is Order.LITTLE else 0)) % 16
            mask, regs = 1 << shift, [int(bool(checked)) << shift]
        await source.write(tag.table, unit, tag.address, regs, mask)
        return checked


def check_write_value(tag: Tag, value: Any) -> Scalar:
    """Type and range check of a value to write; ValueError with a clear message."""
    if isinstance(value, float) and not math.isfinite(value):  # NaN passes every min/max comparison
        raise ValueError(f"{tag.name}: {value!r} is not a finite number (never written)")
    if tag.type in (DataType.BOOL, DataType.BIT):
        if not isinstance(value, bool) and value not in (0, 1):
            raise ValueError(f"{tag.name}: expected true/false, got {value!r}")
        return bool(value)
    if tag.type is DataType.STRING:
        if not isinstance(value, str):
            raise ValueError(f"{tag.name}: expected a string, got {type(value).__name__}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{tag.name}: expected a number, got {value!r}")
    if (tag.min is not None and value < tag.min) or (tag.max is not None and value > tag.max):
        raise ValueError(f"{tag.name}: {value} is outside {tag.min}..{tag.max} {tag.unit}".rstrip())
    encode_value(tag, value)  # raises when the raw type cannot hold it
    return value


__all__ = ["ModbusDriver", "Table", "check_write_value"]
