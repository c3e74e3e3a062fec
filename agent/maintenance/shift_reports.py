"""Shift reports: what happened on a line during a shift, assembled when ``production`` ends it.

Per line (a ``production`` instance) the agent accumulates, from what every instance publishes:
alarms raised (per instance, and each one with its kind, time and duration), the worst ISO
20816-3 (10816-3) zone per vibration asset with the bearing faults and machine diagnoses active
beside it, temperature alarms per channel, which maintenance plans are due, and the time not
monitored (the agent down, an instance faulty). At the line's ``shift_end`` event the report is
the production figures of that event plus these, stored as a permanent record, published
retained on ``{p}/{agent}/report/{line}`` and announced by a ``shift_report`` event. The
accumulators are saved in the state store, so a restart within the shift loses nothing (and
the time the agent was down is known). Times in the data are UTC (``*_ms``, ``*_utc``); the
report names the plant's time zone (the production instance's ``timezone``) for people.

The wall clock can step (issue 29). The production figures (time per state, OEE) run on the
monotonic clock and never see it; the stamps kept here (alarm episodes, the agent's gaps) are
moved by the step at the ``clock_step`` event, so a duration stays what passed, and the report
lists the steps of its shift (``clock_steps``, summed in ``clock_step_s``): when no step crosses
the shift's start or end, its wall-clock span minus that sum is the time that passed. Time a
step forward skipped is never "agent not running".
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from edge_agent.agent import clock
from edge_agent.agent.alarms.model import alarm_change
from edge_agent.agent.maintenance.planner import Planner
from edge_agent.plugins.contract import Severity, StateStore

NS = "report"
ZONES = "ABCD"
ALIVE_SAVE_MS = 30_000  # how often "the agent is alive" is saved: a SIGKILL misstates the gap by at most this
GAP_MS = 5_000  # a shorter gap between the shift's start and the agent's first reading is start-up, not down time
MAX_EPISODES = 500  # alarms kept per shift (a chattering alarm must not grow the report without bound)
DIAGNOSES = ("machine_fault", "bearing_fault")  # what the vibration plugin diagnoses
# an instance that cannot read (docs/messages.md "Instance events"): its time is not monitored
NOT_MONITORING = ("sensor_fault", "sensor_ok", "device_fault", "device_ok", "driver_hung", "driver_recovered")
EventFn = Callable[[str, str, str, Severity, dict[str, Any]], None]


def _empty(now_ms: int) -> dict[str, Any]:
    # episodes: every alarm, diagnosis or fault of the shift {id, instance, kind, name, category, raised_ms, cleared_ms}
    return {
        "alarms": {},
        "iso": {},
        "temp_alarms": {},
        "episodes": [],
        "since_ms": now_ms,
        "alive_ms": now_ms,
        "gaps": [],
        "clock_steps": [],
    }


def utc_iso(ms: float) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _ms(iso: Any) -> int | None:
    """An ISO 8601 time with its offset (as the production plugin writes it) in ms, or None."""
    try:
        t = dt.datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    return round((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp() * 1000)


def _category(kind: str) -> str:
    """alarm; diagnosis (a machine or bearing fault); fault (the instance is not monitoring, not an alarm)."""
    if kind in DIAGNOSES:
        return "diagnosis"
    return "fault" if kind in NOT_MONITORING else "alarm"


class ShiftReports:
    """Accumulators per line; ``plugin_of(instance)`` names each instance's plugin."""

    def __init__(
        self,
        store: StateStore,
        plugin_of: Callable[[str], str | None],
        publish: Callable[[str, dict[str, Any]], None],
        event: EventFn,
        planner: Planner | None = None,
        clock_check: Callable[[], object] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.plugin_of, self.publish, self.event = store, plugin_of, publish, event
        # announces a clock step not yet seen (ClockWatch.look_for_step): a step that ended the
        # shift is then in its report, not in the next one's
        self.clock_check = clock_check
        self.acc: dict[str, dict[str, Any]] = {}
        # per line: when its sign of life was last saved (monotonic s: a cadence, whatever the wall clock does)
        self.alive_saved_s: dict[str, float] = {}
        self.monotonic = monotonic
        # what is due comes from the agent's planner (fed by the service); alone, from one of its own
        self.own_planner = planner is None
        self.planner = planner or Planner(store, lambda i: plugin_of(i) == "maintenance", lambda d: None)

    def _line(self, instance: str) -> dict[str, Any] | None:
        """The accumulator of a production instance (taken back from the store after a restart)."""
        acc = self.acc.get(instance)
        if acc is None and self.plugin_of(instance) == "production":
            now = clock.now_ms()
            saved = self.store.load(NS, instance)
            acc = self.acc[instance] = saved if isinstance(saved, dict) else _empty(now)
            alive = acc.get("alive_ms")
            if isinstance(alive, int) and now - alive > GAP_MS:  # the agent was down (or not running) since
                acc.setdefault("gaps", []).append({"from_ms": alive, "to_ms": now})
            acc["alive_ms"] = now
        return acc

    def _each(self) -> list[tuple[str, dict[str, Any]]]:
        return [(line, acc) for line, acc in list(self.acc.items()) if self.plugin_of(line) == "production"]

    def on_data(self, instance: str, values: Mapping[str, Any]) -> None:
        acc = self.acc.get(instance) or self._line(instance)
        if acc is not None:
            now = clock.now_ms()
            acc["alive_ms"] = now
            # against the last save, not the last reading: readings every 10 s must still be saved
            mono = self.monotonic()
            if instance not in self.alive_saved_s or (mono - self.alive_saved_s[instance]) * 1000 >= ALIVE_SAVE_MS:
                self.store.save(NS, instance, acc)
                self.alive_saved_s[instance] = mono
        zone = values.get("iso_zone")
        if isinstance(zone, str) and zone in ZONES:
            for line, acc in self._each():
                old = acc["iso"].get(instance)
                if old is None or zone > old:
                    acc["iso"][instance] = zone
                    self.store.save(NS, line, acc)
        if self.own_planner:
            self.planner.on_data(instance, values)

    def on_event(self, instance: str, kind: str, severity: str, fields: Mapping[str, Any]) -> None:
        if kind == "shift_end" and self._line(instance) is not None:
            self.clock_check()
            self._report(instance, dict(fields))
            return
        if kind == "clock_step" and instance == "agent":
            self._clock_step(fields)
            return
        now = clock.now_ms()
        for _, acc in self._each():
            acc["alive_ms"] = now  # an event is a sign of life too (saved with what it changes)
        change = alarm_change(instance, kind, severity, "", fields)
        if change is not None:
            self._episode(instance, kind, change.id, change.name, change.active, fields)
        raised = (kind == "alarm" and fields.get("active") is True) or (
            kind != "alarm" and fields.get("active") is not False and severity in ("alarm", "critical")
        )
        if not raised:
            return
        for line, acc in self._each():
            if kind == "machine_fault":
                faults = acc.setdefault("machine_faults", {}).setdefault(instance, {})
                faults[str(fields.get("fault"))] = {k: fields.get(k) for k in ("confidence", "evidence")}
            acc["alarms"][instance] = acc["alarms"].get(instance, 0) + 1
            if kind == "alarm" and self.plugin_of(instance) == "temperature":
                channel = str(fields.get("feature", "?")).split(".")[0]
                key = f"{instance}/{channel}"
                entry = acc["temp_alarms"].setdefault(key, {"count": 0, "levels": []})
                entry["count"] += 1
                if fields.get("level") not in entry["levels"]:
                    entry["levels"].append(fields.get("level"))
            self.store.save(NS, line, acc)

    def _clock_step(self, fields: Mapping[str, Any]) -> None:
        """Move every kept stamp by the step (durations stay what passed) and note the step."""
        shift_ms = round(float(fields["step_s"]) * 1000)
        step = {k: fields[k] for k in ("from_ms", "to_ms", "step_s")}
        for line, acc in self._each():
            # since_ms stays: like the shift's start, it was judged by the clock before the step
            acc["alive_ms"] = int(acc["alive_ms"]) + shift_ms
            for span in [*acc.get("episodes", []), *acc.get("gaps", [])]:
                for key in ("raised_ms", "cleared_ms", "from_ms", "to_ms"):
                    if span.get(key) is not None:
                        span[key] = int(span[key]) + shift_ms
            acc.setdefault("clock_steps", []).append(dict(step))
            self.store.save(NS, line, acc)

    def _episode(self, instance: str, kind: str, cid: str, name: str, active: bool, fields: Mapping[str, Any]) -> None:
        """Open an episode when an alarm, diagnosis or fault is raised; close the open one when it clears."""
        now = clock.now_ms()
        for line, acc in self._each():
            episodes: list[dict[str, Any]] = acc.setdefault("episodes", [])
            open_one = next((e for e in reversed(episodes) if e["id"] == cid and e["cleared_ms"] is None), None)
            if active and open_one is None and len(episodes) < MAX_EPISODES:
                episodes.append(
                    {
                        "id": cid,
                        "instance": instance,
                        "kind": kind,
                        "name": name,
                        "category": _category(kind),
                        "raised_ms": now,
                        "cleared_ms": None,
                        **({"confidence": fields["confidence"]} if "confidence" in fields else {}),
                    }
                )
            elif active and open_one is not None and "confidence" in fields:
                open_one["confidence"] = max(float(open_one.get("confidence") or 0), float(fields["confidence"]))
            elif not active and open_one is not None:
                open_one["cleared_ms"] = now
            else:
                continue
            self.store.save(NS, line, acc)

    def _report(self, line: str, shift: dict[str, Any]) -> None:
        now = clock.now_ms()
        acc = self.acc.get(line) or _empty(now)
        shift.pop("kind", None)
        for k in ("severity", "msg"):
            shift.pop(k, None)
        start_ms, end_ms = _ms(shift.get("started")) or acc["since_ms"], _ms(shift.get("ended")) or now
        episodes = [_clipped(e, start_ms, end_ms) for e in acc.get("episodes", [])]
        episodes.sort(key=lambda e: e["raised_ms"])
        report = {
            "line": line,
            "shift": shift.get("name"),
            "started": shift.get("started"),
            "ended": shift.get("ended"),
            "started_utc": utc_iso(start_ms),
            "ended_utc": utc_iso(end_ms),
            "time_zone": str(shift.get("timezone") or "UTC"),
            "production": shift,
            "alarms_raised": sum(acc["alarms"].values()),
            "alarms_by_instance": acc["alarms"],
            "alarms": [e for e in episodes if e["category"] == "alarm"],
            "worst_iso_zone": acc["iso"],
            "diagnoses": [e for e in episodes if e["category"] == "diagnosis"],
            "machine_faults": acc.get("machine_faults", {}),
            "temperature_alarms": acc["temp_alarms"],
            "not_monitored": _not_monitored(acc, episodes, start_ms, end_ms),
            "maintenance_due": self.planner.due(),
            **_clock_steps(acc.get("clock_steps", [])),
        }
        report["record_id"] = self.store.record(NS, line, report)
        self.acc[line] = _next_shift(acc, end_ms, now)
        self.store.save(NS, line, self.acc[line])
        self.publish(line, report)
        oee = shift.get("oee")
        self.event(
            line,
            "shift_report",
            f"shift report {report['shift']} ({report['started']}): OEE {oee if oee is None else round(float(oee), 3)}",
            Severity.INFO,
            {"shift": report["shift"], "record_id": report["record_id"]},
        )

    def find(self, line: str | None, shift: str | None, limit: int = 1) -> list[dict[str, Any]]:
        """Stored reports, newest first, of one line (or all) and one shift name (or any)."""
        out = [r for r in self.store.records(NS, line, limit=500) if shift is None or r.get("shift") == shift]
        return out[:limit]


def _next_shift(acc: Mapping[str, Any], end_ms: int, now_ms: int) -> dict[str, Any]:
    """The accumulator of the shift that began at ``end_ms``, made when its ``shift_end`` came in
    (the production instance's next poll, up to its interval later). It starts at the boundary,
    not now: the agent watched through it, so those seconds are not "agent not running". What
    goes on goes on from the boundary: alarms still active, and down time that reached past it."""
    nxt = _empty(now_ms)
    nxt["since_ms"] = min(end_ms, now_ms)
    nxt["episodes"] = [{**e, "raised_ms": end_ms} for e in acc.get("episodes", []) if e["cleared_ms"] is None]
    nxt["gaps"] = [
        {"from_ms": max(int(g["from_ms"]), end_ms), "to_ms": int(g["to_ms"])}
        for g in acc.get("gaps", [])
        if int(g["to_ms"]) > end_ms
    ]
    return nxt


def _clipped(e: Mapping[str, Any], start_ms: int, end_ms: int) -> dict[str, Any]:
    """An episode as reported: UTC times, its duration within the shift, whether it was still active."""
    raised = max(int(e["raised_ms"]), start_ms)
    cleared = e.get("cleared_ms")
    until = min(int(cleared), end_ms) if cleared is not None else end_ms
    out = {k: v for k, v in e.items() if k not in ("raised_ms", "cleared_ms")}
    out.update(
        raised_ms=raised,
        raised_utc=utc_iso(raised),
        cleared_utc=None if cleared is None else utc_iso(int(cleared)),
        duration_s=round(max(0, until - raised) / 1000, 1),
        active_at_end=cleared is None,
    )
    return out


def _clock_steps(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The steps of the wall clock in a shift and their sum ``clock_step_s``."""
    out = [{**c, "to_utc": utc_iso(int(c["to_ms"]))} for c in steps]
    return {"clock_steps": out, "clock_step_s": round(sum(float(c["step_s"]) for c in out), 3)}


def _minus(spans: list[tuple[int, int]], cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``spans`` outside every ``cut`` (all half-open, in ms)."""
    for cut_lo, cut_hi in cuts:
        spans = [p for lo, hi in spans for p in ((lo, min(hi, cut_lo)), (max(lo, cut_hi), hi)) if p[1] > p[0]]
    return spans


def _not_monitored(
    acc: Mapping[str, Any], episodes: list[dict[str, Any]], start_ms: int, end_ms: int
) -> dict[str, Any]:
    """Time nobody watched: the agent down (before its first reading of the shift, between runs) and
    each instance faulty (sensor, device or driver fault). Seconds per cause, and the periods."""
    periods: list[dict[str, Any]] = []
    since = int(acc.get("since_ms") or start_ms)
    jumped = [(int(c["from_ms"]), int(c["to_ms"])) for c in acc.get("clock_steps", []) if c["to_ms"] > c["from_ms"]]
    for lo, hi in _minus([(start_ms, since)], jumped):  # time a step forward skipped nobody missed
        if hi - lo > GAP_MS:
            periods.append({"what": "agent", "reason": "agent not running", "from_ms": lo, "to_ms": hi})
    for gap in acc.get("gaps", []):
        lo, hi = max(int(gap["from_ms"]), start_ms), min(int(gap["to_ms"]), end_ms)
        if hi > lo:
            periods.append({"what": "agent", "reason": "agent down", "from_ms": lo, "to_ms": hi})
    for e in episodes:
        if e["category"] == "fault" and e["duration_s"] > 0:
            lo = int(e["raised_ms"])
            periods.append(
                {"what": e["instance"], "reason": e["name"], "from_ms": lo, "to_ms": lo + round(e["duration_s"] * 1000)}
            )
    for p in periods:
        p.update(
            from_utc=utc_iso(p["from_ms"]),
            to_utc=utc_iso(p["to_ms"]),
            duration_s=round((p["to_ms"] - p["from_ms"]) / 1000, 1),
        )
    seconds: dict[str, float] = {}
    for p in periods:
        seconds[p["what"]] = round(seconds.get(p["what"], 0.0) + p["duration_s"], 1)
    return {"seconds": seconds, "periods": periods}
