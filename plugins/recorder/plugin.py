"""The ``recorder`` plugin: alarm-triggered captures for root cause analysis.

Its options name trigger rules; the agent's capture service (``ctx.agent.recorder``) keeps a
pre-trigger ring buffer of the raw readings of the instances the rules record, and when a rule
fires saves ``pre_s`` seconds before plus ``post_s`` after, with a snapshot of every instance's
latest values and qualities, into the state dir (bounded; the oldest evicted and counted). The
plugin itself only configures the service and publishes its counters each poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
from edge_agent.plugins.contract import (
    CaptureService,
    DType,
    Options,
    Plugin,
    PluginContext,
    PluginSpec,
    ValueRef,
    ValueSpec,
)

Scalar = str | int | float | bool


class ValueTrigger(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Fire when a published value becomes equal to ``equals`` or goes above/below a limit."""

    instance: str
    key: str  # dotted key as published ("bearing_nde.temp_c", "m03_fault")
    equals: Scalar | None = None
    above: float | None = None
    below: float | None = None


class Rule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """One trigger rule: an event (kind, optional source instance and field values) or a value."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    event: str | None = None  # event kind: "bearing_fault", "alarm", "state_change", "iso_zone"...
    instance: str | None = None  # only events of this instance
    match: dict[str, Scalar] = {}  # event fields that must be equal: {active = true}, {to_state = "fault"}
    value: ValueTrigger | None = None
    record: list[str] = []  # instances whose raw readings are saved; default: the trigger's instance
    pre_s: Annotated[float, msgspec.Meta(ge=0, le=120)] = 10.0
    post_s: Annotated[float, msgspec.Meta(ge=0, le=120)] = 5.0
    # the published features (velocity, zone, temperatures...) of the recorded instances this long
    # before the trigger: minutes of baseline for a row per message, where raw samples cost MBs
    features_pre_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 300.0
    holdoff_s: Annotated[float, msgspec.Meta(ge=0, le=7 * 86400)] = 300.0  # one capture per rule per this


class RecorderOptions(Options, kw_only=True):
    rules: list[Rule]
    max_mb: Annotated[float, msgspec.Meta(gt=0, le=10_000)] = 100.0  # on disk, all captures
    max_captures: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 200
    # bytes of captures written in any 24 h (the SD card's share, docs/deployment.md); a capture
    # beyond it is skipped and a capture_skipped event says so: 20 MB/day is ~14 captures of
    # 30 s of a 3.2-kHz accelerometer, and keeps the reference plant within 50 MB/day in all
    daily_mb: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 20.0


def check(o: RecorderOptions, driver_type: str | None) -> list[str]:
    """Each rule has exactly one trigger; names are unique."""
    out: list[str] = []
    if driver_type is not None:
        out.append("driver: recorder takes no driver (it records other instances)")
    names = [r.name for r in o.rules]
    if len(set(names)) != len(names):
        out.append("rules: rule names must be unique")
    for i, r in enumerate(o.rules):
        if (r.event is None) == (r.value is None):
            out.append(f"rules[{i}]: give either event = KIND or value = {{instance, key, ...}}")
        if r.value is not None and [r.value.equals, r.value.above, r.value.below].count(None) != 2:
            out.append(f"rules[{i}].value: give exactly one of equals, above, below")
        if r.event is None and not r.record and r.value is not None:
            pass  # records the value's instance
    return out


class RecorderPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.service: CaptureService | None = ctx.agent.recorder

    async def start(self) -> None:
        if self.service is None:  # outside an agent (the plugin kit, a harness): nothing to record
            self.ctx.log.warning("recorder: no capture service (not running in an agent); nothing is recorded")
            return
        self.service.configure(self.ctx.instance, self.ctx.options)

    async def poll(self) -> None:
        self.ctx.emit(self.service.stats() if self.service is not None else dict.fromkeys(STATS, 0))

    async def close(self) -> None:
        if self.service is not None:
            self.service.unconfigure(self.ctx.instance)


STATS = {
    "captures": ("", "captures in the store now"),
    "disk_bytes": ("B", "bytes of captures on disk"),
    "saved_total": ("", "captures saved, lifetime"),
    "evicted_total": ("", "captures evicted (oldest first) to stay within max_mb / max_captures"),
    "suppressed_total": ("", "triggers within a rule's hold-off, not saved"),
    "skipped_total": ("", "captures skipped for the daily budget (daily_mb), each with a capture_skipped event"),
    "written_24h_bytes": ("B", "bytes of captures written in the last 24 h (against daily_mb)"),
    "ring_bytes": ("B", "memory held by the pre-trigger ring buffers"),
    "ring_instances": ("", "instances with a ring buffer"),
}


def declared(o: RecorderOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    """The capture service's counters."""
    return [ValueSpec(k, DType.INT, unit, what) for k, (unit, what) in STATS.items()]


def references(o: RecorderOptions) -> list[ValueRef]:
    """Value triggers name another instance's value: check-config checks it exists."""
    refs = []
    for i, r in enumerate(o.rules):
        if r.value is not None:
            numeric = r.value.above is not None or r.value.below is not None
            refs.append(
                ValueRef(
                    f"rules[{i}].value.key",
                    r.value.key,
                    r.value.instance,
                    f"rules[{i}].value.instance",
                    numeric=numeric,
                )
            )
    return refs


SPEC = PluginSpec(
    name="recorder",
    factory=RecorderPlugin,
    options=RecorderOptions,
    requires=None,
    description="Alarm-triggered captures: pre-trigger ring buffers, snapshot, bounded store",
    check=check,
    values=declared,
    references=references,
)
