"""The state store (batched writes, records), the capture service (ring, hold-off, eviction) and
the shift report accumulators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from edge_agent.agent.maintenance import capture_store
from edge_agent.agent.maintenance.capture_store import Recorder, Ring
from edge_agent.agent.maintenance.shift_reports import ShiftReports
from edge_agent.agent.maintenance.store import SqliteStore
from edge_agent.drivers.contract import ThermalFrame, Values, Waveform
from edge_agent.plugins.contract import MemoryStore, Severity
from edge_agent.plugins.recorder.plugin import RecorderOptions, Rule
from support import scaled


def test_store_batches_saves_into_one_commit_and_reloads(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "m.sqlite")
    for i in range(100):  # a poll's worth of saves from several plugins
        s.save("line1", "production", {"n": i})
        s.save("maint", "state", {"n": i})
    assert s.commits == 0
    assert s.flush() == 2 and s.commits == 1
    assert s.flush() == 0 and s.commits == 1  # nothing changed: no write
    rid = s.record("calibration", "plc/t1", {"by": "ann"})
    s.close()
    again = SqliteStore(tmp_path / "m.sqlite")
    assert again.load("line1", "production") == {"n": 99}
    assert again.records("calibration")[0]["id"] == rid and again.records("calibration")[0]["by"] == "ann"
    again.close()


def test_store_that_cannot_open_keeps_working_in_memory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    s = SqliteStore(tmp_path / "file" / "m.sqlite")  # (root ignores read-only modes: a file as parent)
    assert s.fault
    s.save("a", "b", 1)
    assert s.load("a", "b") == 1 and s.flush() == 0
    assert s.records("x") == [] and s.record("x", "n", {"k": 1}) == 1
    s.close()


def test_ring_keeps_the_last_seconds() -> None:
    r = Ring(keep_s=0.05)
    wf = Waveform(np.zeros((100, 3), np.float32), 1000.0, ("x", "y", "z"), 0, raw=np.zeros((100, 3), np.int16))
    r.add(wf)
    assert r.nbytes == 600  # int16 counts are kept, not the float samples
    time.sleep(0.08)
    r.add(wf)
    assert len(r.items) == 1 and r.nbytes == 600


def test_ring_keeps_thermal_frames_themselves() -> None:
    r = Ring(keep_s=10.0)
    frame = np.arange(768, dtype=np.float32).reshape(24, 32)
    r.add(ThermalFrame(values={"max_c": 767.0}, frame_c=frame, ta_c=30.0, emissivity=0.95))
    payload = r.items[0][2]
    assert payload["shape"] == [24, 32] and payload["emissivity"] == 0.95 and payload["values"] == {"max_c": 767.0}
    assert np.array_equal(np.frombuffer(payload["frame_c"], "<f4").reshape(24, 32), frame)
    assert r.nbytes == 48 + 768 * 4


def _opts(**kw: Any) -> RecorderOptions:
    rule = Rule(name="hot", event="alarm", match={"active": True}, record=["probe"], pre_s=0.2, post_s=0.1, **kw)
    return RecorderOptions(rules=[rule], max_captures=2)


class _WallClock:
    """The capture store's `time` module, with a wall clock the test moves instead of sleeping."""

    def __init__(self) -> None:
        self.ahead_ns = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def time_ns(self) -> int:
        return time.time_ns() + self.ahead_ns


async def _until(pred: Callable[[], bool], what: str) -> None:
    """Let the loop run until `pred` holds (post-trigger timers, the writer thread)."""
    deadline = time.monotonic() + scaled(10)
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_triggers_hold_off_eviction_and_pre_trigger_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wall = _WallClock()
    monkeypatch.setattr(capture_store, "time", wall)

    async def run() -> None:
        events: list[tuple[Any, ...]] = []
        rec = Recorder(tmp_path / "caps", lambda *a: events.append(a), MemoryStore())
        rec.configure("rec", _opts(holdoff_s=0.0))
        for i in range(5):
            rec.feed("probe", Values({"v": float(i)}))
            await asyncio.sleep(0.05)
        rec.on_data("other", {"temp": 40.0}, {"temp": "uncertain"})
        rec.on_event("probe", "alarm", {"active": False})  # no match
        rec.on_event("probe", "alarm", {"active": True})
        rec.feed("probe", Values({"v": 99.0}))
        await _until(lambda: rec.saved == 1, "the first capture")
        saved = [e for e in events if e[1] == "capture_saved"]
        assert len(saved) == 1
        doc = msgpack.unpackb(rec.get(saved[0][4]["id"]), raw=False)
        rows = doc["series"]["probe"]["rows"]
        assert any(r["t_s"] < 0 for r in rows) and any(r["values"]["v"] == 99.0 for r in rows)
        assert doc["snapshot"]["other"] == {"values": {"temp": 40.0}, "quality": {"temp": "uncertain"}}
        for _ in range(3):  # more than max_captures: the oldest are evicted and counted
            wall.ahead_ns += 1_050_000_000  # ids have a one-second resolution (of the wall clock)
            n = rec.saved
            rec.on_event("probe", "alarm", {"active": True})
            await _until(lambda: rec.saved == n + 1, "one more capture")  # noqa: B023 - awaited here
        assert rec.stats()["captures"] == 2 and rec.evicted == 2
        newest = [e[4]["id"] for e in events if e[1] == "capture_saved"][-1]
        wall.ahead_ns -= 3600 * 1_000_000_000  # the clock steps back an hour: the next id sorts first
        n = rec.saved
        rec.on_event("probe", "alarm", {"active": True})
        await _until(lambda: rec.saved == n + 1, "a capture after the step")
        after = [e[4]["id"] for e in events if e[1] == "capture_saved"][-1]
        assert after < newest and {c["id"] for c in rec.list()} == {newest, after}, "the oldest by write order went"
        # hold-off: a burst saves one capture and counts the rest
        rec.configure("rec", _opts(holdoff_s=60.0))
        rec.last_fired.clear()
        n = rec.saved
        for _ in range(50):
            rec.on_event("probe", "alarm", {"active": True})
        await _until(lambda: rec.saved == n + 1, "the burst's one capture")
        await asyncio.sleep(0.2)  # (a second capture would be saved by now: post_s is 0.1 s)
        assert rec.saved == n + 1 and rec.suppressed == 49

    asyncio.run(run())


def test_daily_budget_skips_captures_with_an_event_and_survives_a_restart(tmp_path: Path) -> None:
    """A capture that daily_mb has no room for is not written; a capture_skipped event says so."""

    def opts(daily_mb: float) -> RecorderOptions:
        rule = Rule(name="hot", event="alarm", record=["probe"], pre_s=0.2, post_s=0.05, holdoff_s=0.0)
        return RecorderOptions(rules=[rule], daily_mb=daily_mb)

    async def run() -> None:
        events: list[tuple[Any, ...]] = []
        rec = Recorder(tmp_path / "caps", lambda *a: events.append(a), MemoryStore())
        rec.configure("rec", opts(daily_mb=1.0))
        rec.feed("probe", Values({"v": 1.0}))
        rec.on_event("probe", "alarm", {})
        await _until(lambda: rec.saved == 1, "the first capture")
        size = rec.written_24h()
        assert 0 < size < 1_000_000
        rec.configure("rec", opts(daily_mb=size * 1.5 / 1e6))  # room for half a capture more
        rec.on_event("probe", "alarm", {})  # packed, then found too big: not written
        await _until(lambda: rec.skipped == 1, "the skip of a capture that does not fit")
        rec.configure("rec", opts(daily_mb=size / 1e6))  # used up: skipped before cutting
        rec.on_event("probe", "alarm", {})
        assert rec.skipped == 2 and rec.saved == 1 and len(list((tmp_path / "caps").glob("*.cap"))) == 1
        skipped = [e for e in events if e[1] == "capture_skipped"]
        assert len(skipped) == 2 and all(e[3] == Severity.WARNING for e in skipped)
        assert skipped[0][4]["reason"] == "daily_budget" and skipped[0][4]["bytes"] > 0
        assert skipped[1][4]["bytes"] == 0 and skipped[1][4]["written_24h_bytes"] == size
        assert "daily_mb" in skipped[1][2]
        stats = rec.stats()
        assert stats["skipped_total"] == 2 and stats["written_24h_bytes"] == size
        # a restart counts the captures of the last 24 h from the files: the budget is not reset
        again = Recorder(tmp_path / "caps", lambda *a: events.append(a), MemoryStore())
        assert again.written_24h() == size

    asyncio.run(run())


def test_shift_report_gathers_alarms_zones_temperatures_and_due_plans() -> None:
    store, published, events = MemoryStore(), [], []
    plugins = {"line1": "production", "pump": "vibration", "tc": "temperature", "maint": "maintenance"}
    rep = ShiftReports(store, plugins.get, lambda line, r: published.append((line, r)), lambda *a: events.append(a))
    rep.on_data("line1", {"state": "running"})
    rep.on_data("pump", {"iso_zone": "B"})
    rep.on_data("pump", {"iso_zone": "C"})
    rep.on_data("pump", {"iso_zone": "A"})
    rep.on_event("tc", "alarm", "alarm", {"active": True, "feature": "bearing.temp_c", "level": "high"})
    rep.on_event("tc", "alarm", "info", {"active": False, "feature": "bearing.temp_c", "level": "high"})
    rep.on_event("pump", "bearing_fault", "alarm", {"active": True})
    fault = {"active": True, "fault": "unbalance", "confidence": 0.9, "evidence": "1x radial: 7.9 mm/s"}
    rep.on_event("pump", "machine_fault", "alarm", fault)
    rep.on_event("pump", "machine_fault", "info", {**fault, "active": False})
    plans = {"pump1": {"plans": {"grease": {"status": "due", "task": "Grease", "basis": "parts"}}}}
    rep.on_data("maint", plans)
    rep.on_event("line1", "shift_end", "info", {"name": "late", "started": "x", "oee": 0.5, "count_total": 9})
    line, r = published[-1]
    assert line == "line1" and r["shift"] == "late" and r["production"]["count_total"] == 9
    assert r["alarms_raised"] == 3 and r["alarms_by_instance"] == {"tc": 1, "pump": 2}
    assert r["worst_iso_zone"] == {"pump": "C"}
    assert r["machine_faults"] == {"pump": {"unbalance": {"confidence": 0.9, "evidence": "1x radial: 7.9 mm/s"}}}
    assert r["temperature_alarms"] == {"tc/bearing": {"count": 1, "levels": ["high"]}}
    assert r["maintenance_due"][0]["task"] == "Grease"
    assert rep.find("line1", "late")[0]["shift"] == "late" and events[-1][1] == "shift_report"
    assert rep.acc["line1"]["alarms"] == {}  # the next shift starts from zero


def test_values_of_a_channel_past_due_are_marked_uncertain(tmp_path: Path) -> None:
    from edge_agent.agent.maintenance.service import Maintenance

    m = Maintenance(tmp_path, publisher=None, plugin_of=lambda n: None, declared=lambda n: None)
    try:
        m.cal.uncertain = {"tc": {"motor_de"}, "plc": {"t003"}}
        q = m.on_data("tc", {"motor_de": {"temp_c": 50.0, "rate_c_per_min": 0.1}, "other": {"temp_c": 1.0}}, None)
        assert q == {"motor_de.temp_c": "uncertain", "motor_de.rate_c_per_min": "uncertain"}
        assert m.on_data("plc", {"t003": 5.0, "t004": 1.0}, {"t004": "timeout"}) == {
            "t003": "uncertain",
            "t004": "timeout",
        }
        assert m.on_data("plc", {"t004": 1.0}, None) is None
    finally:
        asyncio.run(m.close())


def test_shift_report_lists_alarms_diagnoses_and_time_not_monitored_in_the_plants_time(monkeypatch: Any) -> None:
    import datetime as dt

    from edge_agent.agent.maintenance import shift_reports
    from edge_agent.agent.ops import report_render

    t0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 06:00 in Berlin, 05:00 UTC
    now = {"ms": 0}

    def at(s: float) -> None:
        now["ms"] = round(t0.timestamp() * 1000 + s * 1000)

    monkeypatch.setattr(shift_reports.clock, "now_ms", lambda: now["ms"])
    store, published = MemoryStore(), []
    plugins = {"line1": "production", "pump": "vibration", "tc": "temperature"}
    rep = ShiftReports(store, plugins.get, lambda line, r: published.append(r), lambda *a: None)
    at(120)  # the agent started two minutes into the shift
    rep.on_data("line1", {"state": "running"})
    rep.on_data("pump", {"iso_zone": "B"})
    at(200)
    rep.on_event("tc", "alarm", "alarm", {"active": True, "feature": "bearing.temp_c", "level": "high"})
    at(260)
    rep.on_event("tc", "alarm", "info", {"active": False, "feature": "bearing.temp_c", "level": "high"})
    at(300)
    rep.on_event("pump", "bearing_fault", "alarm", {"active": True, "tone": "bpfo", "ratio_db": 14.0, "hz": 87.3})
    rep.on_event("pump", "machine_fault", "alarm", {"active": True, "fault": "looseness", "confidence": 0.7})
    at(400)
    rep.on_event("tc", "sensor_fault", "alarm", {"quality": "comm_error"})
    at(460)
    rep.on_event("tc", "sensor_ok", "info", {})
    at(600)  # the agent restarts: 140 s without it
    rep = ShiftReports(store, plugins.get, lambda line, r: published.append(r), lambda *a: None)
    rep.on_data("line1", {"state": "running"})
    at(900)
    ended = (t0 + dt.timedelta(seconds=900)).isoformat()
    rep.on_event(
        "line1",
        "shift_end",
        "info",
        {"name": "early", "started": t0.isoformat(), "ended": ended, "timezone": "Europe/Berlin"},
    )
    r = published[-1]
    assert r["started_utc"] == "2026-03-02T05:00:00+00:00" and r["time_zone"] == "Europe/Berlin"
    assert [(a["instance"], a["name"], a["duration_s"], a["active_at_end"]) for a in r["alarms"]] == [
        ("tc", "bearing.temp_c high", 60.0, False)
    ]
    assert [(d["name"], d["duration_s"], d["active_at_end"]) for d in r["diagnoses"]] == [
        ("bearing bpfo fault", 600.0, True),
        ("looseness fault", 600.0, True),
    ]
    assert r["not_monitored"]["seconds"] == {"agent": 260.0, "tc": 60.0}
    text = report_render.table(r)
    assert "2026-03-02 06:00 .. 06:15 Europe/Berlin (CET)" in text
    assert "06:03 tc: bearing.temp_c high  0:01:00" in text
    assert (
        "Alarms raised: 1\n" in text
        and "pump                      B acceptable" in text
        and "bearing bpfo fault" in text
        and "0:10:00 (active at end)" in text
    )
    assert "06:00-06:02 agent: agent not running" in text and "06:06-06:07 tc: sensor fault" in text
    # still active: carried into the next shift from its start
    assert {e["name"] for e in rep.acc["line1"]["episodes"]} == {"bearing bpfo fault", "looseness fault"}


def test_a_capture_keeps_minutes_of_features_lists_what_fired_and_plots_for_diagnosis(tmp_path: Path) -> None:
    """Features (published values) reach back features_pre_s, raw samples only pre_s; --list says
    instance, trigger and time; the plot draws the feature trend with its unit and limit."""
    from edge_agent.agent.ops import plots

    async def run() -> dict[str, Any]:
        events: list[tuple[Any, ...]] = []
        store = MemoryStore()
        rec = Recorder(tmp_path / "caps", lambda *a: events.append(a), store)
        rule = Rule(name="heat", event="alarm", instance="probe", match={"active": True}, pre_s=0.1, post_s=0.1,
                    features_pre_s=60.0, holdoff_s=0.0)  # fmt: skip
        rec.configure("rec", RecorderOptions(rules=[rule]))
        for i in range(6):
            rec.on_data("probe", {"ch": {"temp_c": 70.0 + i}}, None)
            rec.feed("probe", Values({"ch": 70.0 + i}))
            await asyncio.sleep(0.05)
        rec.on_event("probe", "alarm", {"active": True, "feature": "ch.temp_c", "level": "high", "limit": 74.0})
        await asyncio.sleep(0.4)
        saved = [e for e in events if e[1] == "capture_saved"]
        listed = rec.list()
        assert listed[0]["instance"] == "probe" and listed[0]["trigger"] == "alarm ch.temp_c high"
        assert listed[0]["features_s"] == 60.1 and listed[0]["ts_ms"] > 0
        return msgpack.unpackb(rec.get(saved[0][4]["id"]), raw=False)

    doc = asyncio.run(run())
    feats = doc["features"]["probe"]["rows"]
    raw = doc["series"]["probe"]["rows"]
    assert [r["values"]["ch.temp_c"] for r in feats] == [70.0, 71.0, 72.0, 73.0, 74.0, 75.0]  # all six: minutes of room
    assert len(raw) < 6  # the raw ring keeps pre_s only
    assert plots.unit_of("ch.temp_c") == "degC" and plots.unit_of("x.velocity_rms_mm_s") == "mm/s"
    out = tmp_path / "cap.png"
    plots.recording(doc, out)
    assert out.stat().st_size > 10_000


def test_the_report_picture_shows_a_maintenance_task_whole(tmp_path: Path, monkeypatch: Any) -> None:
    """In half a column the demo's task read "press1: Inspect the die and t~" on the board."""
    from edge_agent.agent.ops import plots

    drawn: list[str] = []
    monkeypatch.setattr(plots, "save", lambda fig, path, dpi=100: drawn.extend(t.get_text() for t in fig.texts))
    task = {"asset": "press1", "task": "Inspect the die and the part-counter sensor", "status": "overdue"}
    plots.report({"line": "line1", "shift": "A", "production": {}, "maintenance_due": [task]}, tmp_path / "r.png")
    assert "press1: Inspect the die and the part-counter sensor" in drawn, drawn
    assert "OVERDUE" in drawn


def test_the_next_shift_starts_at_the_boundary_not_at_the_poll_that_ended_the_last(monkeypatch: Any) -> None:
    """shift_end comes with the production instance's next poll (up to its interval after the
    boundary): an agent that ran through the boundary was not "not running" for those seconds;
    one that was down across it is down in both shifts, each its own part."""
    import datetime as dt

    from edge_agent.agent.maintenance import shift_reports

    t0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)
    now = {"ms": 0}

    def at(s: float) -> None:
        now["ms"] = round(t0.timestamp() * 1000 + s * 1000)

    def end(rep: ShiftReports, start_s: float, end_s: float) -> dict[str, Any]:
        iso = [(t0 + dt.timedelta(seconds=s)).isoformat() for s in (start_s, end_s)]
        rep.on_event("line1", "shift_end", "info", {"name": "s", "started": iso[0], "ended": iso[1]})
        return published[-1]

    monkeypatch.setattr(shift_reports.clock, "now_ms", lambda: now["ms"])
    store, published = MemoryStore(), []
    plugins = {"line1": "production"}
    rep = ShiftReports(store, plugins.get, lambda line, r: published.append(r), lambda *a: None)
    at(-600)
    rep.on_data("line1", {"state": "running"})
    at(9)  # the poll after the boundary at 0 s ends the shift
    end(rep, -600, 0)
    for s in range(10, 600, 10):
        at(s)
        rep.on_data("line1", {"state": "running"})
    at(609)
    assert end(rep, 0, 600)["not_monitored"] == {"seconds": {}, "periods": []}
    # down from 1140 s to 1230 s, across the boundary at 1200 s: 60 s in one shift, 30 s in the next
    for s in range(610, 1141, 10):
        at(s)
        rep.on_data("line1", {"state": "running"})
    at(1230)
    rep = ShiftReports(store, plugins.get, lambda line, r: published.append(r), lambda *a: None)
    assert end(rep, 600, 1200)["not_monitored"]["seconds"] == {"agent": 60.0}
    for s in range(1240, 1800, 10):
        at(s)
        rep.on_data("line1", {"state": "running"})
    at(1805)
    nm = end(rep, 1200, 1800)["not_monitored"]
    assert nm["seconds"] == {"agent": 30.0} and nm["periods"][0]["reason"] == "agent down"


def test_a_sign_of_life_every_10_s_is_saved_every_30_s(monkeypatch: Any) -> None:
    """A store that keeps what was saved (as SQLite does at its flush), an agent killed after
    five minutes of readings every 10 s and restarted 20 s later: down 20-50 s, not 5 min."""
    import copy

    from edge_agent.agent.maintenance import shift_reports

    class CopyingStore(MemoryStore):
        def save(self, ns: str, key: str, value: Any) -> None:
            super().save(ns, key, copy.deepcopy(value))

    now = {"ms": 1_800_000_000_000}
    monkeypatch.setattr(shift_reports.clock, "now_ms", lambda: now["ms"])
    store = CopyingStore()
    mono = lambda: now["ms"] / 1000  # noqa: E731 - the save cadence runs on the monotonic clock
    rep = ShiftReports(store, {"line1": "production"}.get, lambda line, r: None, lambda *a: None, monotonic=mono)
    for _ in range(30):
        rep.on_data("line1", {"state": "running"})
        now["ms"] += 10_000
    now["ms"] += 20_000 - 10_000
    rep = ShiftReports(store, {"line1": "production"}.get, lambda line, r: None, lambda *a: None)
    rep.on_data("line1", {"state": "running"})
    (gap,) = rep.acc["line1"]["gaps"]
    assert 20_000 <= gap["to_ms"] - gap["from_ms"] <= 50_000, gap


def test_a_shift_report_across_clock_steps_keeps_durations_and_lists_the_steps(monkeypatch: Any) -> None:
    """Issue 29: +3 h and -1 h steps within a shift. An alarm across the step lasts what passed,
    nothing is booked as down time, and the report lists the steps and their sum."""
    from edge_agent.agent.maintenance import shift_reports

    t0_ms = 1_780_000_000_000
    offset = {"ms": 0}
    real = {"s": 0.0}

    def at(s: float) -> None:
        real["s"] = s

    monkeypatch.setattr(shift_reports.clock, "now_ms", lambda: t0_ms + round(real["s"] * 1000) + offset["ms"])

    def step(seconds: float) -> None:
        before = shift_reports.clock.now_ms()
        offset["ms"] += round(seconds * 1000)
        rep.on_event(
            "agent",
            "clock_step",
            "warning",
            {"step_s": seconds, "from_ms": before, "to_ms": before + round(seconds * 1000)},
        )

    store, published = MemoryStore(), []
    plugins = {"line1": "production", "tc": "temperature"}
    rep = ShiftReports(store, plugins.get, lambda line, r: published.append(r), lambda *a: None)
    rep.on_data("line1", {"state": "running"})
    at(100)
    rep.on_event("tc", "alarm", "alarm", {"active": True, "feature": "bearing.temp_c", "level": "high"})
    at(200)
    step(3 * 3600)
    at(260)
    rep.on_event("tc", "alarm", "info", {"active": False, "feature": "bearing.temp_c", "level": "high"})
    at(300)
    step(-3600)
    at(900)
    ended = shift_reports.utc_iso(shift_reports.clock.now_ms())
    rep.on_event(
        "line1", "shift_end", "info", {"name": "early", "started": shift_reports.utc_iso(t0_ms), "ended": ended}
    )
    r = published[-1]
    assert [(a["name"], a["duration_s"]) for a in r["alarms"]] == [("bearing.temp_c high", 160.0)]
    assert r["not_monitored"]["seconds"] == {}, "a clock step is no down time"
    assert [c["step_s"] for c in r["clock_steps"]] == [10800, -3600] and r["clock_step_s"] == 7200.0
    span_s = (shift_reports._ms(r["ended"]) - shift_reports._ms(r["started"])) / 1000
    assert span_s - r["clock_step_s"] == 900.0, "the span minus the steps is the time that passed"
    # a step forward past the next shift's start (the agent's first reading of it comes after the
    # jump): the part skipped is a clock step, not time the agent was not running
    late = {"name": "late", "started": ended, "ended": shift_reports.utc_iso(t0_ms + 20 * 3600_000)}
    step(12 * 3600)
    at(960)
    rep.on_event("line1", "shift_end", "info", late)
    r2 = published[-1]
    assert r2["not_monitored"]["seconds"] == {}, r2["not_monitored"]
    assert [c["step_s"] for c in r2["clock_steps"]] == [12 * 3600] and r2["clock_step_s"] == 12 * 3600
    from edge_agent.agent.ops import report_render

    text = report_render.table(r)
    assert "clock stepped forward  3:00:00" in text and "clock stepped back     1:00:00" in text, text


def test_feature_rows_keep_numbers_compactly_and_give_them_back_as_dicts() -> None:
    """The recorder's feature pre-trigger holds minutes of rows: one key tuple while the keys stay
    the same, the numbers as doubles; what comes back equals what went in, older rows dropped."""
    from edge_agent.agent.maintenance.capture_store import FeatureRows

    rows = FeatureRows(keep_s=10.0)
    for i in range(20):
        rows.add(float(i), 1_000 + i, {"x.rms_g": 0.1 * i, "y.rms_g": -1.5, "zone": 2.0})
    rows.add(20.0, 1_020, {"x.rms_g": 7.0})  # another shape (a key left out of this message)
    kept = rows.rows
    assert [r[0] for r in kept] == [float(i) for i in range(10, 21)]
    assert kept[0][2] is kept[1][2] and kept[-1][2] == ("x.rms_g",)
    got = rows.since(19.0)
    assert got == [(19.0, 1_019, {"x.rms_g": 0.1 * 19, "y.rms_g": -1.5, "zone": 2.0}), (20.0, 1_020, {"x.rms_g": 7.0})]


def test_feature_rows_across_chunks_keep_exactly_their_window_and_drop_whole_chunks() -> None:
    """Rows live in chunks of column arrays; a chunk leaves only whole, yet what comes back is
    exactly the last ``keep_s`` seconds, across chunk boundaries, and old chunks do not pile up."""
    from edge_agent.agent.maintenance.capture_store import FEATURE_CHUNK_ROWS, FeatureRows

    rows = FeatureRows(keep_s=300.0)
    for i in range(4 * FEATURE_CHUNK_ROWS + 7):
        rows.add(float(i), 5_000 + i, {"a": float(i), "b": -float(i)} if i % 3 else {"a": float(i)})
    newest = 4 * FEATURE_CHUNK_ROWS + 6
    kept = rows.rows
    assert [r[0] for r in kept] == [float(i) for i in range(newest - 300, newest + 1)]
    assert len(rows._chunks) <= 300 // FEATURE_CHUNK_ROWS + 2
    got = rows.since(newest - 2.0)
    assert got == [(float(i), 5_000 + i, {"a": float(i), "b": -float(i)} if i % 3 else {"a": float(i)})
                   for i in range(newest - 2, newest + 1)]  # fmt: skip
    assert FeatureRows(keep_s=5.0).since(0.0) == []
