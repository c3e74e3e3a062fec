"""The ``gpio`` plugin: publish inputs, counters and tachometer rpm by exception; drive outputs.

Values are named after the driver's inputs (``part_count``, ``shaft_rpm``...), so other instances
read them through the data link (the production plugin reads a part counter, vibration order
analysis reads an rpm). Outputs are driven only by rules configured here (none by default): an
output is on while a value another instance published is above/below a limit, or truthy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from edge_agent.drivers.contract import Capability, Values, Writable
from edge_agent.drivers.errors import DriverError
from edge_agent.plugins.common.report_by_exception import Deadband, ReportByException
from edge_agent.plugins.contract import Options, Plugin, PluginContext, PluginSpec, Severity, ValueRef, ValueSpec


class Source(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    instance: str
    key: str


class OutputRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Switch driver output ``output`` on while ``source`` is above / below a limit (or truthy)."""

    output: str
    source: Source
    above: float | None = None
    below: float | None = None


class GpioPluginOptions(Options):
    heartbeat_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0  # 0 = every value every poll
    rpm_deadband: Annotated[float, msgspec.Meta(ge=0)] = 1.0  # rpm; counts and states: every change
    outputs: list[OutputRule] = []


def rule_wants_on(rule: OutputRule, value: Any) -> bool:
    """Whether a rule's output should be on for the linked value (missing value: off)."""
    if value is None:
        return False
    if rule.above is None and rule.below is None:
        return bool(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (rule.above is not None and value > rule.above) or (rule.below is not None and value < rule.below)


def _tacho_names(driver: Any) -> list[str]:
    inputs = getattr(getattr(driver, "o", None), "inputs", ())
    return [c.name for c in inputs if str(getattr(c, "kind", "")) == "tachometer"]


class GpioPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        o: GpioPluginOptions = ctx.options
        bands = {name: Deadband(absolute=o.rpm_deadband) for name in _tacho_names(ctx.driver)}
        self.rbe = ReportByException(heartbeat_s=o.heartbeat_s, bands=bands)
        self.known: list[str] = []
        self.fault: str | None = None
        self.outputs: dict[str, bool] = {}

    async def poll(self) -> None:
        now = self.ctx.clock.monotonic()
        try:
            reading: Values = await self.ctx.read()
        except DriverError as exc:
            if self.fault is None:
                self.ctx.event("sensor_fault", str(exc), Severity.ALARM, quality=exc.quality)
            self.fault = exc.quality
            values, quality = self.rbe.filter(dict.fromkeys(self.known), dict.fromkeys(self.known, exc.quality), now)
        else:
            if self.fault is not None:
                self.fault = None
                self.ctx.event("sensor_ok", "GPIO readings are good again", Severity.INFO)
            self.known = list(reading.values)
            values, quality = self.rbe.filter(dict(reading.values), {}, now)
        if values:
            self.ctx.emit(values, quality)
        await self._drive_outputs()

    async def _drive_outputs(self) -> None:
        for rule in self.ctx.options.outputs:
            got = self.ctx.link.latest(rule.source.instance, rule.source.key)
            on = rule_wants_on(rule, None if got is None else got[0])
            if self.outputs.get(rule.output, False) == on:  # outputs start off
                continue
            driver = self.ctx.driver
            if not isinstance(driver, Writable):
                return
            self.outputs[rule.output] = on
            try:
                await self.ctx.call(driver.write, rule.output, on)
            except ValueError as exc:  # an output the driver does not have: say so once
                self.ctx.event("output_error", str(exc), Severity.WARNING, output=rule.output)
                continue
            word = "on" if on else "off"
            self.ctx.event("output", f"{rule.output} {word}", Severity.INFO, output=rule.output, on=on)

    async def close(self) -> None:
        """Outputs go off with the instance (the driver switches them off when it closes)."""
        self.outputs.clear()


def check(o: GpioPluginOptions, driver_type: str | None) -> list[str]:
    """Cross-field checks: an output rule with both limits must make sense."""
    return [
        f"outputs[{i}].below: must not exceed above when both are set"
        for i, r in enumerate(o.outputs)
        if r.above is not None and r.below is not None and r.below > r.above
    ]


def declared(o: GpioPluginOptions, driver: Sequence[ValueSpec]) -> Sequence[ValueSpec]:
    """The driver's inputs, unchanged."""
    return driver


def references(o: GpioPluginOptions) -> list[ValueRef]:
    """The values output rules follow (another instance's; numeric with above/below)."""
    return [
        ValueRef(
            f"outputs[{i}].source.key",
            r.source.key,
            r.source.instance,
            f"outputs[{i}].source.instance",
            numeric=r.above is not None or r.below is not None,
        )
        for i, r in enumerate(o.outputs)
    ]


SPEC = PluginSpec(
    name="gpio",
    factory=GpioPlugin,
    options=GpioPluginOptions,
    requires=Capability.DIGITAL,
    description="GPIO inputs, part counters and tachometer rpm by exception; outputs driven by rules",
    check=check,
    values=declared,
    references=references,
)
