"""The ``production`` plugin: counts, rate, run state, time per state and OEE per shift and rolling.

It has no driver: it reads the latest values other instances published (a PLC counter tag, a
GPIO part counter, a running signal...) through the local data link, named by
``{instance = "...", key = "..."}``. The math lives in :mod:`plugins.common.counters` and
:mod:`plugins.production.oee`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from edge_agent.plugins.common.counters import CounterEvent, CounterTracker, EnergyCounter, RateWindow
from edge_agent.plugins.common.state_store import state_store
from edge_agent.plugins.contract import (
    DType,
    Options,
    Plugin,
    PluginContext,
    PluginSpec,
    Severity,
    ValueRef,
    ValueSpec,
)
from edge_agent.plugins.production.oee import (
    Oee,
    Rolling,
    RunState,
    Shift,
    Totals,
    classify,
    current_shift,
    oee,
    shift_end,
)

STATE_KEY = "production"  # the plugin's key in the state store
TOP_REASONS = 5
BEGUN_KEPT = 8  # shifts remembered as begun: more than a step back can reach into

HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Source(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A value another instance publishes: ``{instance = "plc", key = "line00_part_count"}``."""

    instance: str
    key: str


class ShiftConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    start: HHMM  # local time in ``timezone``
    end: HHMM  # <= start: ends the next day
    days: list[Annotated[int, msgspec.Meta(ge=0, le=6)]] = msgspec.field(
        default_factory=lambda: [0, 1, 2, 3, 4, 5, 6]
    )  # weekdays the shift starts on, 0 = Monday


class ProductionOptions(Options, kw_only=True):
    total_count: Source  # counter of all parts
    good_count: Source | None = None  # counter of good parts, or:
    reject_count: Source | None = None  # counter of rejects (good = total - rejects); neither: all good
    counter_bits: Literal[16, 32, 64] = 32
    rate_window_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 60.0
    running: Source | None = None  # boolean signal: running (true) / idle (false)
    fault: Source | None = None  # boolean signal: fault
    planned_stop: Source | None = None  # boolean signal: planned stop (break, changeover, maintenance)
    reason: Source | None = None  # reported with every state transition
    min_rate_per_min: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # without `running`: running above this
    ideal_cycle_time_s: Annotated[float, msgspec.Meta(gt=0)]
    shifts: list[ShiftConfig] = []  # none: one open-ended period
    timezone: str = "UTC"  # IANA name of the plant's local time
    rolling_window_s: Annotated[float, msgspec.Meta(gt=0, le=7 * 86400)] = 3600.0
    energy_kwh: Source | None = None  # an energy meter's kWh counter (e.g. a Modbus meter's tag)
    power_kw: Source | None = None  # the meter's active power, published beside the energy figures


def _time(text: str) -> dt.time:
    h, m = (int(x) for x in text.split(":"))
    return dt.time(h, m)


def check(o: ProductionOptions, driver_type: str | None) -> list[str]:
    """Cross-field checks: time zone, shift names, good vs reject counters."""
    out: list[str] = []
    try:
        ZoneInfo(o.timezone)
    except Exception:  # zoneinfo raises several types for bad keys
        out.append(f"timezone: unknown time zone {o.timezone!r}")
    names = [s.name for s in o.shifts]
    if len(set(names)) != len(names):
        out.append("shifts: shift names must be unique")
    if o.good_count is not None and o.reject_count is not None:
        out.append("good_count: give good_count or reject_count, not both")
    if driver_type is not None:
        out.append("driver: production reads other instances through the data link and takes no driver")
    return out


def _energy(out: dict[str, Any], t: Totals) -> dict[str, Any]:
    """Energy figures of a period: kWh, idle kWh, kWh per good part (None before the first)."""
    per_part = t.kwh_per_good_part()
    out.update(
        energy_kwh=round(t.energy_kwh, 4),
        idle_energy_kwh=round(t.idle_kwh, 4),
        kwh_per_good_part=None if per_part is None else round(per_part, 5),
    )
    return out


def _factors(prefix: dict[str, Any], f: Oee) -> dict[str, Any]:
    prefix.update(availability=f.availability, performance=f.performance, quality=f.quality, oee=f.oee)
    return prefix


class ProductionPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        o: ProductionOptions = ctx.options
        self.o = o
        self.tz = ZoneInfo(o.timezone)
        self.shifts = [Shift(s.name, _time(s.start), _time(s.end), frozenset(s.days)) for s in o.shifts]
        self.total = CounterTracker(o.counter_bits)
        self.second = CounterTracker(o.counter_bits)  # good or reject counter
        self.rate = RateWindow(o.rate_window_s)
        self.rolling = Rolling(o.rolling_window_s, bucket_s=max(1.0, o.rolling_window_s / 60))
        self.lifetime = Totals()
        self.shift_totals = Totals()
        self.shift_key: tuple[str, dt.datetime] | None = None
        # the last shifts begun (name, start): never begun again (a step back into a reported one)
        self.begun: list[tuple[str, dt.datetime]] = []
        self.energy = EnergyCounter()
        self.state: RunState | None = None
        self.state_since = 0.0
        self.last_s: float | None = None
        self.store = state_store(ctx)

    async def start(self) -> None:
        """Take back the figures of the running shift (and the lifetime totals) after a restart."""
        saved = self.store.load(self.ctx.instance, STATE_KEY)
        if not isinstance(saved, dict):
            return
        try:
            self.lifetime = Totals.from_dict(saved["lifetime"])
            if saved.get("shift_key"):
                name, started = saved["shift_key"]
                self.shift_key = (str(name), dt.datetime.fromisoformat(started))
                self.shift_totals = Totals.from_dict(saved["shift"])
            begun = saved.get("begun") or ([list(saved["shift_key"])] if saved.get("shift_key") else [])
            self.begun = [(str(n), dt.datetime.fromisoformat(t)) for n, t in begun]
            self.total.last, self.second.last = saved.get("total_last"), saved.get("second_last")
            self.energy.last = saved.get("energy_last")
        except (KeyError, TypeError, ValueError) as exc:  # a damaged or foreign entry: start afresh
            self.ctx.log.warning("production: saved state not usable (%s); counting from zero", exc)
            self.lifetime, self.shift_key, self.shift_totals = Totals(), None, Totals()

    def _save(self) -> None:
        key = None if self.shift_key is None else [self.shift_key[0], self.shift_key[1].isoformat()]
        self.store.save(
            self.ctx.instance,
            STATE_KEY,
            {
                "lifetime": self.lifetime.to_dict(),
                "shift_key": key,
                "shift": self.shift_totals.to_dict(),
                "begun": [[n, t.isoformat()] for n, t in self.begun],
                "total_last": self.total.last,
                "second_last": self.second.last,
                "energy_last": self.energy.last,
            },
        )

    def _link(self, src: Source | None) -> Any:
        if src is None:
            return None
        got = self.ctx.link.latest(src.instance, src.key)
        return None if got is None else got[0]

    def _kwh(self) -> float:
        raw = self._link(self.o.energy_kwh)
        if not isinstance(raw, (int, float)) or isinstance(raw, bool) or raw != raw:
            return 0.0
        return self.energy.update(float(raw))

    def _signal(self, src: Source | None) -> bool | None:
        v = self._link(src)
        return None if v is None else bool(v)

    def _counts(self) -> tuple[int, int]:
        """Increments of (total, good) since the last poll; counter events become events."""
        raw = self._link(self.o.total_count)
        if not isinstance(raw, (int, float)):
            return 0, 0
        step = self.total.update(int(raw))
        self._counter_event("total_count", step.event)
        second_src = self.o.good_count or self.o.reject_count
        raw2 = self._link(second_src)
        if second_src is None or not isinstance(raw2, (int, float)):
            return step.increment, step.increment
        step2 = self.second.update(int(raw2))
        self._counter_event("good_count" if self.o.good_count else "reject_count", step2.event)
        good = step2.increment if self.o.good_count else step.increment - step2.increment
        return step.increment, max(0, min(good, step.increment))

    def _counter_event(self, which: str, event: CounterEvent) -> None:
        if event is CounterEvent.RESET:
            self.ctx.event(
                "counter_reset", f"{which} was reset; counting on from its new value", Severity.INFO, counter=which
            )

    async def poll(self) -> None:
        now = self.ctx.clock.monotonic()
        elapsed = 0.0 if self.last_s is None else now - self.last_s
        # the interval since the last poll belongs to the shift its midpoint falls in
        wall = dt.datetime.fromtimestamp(self.ctx.clock.time_ms() / 1000 - elapsed / 2, self.tz)
        self.last_s = now
        total, good = self._counts()
        self.rate.add(now, total)
        rate = self.rate.rate_per_min(now)
        state = classify(
            planned_stop=self._signal(self.o.planned_stop),
            fault=self._signal(self.o.fault),
            running=self._signal(self.o.running),
            rate_per_min=rate,
            min_rate_per_min=self.o.min_rate_per_min,
        )
        kwh = self._kwh()
        reason = self._link(self.o.reason)
        self._transition(state, now)
        self._roll_shift(wall)
        why = None if reason in (None, "", 0) else str(reason)
        for t in (self.lifetime, self.shift_totals):
            t.add(state, elapsed, total, good, kwh, why)
        self.rolling.add(now, state, elapsed, total, good, kwh)
        self._save()
        self.ctx.emit(self._values(state, now, rate))

    def _transition(self, state: RunState, now: float) -> None:
        if state == self.state:
            return
        if self.state is not None:
            fields: dict[str, Any] = {
                "from_state": str(self.state),
                "to_state": str(state),
                "previous_s": round(now - self.state_since, 3),
            }
            reason = self._link(self.o.reason)
            if reason is not None:
                fields["reason"] = reason
            sev = Severity.WARNING if state is RunState.FAULT else Severity.INFO
            msg = f"{self.state} -> {state}" + (f" ({reason})" if reason is not None else "")
            self.ctx.event("state_change", msg, sev, **fields)
        self.state, self.state_since = state, now

    def _roll_shift(self, wall: dt.datetime) -> None:
        cur = current_shift(self.shifts, wall) if self.shifts else None
        key = None if cur is None else (cur[0].name, cur[1])
        if key == self.shift_key or self._stepped_back(key, wall):
            return
        if self.shift_key is not None:
            summary = self._shift_values(self.shift_key[0])
            summary["started"] = self.shift_key[1].isoformat()
            # a clock that jumped past the shift's end (a step forward) ends it at its calendar end
            summary["ended"] = min(wall, self._end_of(self.shift_key)).isoformat(timespec="seconds")
            summary["timezone"] = self.o.timezone  # the plant's local time, for the shift report
            summary["downtime_top"] = [[r, round(s, 1)] for r, s in self.shift_totals.top_downtime(TOP_REASONS)]
            self.ctx.event(
                "shift_end", f"shift {self.shift_key[0]} ended: OEE {summary['oee']:.3f}", Severity.INFO, **summary
            )
        self.shift_key = key
        self.shift_totals = Totals()
        if key is not None:
            self.begun = [*self.begun, key][-BEGUN_KEPT:]

    def _stepped_back(self, key: tuple[str, dt.datetime] | None, wall: dt.datetime) -> bool:
        """The wall clock stepped back (issue 29): a time before the running shift's start does not
        end it, and a shift that began before does not begin again (no second report of it). The
        shift's time per state runs on the monotonic clock, so nothing is counted twice."""
        if self.shift_key is not None and wall < self.shift_key[1]:
            return True
        return key in self.begun

    def _end_of(self, key: tuple[str, dt.datetime]) -> dt.datetime:
        shift = next((s for s in self.shifts if s.name == key[0]), None)
        return key[1] + dt.timedelta(days=1) if shift is None else shift_end(shift, key[1])

    def _shift_values(self, name: str) -> dict[str, Any]:
        t = self.shift_totals
        out: dict[str, Any] = {"name": name, "count_total": t.total, "count_good": t.good}
        out["count_scrap"] = t.total - t.good
        out.update({f"{s}_s": round(v, 3) for s, v in t.seconds.items()})
        if self.o.energy_kwh is not None:
            _energy(out, t)
        return _factors(out, oee(t, self.o.ideal_cycle_time_s))

    def _values(self, state: RunState, now: float, rate: float) -> dict[str, Any]:
        values: dict[str, Any] = {
            "state": str(state),
            "state_s": round(now - self.state_since, 3),
            "rate_parts_per_min": rate,
            "count_total": self.lifetime.total,
            "count_good": self.lifetime.good,
        }
        if self.shift_key is not None:
            values["shift"] = self._shift_values(self.shift_key[0])
        rolling: dict[str, Any] = {"window_s": self.o.rolling_window_s}
        totals = self.rolling.totals()
        if self.o.energy_kwh is not None:
            _energy(rolling, totals)
        values["rolling"] = _factors(rolling, oee(totals, self.o.ideal_cycle_time_s))
        power = self._link(self.o.power_kw)
        if isinstance(power, (int, float)) and not isinstance(power, bool):
            values["power_kw"] = float(power)
        return values


def _oee(prefix: str, what: str) -> list[ValueSpec]:
    return [
        ValueSpec(f"{prefix}.{k}", DType.FLOAT32, "", f"{k} (0..1) {what}")
        for k in ("availability", "performance", "quality", "oee")
    ]


def declared(o: ProductionOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    """State, rate and counts; per-shift values with ``shifts``; the rolling OEE."""
    out = [
        ValueSpec("state", DType.STR, "", "running, idle, fault or planned_stop"),
        ValueSpec("state_s", DType.FLOAT64, "s", "time in the current state"),
        ValueSpec("rate_parts_per_min", DType.FLOAT32, "parts/min", "over rate_window_s"),
        ValueSpec("count_total", DType.INT, "parts", "since the instance started"),
        ValueSpec("count_good", DType.INT, "parts", "since the instance started"),
    ]
    if o.shifts:
        out.append(ValueSpec("shift.name", DType.STR, "", "the current shift (absent outside every shift)"))
        out += [ValueSpec(f"shift.{s}_s", DType.FLOAT64, "s", f"time {s} in this shift") for s in RunState]
        out += [
            ValueSpec(f"shift.count_{k}", DType.INT, "parts", f"{k} parts in this shift") for k in ("total", "good")
        ]
        out.append(ValueSpec("shift.count_scrap", DType.INT, "parts", "scrap parts in this shift"))
        out += _oee("shift", "this shift so far")
        if o.energy_kwh is not None:
            out += _energy_specs("shift", "this shift so far")
    out.append(ValueSpec("rolling.window_s", DType.FLOAT32, "s", "the rolling window"))
    if o.energy_kwh is not None:
        out += _energy_specs("rolling", "over the rolling window")
    if o.power_kw is not None:
        out.append(ValueSpec("power_kw", DType.FLOAT32, "kW", "active power from the energy meter"))
    return out + _oee("rolling", "over the rolling window")


def _energy_specs(prefix: str, what: str) -> list[ValueSpec]:
    return [
        ValueSpec(f"{prefix}.energy_kwh", DType.FLOAT64, "kWh", f"energy {what}"),
        ValueSpec(f"{prefix}.idle_energy_kwh", DType.FLOAT64, "kWh", f"energy while not running, {what}"),
        ValueSpec(f"{prefix}.kwh_per_good_part", DType.FLOAT64, "kWh/part", f"energy per good part {what}"),
    ]


def references(o: ProductionOptions) -> list[ValueRef]:
    """The counters and signals read from other instances."""
    refs: list[ValueRef] = []
    names = ("total_count", "good_count", "reject_count", "running", "fault", "planned_stop", "reason")
    for name in (*names, "energy_kwh", "power_kw"):
        src = getattr(o, name)
        if src is not None:
            numeric = name.endswith("_count") or name in ("energy_kwh", "power_kw")
            refs.append(ValueRef(f"{name}.key", src.key, src.instance, f"{name}.instance", numeric=numeric))
    return refs


SPEC = PluginSpec(
    name="production",
    factory=ProductionPlugin,
    options=ProductionOptions,
    requires=None,
    description="Part counters to rate, run state, time per state and OEE per shift and rolling",
    check=check,
    values=declared,
    example={
        "total_count": {"instance": "gpio", "key": "part_count"},
        "ideal_cycle_time_s": 1.8,
        "shifts": [{"name": "early", "start": "06:00", "end": "14:00"}],
    },
    references=references,
)
