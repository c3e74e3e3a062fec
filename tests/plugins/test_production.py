"""Production: counter wrap and reset, rate, run state, durations and OEE on a scripted shift."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from edge_agent.plugins.common.counters import CounterEvent, CounterTracker, RateWindow
from edge_agent.plugins.production.oee import RunState, Shift, Totals, classify, current_shift, oee
from edge_agent.plugins.production.plugin import SPEC, ProductionOptions, ShiftConfig, check
from edge_agent.plugins.testing.harness import Harness, ManualClock, StaticLink


def test_counter_wrap_at_16_and_32_bits_and_reset_detection() -> None:
    c = CounterTracker(16)
    assert c.update(65530).increment == 0
    step = c.update(4)
    assert (step.increment, step.event) == (10, CounterEvent.WRAP)
    assert c.update(30000).increment == 29996
    step = c.update(100)
    assert (step.increment, step.event) == (100, CounterEvent.RESET)
    c32 = CounterTracker(32)
    c32.update(2**32 - 3)
    assert c32.update(7).increment == 10
    c32.update(1_000_000)
    assert c32.update(5).event is CounterEvent.RESET


def test_rate_window_in_parts_per_minute() -> None:
    r = RateWindow(60.0)
    for t in range(0, 121):
        r.add(float(t), 0 if t == 0 else (2 if t <= 60 else 1))  # 120/min, then 60/min
        if t == 30:
            assert r.rate_per_min(30.0) == pytest.approx(120.0)  # window still filling
    assert r.rate_per_min(120.0) == pytest.approx(60.0)
    assert RateWindow().rate_per_min(5.0) == 0.0


def test_run_state_priority_and_rate_threshold() -> None:
    kw: dict[str, Any] = {"planned_stop": None, "fault": None, "running": None, "min_rate_per_min": 5.0}
    assert classify(**kw, rate_per_min=6.0) is RunState.RUNNING
    assert classify(**kw, rate_per_min=4.0) is RunState.IDLE
    assert classify(**{**kw, "running": False}, rate_per_min=6.0) is RunState.IDLE
    assert classify(**{**kw, "running": True, "fault": True}, rate_per_min=6.0) is RunState.FAULT
    assert classify(**{**kw, "fault": True, "planned_stop": True}, rate_per_min=0.0) is RunState.PLANNED_STOP


def test_oee_factors_and_night_shift_calendar() -> None:
    t = Totals()
    t.add(RunState.RUNNING, 3000.0, 900, 880)
    t.add(RunState.IDLE, 600.0, 0, 0)
    t.add(RunState.PLANNED_STOP, 1000.0, 0, 0)
    f = oee(t, ideal_cycle_time_s=3.0)
    assert (f.availability, f.performance, f.quality) == pytest.approx((3000 / 3600, 0.9, 880 / 900))
    assert f.oee == pytest.approx(3000 / 3600 * 0.9 * 880 / 900)
    night = Shift("C", dt.time(22), dt.time(6), frozenset({0, 1, 2, 3, 4}))
    utc = dt.UTC
    got = current_shift([night], dt.datetime(2026, 11, 24, 3, 0, tzinfo=utc))  # Tuesday 03:00
    assert got is not None and got[1] == dt.datetime(2026, 11, 23, 22, 0, tzinfo=utc)
    assert current_shift([night], dt.datetime(2026, 11, 28, 23, 0, tzinfo=utc)) is None  # Saturday


MONDAY_0600_UTC_MS = int(dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC).timestamp() * 1000)


def scripted_shift() -> Harness:
    """06:00-14:00: 2 h running at 27/min, 1 h fault (jam), 1 h break, 4 h running; 2 % rejects."""
    link = StaticLink()
    clock = ManualClock(start_s=0.0, epoch_ms=MONDAY_0600_UTC_MS)
    options = {
        "total_count": {"instance": "plc", "key": "parts"},
        "reject_count": {"instance": "plc", "key": "rejects"},
        "running": {"instance": "plc", "key": "running"},
        "fault": {"instance": "plc", "key": "fault"},
        "planned_stop": {"instance": "plc", "key": "break"},
        "reason": {"instance": "plc", "key": "stop_reason"},
        "counter_bits": 16,
        "ideal_cycle_time_s": 2.0,
        "shifts": [{"name": "A", "start": "06:00", "end": "14:00"}, {"name": "B", "start": "14:00", "end": "22:00"}],
        "rolling_window_s": 3600,
    }
    h = Harness(SPEC, options=options, clock=clock, link=link, interval_s=60)
    produced = 0

    async def main() -> None:
        nonlocal produced
        await h.start()
        for minute in range(0, 482):
            fault, pause = 120 < minute <= 180, 180 < minute <= 240
            running = minute > 0 and not fault and not pause
            produced += 27 if running else 0
            link.values.update(
                {
                    ("plc", "parts"): (60000 + produced) % 65536,  # a uint16 counter that wraps
                    ("plc", "rejects"): produced * 2 // 100,
                    ("plc", "running"): running,
                    ("plc", "fault"): fault,
                    ("plc", "break"): pause,
                    ("plc", "stop_reason"): "jam" if fault else "none",
                }
            )
            await h.poll()
            clock.advance(60.0)
        await h.close()

    asyncio.run(main())
    return h


def test_oee_on_a_scripted_shift() -> None:
    h = scripted_shift()
    ends = [e for e in h.events if e.kind == "shift_end"]
    assert len(ends) == 1
    s = ends[0].fields
    assert s["name"] == "A"
    assert (s["running_s"], s["fault_s"], s["planned_stop_s"], s["idle_s"]) == (21600.0, 3600.0, 3600.0, 0.0)
    assert (s["count_total"], s["count_good"]) == (9720, 9720 - 194)
    assert s["availability"] == pytest.approx(6 / 7)
    assert s["performance"] == pytest.approx(0.9)
    assert s["quality"] == pytest.approx(9526 / 9720)
    assert s["oee"] == pytest.approx(6 / 7 * 0.9 * 9526 / 9720)
    changes = [
        (e.fields["from_state"], e.fields["to_state"], e.fields["reason"]) for e in h.events if e.kind == "state_change"
    ]
    assert changes == [
        ("idle", "running", "none"),
        ("running", "fault", "jam"),
        ("fault", "planned_stop", "none"),
        ("planned_stop", "running", "none"),
    ]
    last_in_a = h.emitted[480].values  # the poll at 14:00 closes the shift's last minute
    assert last_in_a["shift"]["oee"] == pytest.approx(s["oee"])
    assert last_in_a["rate_parts_per_min"] == pytest.approx(27.0)
    roll = last_in_a["rolling"]
    assert (roll["availability"], roll["performance"]) == pytest.approx((1.0, 0.9))
    assert h.emitted[-1].values["shift"]["name"] == "B"
    assert not [e for e in h.events if e.kind == "counter_reset"]  # the wrap is not a reset


def test_options_check() -> None:
    import msgspec

    o = msgspec.convert(
        {
            "total_count": {"instance": "a", "key": "b"},
            "good_count": {"instance": "a", "key": "g"},
            "reject_count": {"instance": "a", "key": "r"},
            "ideal_cycle_time_s": 1.0,
            "timezone": "Mars/Olympus",
            "shifts": [
                {"name": "A", "start": "06:00", "end": "14:00"},
                {"name": "A", "start": "14:00", "end": "22:00"},
            ],
        },
        ProductionOptions,
    )
    problems = check(o, "modbus")
    assert [p.split(":")[0] for p in problems] == ["timezone", "shifts", "good_count", "driver"]
    with pytest.raises(msgspec.ValidationError, match="start"):
        msgspec.convert({"name": "A", "start": "6:00", "end": "14:00"}, ShiftConfig)


def test_a_clock_that_steps_neither_ends_a_shift_twice_nor_books_the_jump() -> None:
    """Issue 29: -1 h into the shift keeps it going (no end before its start, no second report),
    +3 days ends it once, at its calendar end, with only the time that passed in its figures."""
    link = StaticLink()
    clock = ManualClock(start_s=0.0, epoch_ms=MONDAY_0600_UTC_MS)
    options = {
        "total_count": {"instance": "plc", "key": "parts"},
        "running": {"instance": "plc", "key": "running"},
        "ideal_cycle_time_s": 2.0,
        "shifts": [{"name": "A", "start": "06:00", "end": "14:00"}, {"name": "B", "start": "14:00", "end": "22:00"}],
    }
    h = Harness(SPEC, options=options, clock=clock, link=link, interval_s=60)

    async def main() -> None:
        await h.start()
        for minute in range(150):
            link.values.update({("plc", "parts"): minute * 20, ("plc", "running"): True})
            if minute == 30:
                clock.step_wall(-3600)  # 06:30 -> 05:30: before the shift's start
            if minute == 120:
                clock.step_wall(3 * 86400 + 7 * 3600 + 300)  # Monday 07:00 -> Thursday 14:05
            await h.poll()
            clock.advance(60.0)
        await h.close()

    asyncio.run(main())
    ends = [e.fields for e in h.events if e.kind == "shift_end"]
    assert [(e["name"], e["started"], e["ended"]) for e in ends] == [
        ("A", "2026-11-23T06:00:00+00:00", "2026-11-23T14:00:00+00:00")
    ], "one end, at the calendar end, not at the clock's jump"
    a = ends[0]
    booked = a["running_s"] + a["idle_s"] + a["fault_s"] + a["planned_stop_s"]
    assert booked == pytest.approx(119 * 60.0), "only the time that passed (119 poll intervals), not the jumps"
    assert h.emitted[-1].values["shift"]["name"] == "B"
    assert h.emitted[-1].values["shift"]["running_s"] == pytest.approx(30 * 60.0)


def test_a_new_shift_calendar_pushed_mid_shift_takes_over_at_once() -> None:
    """The 'never begin a shift twice' rule (a step back) must not hold a pushed calendar back:
    shift A (06:00-14:00) runs, a push replaces it by X (05:00-13:00); the restarted instance ends
    A and runs X at once, as before."""
    from edge_agent.plugins.contract import AgentInfo, MemoryStore

    link, store = StaticLink(), MemoryStore()
    clock = ManualClock(start_s=0.0, epoch_ms=MONDAY_0600_UTC_MS + 3600_000)  # 07:00
    link.values.update({("plc", "parts"): 0, ("plc", "running"): True})

    def run(shifts: list[dict[str, str]], polls: int) -> Harness:
        options = {"total_count": {"instance": "plc", "key": "parts"}, "running": {"instance": "plc", "key": "running"},
                   "ideal_cycle_time_s": 2.0, "shifts": shifts}  # fmt: skip
        h = Harness(SPEC, options=options, clock=clock, link=link, interval_s=60, agent=AgentInfo(store=store))

        async def main() -> None:
            await h.start()
            for _ in range(polls):
                await h.poll()
                clock.advance(60.0)
            await h.close()

        asyncio.run(main())
        return h

    run([{"name": "A", "start": "06:00", "end": "14:00"}], 5)
    h = run([{"name": "X", "start": "05:00", "end": "13:00"}], 3)
    assert [e.fields["name"] for e in h.events if e.kind == "shift_end"] == ["A"]
    assert h.emitted[-1].values["shift"]["name"] == "X"
