"""The ``values`` plugin: publish the named values a driver returns, by exception.

Works with any driver that provides ``values`` (sim, serial instruments, third-party drivers).
A driver error marks every known value with the error's quality and raises one event per fault
episode; the last good value is never republished as fresh.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from edge_agent.drivers.contract import Capability, Values
from edge_agent.drivers.errors import DriverError
from edge_agent.plugins.common.declared import driver_values
from edge_agent.plugins.common.report_by_exception import Deadband, ReportByException
from edge_agent.plugins.contract import Options, Plugin, PluginContext, PluginSpec, Severity


class ValuesOptions(Options):
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # absolute, in the values' unit
    heartbeat_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0  # 0 = every value every poll
    report_by_exception: bool = True
    round_digits: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None


class ValuesPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        o: ValuesOptions = ctx.options
        self.rbe = (
            ReportByException(heartbeat_s=o.heartbeat_s, default=Deadband(absolute=o.deadband))
            if o.report_by_exception
            else None
        )
        self.known: list[str] = []
        self.faulted = False

    async def poll(self) -> None:
        now = self.ctx.clock.monotonic()
        try:
            reading: Values = await self.ctx.read()
        except DriverError as exc:
            self._fault(exc, now)
            return
        if self.faulted:
            self.faulted = False
            self.ctx.event("sensor_ok", "readings are good again", Severity.INFO)
        values: dict[str, Any] = dict(reading.values)
        digits = self.ctx.options.round_digits
        if digits is not None:
            values = {k: round(v, digits) if isinstance(v, float) else v for k, v in values.items()}
        self.known = list(values)
        quality = {k: str(q) for k, q in reading.quality.items()}
        if self.rbe is not None:
            values, quality = self.rbe.filter(values, quality, now)
        if values:
            self.ctx.emit(values, quality, ts_ms=reading.ts_ms)

    def _fault(self, exc: DriverError, now: float) -> None:
        q = exc.quality
        if not self.faulted:
            self.faulted = True
            self.ctx.event("sensor_fault", str(exc), Severity.ALARM, quality=q)
        marks = {k: None for k in self.known}
        quality = dict.fromkeys(self.known, q)
        if self.rbe is not None:
            marks, quality = self.rbe.filter(marks, quality, now)
        if marks:
            self.ctx.emit(marks, quality)


SPEC = PluginSpec(
    name="values",
    factory=ValuesPlugin,
    options=ValuesOptions,
    requires=Capability.VALUES,
    values=driver_values,
    description="Publish a driver's named values with deadband and heartbeat",
)
