"""The ``maintenance`` plugin: preventive maintenance counters and plans per asset.

Per asset it counts running hours (from a run signal, a speed above a threshold or a vibration
level above one, read from other instances through the data link), start/stop cycles and parts,
and judges each plan (every N running hours, cycles, parts or calendar days, whichever first).
A plan falling due raises ``maintenance_due``, going past its grace ``maintenance_overdue``; the
payload is a CMMS work request. ``cmd/maintenance_done`` resets a plan and is recorded. Counters
and plan states live in the agent's state store (survive restarts, pushes and upgrades).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec
from edge_agent.plugins.common.counters import CounterTracker
from edge_agent.plugins.common.state_store import state_store
from edge_agent.plugins.contract import (
    DType,
    Options,
    Plugin,
    PluginContext,
    PluginSpec,
    Severity,
    UnknownCommand,
    ValueRef,
    ValueSpec,
)
from edge_agent.plugins.maintenance.plans import Counters, PlanState, Status, judge, progress

Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
BASES = {"running_hours": "every_hours", "cycles": "every_cycles", "parts": "every_parts", "days": "every_days"}


class RunSource(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Running while the value is true, or above ``above`` (a speed in rpm, a velocity in mm/s)."""

    instance: str
    key: str
    above: float | None = None
    max_age_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0  # older: not known, counted as not running


class CountSource(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    instance: str
    key: str
    counter_bits: int = 32


class Plan(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    id: Id
    task: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    every_hours: Annotated[float, msgspec.Meta(gt=0)] | None = None
    every_cycles: Annotated[int, msgspec.Meta(gt=0)] | None = None
    every_parts: Annotated[int, msgspec.Meta(gt=0)] | None = None
    every_days: Annotated[float, msgspec.Meta(gt=0)] | None = None
    grace_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] = 10.0  # overdue this far past due
    priority: str = "normal"  # passed to the CMMS work request
    work_center: str = ""


class Asset(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    name: Id
    run: RunSource | None = None
    parts: CountSource | None = None
    functional_location: str = ""  # SAP PM functional location / Maximo location
    equipment: str = ""  # the CMMS equipment / asset number
    plans: list[Plan] = []


class MaintenanceOptions(Options, kw_only=True):
    assets: list[Asset]


def check(o: MaintenanceOptions, driver_type: str | None) -> list[str]:
    out: list[str] = []
    if driver_type is not None:
        out.append("driver: maintenance reads other instances through the data link and takes no driver")
    if len({a.name for a in o.assets}) != len(o.assets):
        out.append("assets: asset names must be unique")
    for i, a in enumerate(o.assets):
        if len({p.id for p in a.plans}) != len(a.plans):
            out.append(f"assets[{i}].plans: plan ids must be unique")
        for j, p in enumerate(a.plans):
            if not any(getattr(p, f) for f in BASES.values()):
                out.append(f"assets[{i}].plans[{j}]: give at least one of {', '.join(BASES.values())}")
            if p.every_hours and a.run is None:
                out.append(f"assets[{i}].plans[{j}].every_hours: the asset has no run source")
            if p.every_cycles and a.run is None:
                out.append(f"assets[{i}].plans[{j}].every_cycles: the asset has no run source")
            if p.every_parts and a.parts is None:
                out.append(f"assets[{i}].plans[{j}].every_parts: the asset has no parts source")
    return out


def _intervals(p: Plan) -> dict[str, float]:
    return {b: float(getattr(p, f)) for b, f in BASES.items() if getattr(p, f)}


def _counters(basis: dict[str, float]) -> dict[str, float | int]:
    """The asset's counters as a planner reads them (the calendar basis is not a counter)."""
    return {
        "running_hours": round(basis["running_hours"], 3),
        "cycles": int(basis["cycles"]),
        "parts": int(basis["parts"]),
    }


def _iso(s: float) -> str:
    return dt.datetime.fromtimestamp(s, dt.UTC).isoformat(timespec="seconds")


class MaintenancePlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.o: MaintenanceOptions = ctx.options
        self.store = state_store(ctx)
        self.counters = {a.name: Counters() for a in self.o.assets}
        self.trackers = {a.name: CounterTracker(a.parts.counter_bits) for a in self.o.assets if a.parts}
        self.plans: dict[tuple[str, str], PlanState] = {}
        self.last_s: float | None = None

    async def start(self) -> None:
        saved = self.store.load(self.ctx.instance, "state") or {}
        now = self._wall()
        for a in self.o.assets:
            c = dict(saved.get("counters", {}).get(a.name) or {})
            self.counters[a.name] = Counters(
                float(c.get("running_s", 0)), int(c.get("cycles", 0)), int(c.get("parts", 0)), None
            )
            if a.name in self.trackers:
                self.trackers[a.name].last = c.get("parts_last")
            for p in a.plans:
                d = saved.get("plans", {}).get(f"{a.name}/{p.id}")
                # a new plan starts counting now (not from the asset's whole life)
                self.plans[(a.name, p.id)] = (
                    PlanState.from_dict(d) if isinstance(d, dict) else PlanState(self._basis(a.name, now))
                )

    def _wall(self) -> float:
        return self.ctx.clock.time_ms() / 1000.0

    def _basis(self, asset: str, now_s: float) -> dict[str, float]:
        return self.counters[asset].as_basis(now_s)

    def _running(self, a: Asset) -> bool:
        if a.run is None:
            return False
        got = self.ctx.link.latest(a.run.instance, a.run.key)
        if got is None or got[1] > a.run.max_age_s or got[0] is None:
            return False
        v = got[0]
        if a.run.above is None:
            return bool(v)
        return isinstance(v, (int, float)) and float(v) > a.run.above

    def _parts(self, a: Asset) -> int:
        if a.parts is None:
            return 0
        got = self.ctx.link.latest(a.parts.instance, a.parts.key)
        if got is None or not isinstance(got[0], (int, float)) or isinstance(got[0], bool):
            return 0
        return self.trackers[a.name].update(int(got[0])).increment

    async def poll(self) -> None:
        now_m = self.ctx.clock.monotonic()
        elapsed = 0.0 if self.last_s is None else now_m - self.last_s
        self.last_s = now_m
        wall = self._wall()
        out: dict[str, Any] = {}
        for a in self.o.assets:
            c = self.counters[a.name]
            c.add(self._running(a), elapsed, self._parts(a))
            basis = self._basis(a.name, wall)
            plans = {p.id: self._judge(a, p, basis, wall) for p in a.plans}
            out[a.name] = {
                "running": bool(c.running),
                "running_h": round(c.running_s / 3600.0, 4),
                "cycles": c.cycles,
                "parts": c.parts,
                "plans": plans,
            }
        self._save()
        self.ctx.emit(out)

    def _judge(self, a: Asset, p: Plan, basis: dict[str, float], wall: float) -> dict[str, Any]:
        st = self.plans[(a.name, p.id)]
        intervals = _intervals(p)
        used = progress(intervals, basis, st.done_at)
        status, which = judge(used, p.grace_percent / 100.0)
        if status is not st.status:
            if status is Status.DUE or (status is Status.OVERDUE and st.due_since_s is None):
                st.due_since_s = wall
            if status is not Status.OK:
                self._tell(a, p, status, which, basis, st, intervals)
            st.status = status
        left = {f"{b}_left": round(intervals[b] * (1 - used[b]), 3) for b in intervals}
        return {
            "task": p.task,
            "status": str(status),
            "basis": which,
            "used_pct": round(100 * max(used.values()), 1),
            **left,
        }

    def _tell(
        self,
        a: Asset,
        p: Plan,
        status: Status,
        basis: str | None,
        now: dict[str, float],
        st: PlanState,
        intervals: dict[str, float],
    ) -> None:
        since = {b: round(now[b] - st.done_at.get(b, 0.0), 3) for b in intervals}
        request = {
            "asset": a.name,
            "equipment": a.equipment,
            "functional_location": a.functional_location,
            "plan": p.id,
            "task": p.task,
            "basis": basis,
            "interval": intervals,
            "since_last_done": since,
            "counters": _counters(now),
            "due_since": _iso(st.due_since_s or self._wall()),
            "priority": "high" if status is Status.OVERDUE else p.priority,
            "work_center": p.work_center,
            "agent_instance": self.ctx.instance,
        }
        kind = "maintenance_due" if status is Status.DUE else "maintenance_overdue"
        sev = Severity.WARNING if status is Status.DUE else Severity.ALARM
        what = f"{since[basis]:g} {basis.replace('_', ' ')} of {intervals[basis]:g}" if basis else ""
        self.ctx.event(kind, f"{a.name}: {p.task} {status} ({what})", sev, work_request=request)

    def _save(self) -> None:
        counters = {
            n: {
                "running_s": c.running_s,
                "cycles": c.cycles,
                "parts": c.parts,
                "parts_last": self.trackers[n].last if n in self.trackers else None,
            }
            for n, c in self.counters.items()
        }
        plans = {f"{a}/{p}": st.to_dict() for (a, p), st in self.plans.items()}
        self.store.save(self.ctx.instance, "state", {"counters": counters, "plans": plans})

    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """``maintenance_done`` {asset, plan, by, notes, work_order}: reset the plan; recorded."""
        if name != "maintenance_done":
            raise UnknownCommand(name)
        asset, plan, by = args.get("asset"), args.get("plan"), args.get("by")
        if not isinstance(by, str) or not by.strip():
            raise ValueError('"by": who did the work is required')
        a = next((x for x in self.o.assets if x.name == asset), None)
        if a is None:
            raise ValueError(f"asset: unknown {asset!r} (known: {[x.name for x in self.o.assets]})")
        if (a.name, plan) not in self.plans:
            raise ValueError(f"plan: unknown {plan!r} for {a.name} (known: {[p.id for p in a.plans]})")
        st = self.plans[(a.name, str(plan))]
        wall = self._wall()
        basis = self._basis(a.name, wall)
        rec = {
            "asset": a.name,
            "plan": plan,
            "by": by.strip(),
            "notes": str(args.get("notes", ""))[:2000],
            "work_order": str(args.get("work_order", ""))[:64],
            "was": str(st.status),
            "counters": _counters(basis),
            "done": _iso(wall),
        }
        rec["record_id"] = self.store.record("maintenance_done", self.ctx.instance, rec)
        self.plans[(a.name, str(plan))] = PlanState(basis)
        self._save()
        self.ctx.event("maintenance_done", f"{a.name}: {plan} done by {rec['by']}", Severity.INFO, **rec)
        return rec


def declared(o: MaintenanceOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    """Per asset its counters and, per plan, status and what is left on each basis."""
    out: list[ValueSpec] = []
    for a in o.assets:
        out += [
            ValueSpec(f"{a.name}.running", DType.BOOL, "", "running now (from the run source)"),
            ValueSpec(f"{a.name}.running_h", DType.FLOAT64, "h", "running hours, lifetime"),
            ValueSpec(f"{a.name}.cycles", DType.INT, "", "start/stop cycles, lifetime"),
            ValueSpec(f"{a.name}.parts", DType.INT, "parts", "parts, lifetime"),
        ]
        for p in a.plans:
            k = f"{a.name}.plans.{p.id}"
            out += [
                ValueSpec(f"{k}.task", DType.STR, "", "the task"),
                ValueSpec(f"{k}.status", DType.STR, "", "ok, due or overdue"),
                ValueSpec(f"{k}.basis", DType.STR, "", "the basis furthest along"),
                ValueSpec(f"{k}.used_pct", DType.FLOAT32, "%", "of the interval used on that basis"),
            ]
            units = {"running_hours": "h", "cycles": "", "parts": "parts", "days": "d"}
            out += [ValueSpec(f"{k}.{b}_left", DType.FLOAT64, units[b], f"{b} left") for b in _intervals(p)]
    return out


def references(o: MaintenanceOptions) -> list[ValueRef]:
    """The run and parts sources, read from other instances."""
    refs: list[ValueRef] = []
    for i, a in enumerate(o.assets):
        if a.run is not None:
            refs.append(
                ValueRef(
                    f"assets[{i}].run.key",
                    a.run.key,
                    a.run.instance,
                    f"assets[{i}].run.instance",
                    numeric=a.run.above is not None,
                )
            )
        if a.parts is not None:
            refs.append(
                ValueRef(
                    f"assets[{i}].parts.key", a.parts.key, a.parts.instance, f"assets[{i}].parts.instance", numeric=True
                )
            )
    return refs


SPEC = PluginSpec(
    name="maintenance",
    factory=MaintenancePlugin,
    options=MaintenanceOptions,
    requires=None,
    description="Preventive maintenance: running hours, cycles, parts per asset; plans due/overdue as CMMS requests",
    check=check,
    values=declared,
    references=references,
)
