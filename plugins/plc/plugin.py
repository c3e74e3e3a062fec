"""The ``plc`` plugin: publish PLC tags by exception, report faults once per episode, write tags.

Reads through any driver providing ``registers`` (the ``modbus`` driver). Each tag's deadband
comes from the tag map (``deadband`` absolute, or ``deadband_percent`` of ``max - min``), else
from this plugin's defaults. A tag whose read failed is published as ``null`` with its quality
(timeout, illegal_address, device_busy, comm_error) once, when the quality changes.

Command ``write`` (``cmd/write`` routed to this instance): ``{"tag": "sp01", "value": 42.5}``;
only for tags marked ``writable = true`` and only when ``allow_writes = true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from edge_agent.drivers.contract import Capability, Values, Writable
from edge_agent.drivers.errors import DriverError
from edge_agent.plugins.common.declared import driver_values
from edge_agent.plugins.common.report_by_exception import Deadband, ReportByException
from edge_agent.plugins.contract import Options, Plugin, PluginContext, PluginSpec, Severity, UnknownCommand

MAX_NAMES_IN_EVENT = 10


class PlcOptions(Options):
    heartbeat_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0  # 0 = every tag every poll
    report_by_exception: bool = True  # false = publish every tag every poll
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # default absolute band, tag's unit
    deadband_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0  # default, of the tag's span
    allow_writes: bool = False  # the cmd/write command; tags must also be writable = true


def tag_bands(driver: Any, o: PlcOptions) -> tuple[Deadband, dict[str, Deadband]]:
    """The default band and per-tag bands taken from the driver's tag map (if it has one)."""
    bands: dict[str, Deadband] = {}
    for tag in getattr(driver, "tags", ()):
        span = (tag.max - tag.min) if tag.min is not None and tag.max is not None else 0.0
        absolute = tag.deadband or o.deadband
        percent = tag.deadband_percent or o.deadband_percent
        if absolute or (percent and span):
            bands[tag.name] = Deadband(absolute=absolute, percent=percent, span=span)
    return Deadband(absolute=o.deadband), bands


def _names(names: list[str]) -> str:
    more = len(names) - MAX_NAMES_IN_EVENT
    return ", ".join(names[:MAX_NAMES_IN_EVENT]) + (f" (+{more} more)" if more > 0 else "")


class PlcPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        o: PlcOptions = ctx.options
        default, bands = tag_bands(ctx.driver, o)
        self.rbe = ReportByException(heartbeat_s=o.heartbeat_s, default=default, bands=bands)
        self.publish_all = not o.report_by_exception
        self.known: list[str] = [t.name for t in getattr(ctx.driver, "tags", ())]
        self.device_fault: str | None = None  # quality of the current device-level fault
        self.bad: dict[str, str] = {}  # tag -> quality, for per-tag fault episodes

    async def poll(self) -> None:
        now = self.ctx.clock.monotonic()
        try:
            reading: Values = await self.ctx.read()
        except DriverError as exc:
            self._device_failed(exc, now)
            return
        if self.device_fault is not None:
            self.device_fault = None
            self.ctx.event("device_ok", "the PLC answers again", Severity.INFO)
        values: dict[str, Any] = dict(reading.values)
        quality = {k: str(q) for k, q in reading.quality.items()}
        for name in quality:
            values.setdefault(name, None)
        self._tag_episodes(quality)
        self._publish(values, quality, now, reading.ts_ms)

    def _publish(self, values: dict[str, Any], quality: dict[str, str], now: float, ts_ms: int | None) -> None:
        if self.publish_all:
            out, out_q = values, quality
        else:
            out, out_q = self.rbe.filter(values, quality, now)
        if out:
            self.ctx.emit(out, out_q, ts_ms=ts_ms)

    def _device_failed(self, exc: DriverError, now: float) -> None:
        q = str(exc.quality)
        if self.device_fault != q:
            self.device_fault = q
            self.ctx.event("device_fault", str(exc), Severity.ALARM, quality=q)
        marks = dict.fromkeys(self.known, None)
        self._publish(marks, dict.fromkeys(self.known, q), now, None)

    def _tag_episodes(self, quality: Mapping[str, str]) -> None:
        """One event per group of tags turning bad (per quality), one when they are good again."""
        new: dict[str, list[str]] = {}
        for name, q in quality.items():
            if self.bad.get(name) != q:
                new.setdefault(q, []).append(name)
        for q, names in new.items():
            msg = f"{len(names)} tag(s) {q}: {_names(names)}"
            self.ctx.event("tag_fault", msg, Severity.WARNING, quality=q, tags=names)
        recovered = [n for n in self.bad if n not in quality]
        if recovered:
            self.ctx.event(
                "tag_ok", f"{len(recovered)} tag(s) good again: {_names(recovered)}", Severity.INFO, tags=recovered
            )
        self.bad = dict(quality)

    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """``write``: write one writable tag; ValueError explains a refused write."""
        if name != "write":
            raise UnknownCommand(name)
        if not self.ctx.options.allow_writes:
            raise ValueError("writes are disabled for this instance (options.allow_writes = false)")
        tag, value = args.get("tag"), args.get("value")
        if not isinstance(tag, str) or "value" not in args:
            raise ValueError('write needs {"tag": "<name>", "value": <value>}')
        driver = self.ctx.driver
        if not isinstance(driver, Writable):
            raise ValueError("this instance's driver cannot write")
        written = await self.ctx.call(driver.write, tag, value)
        self.ctx.event("tag_write", f"{tag} := {written!r}", Severity.INFO, tag=tag, value=written)
        return {"tag": tag, "value": written, "ok": True}


SPEC = PluginSpec(
    name="plc",
    factory=PlcPlugin,
    options=PlcOptions,
    requires=Capability.REGISTERS,
    values=driver_values,
    description="PLC tags by exception (deadband, heartbeat), fault events, guarded tag writes",
)
