"""Calibration math and records with known answers; refusals change nothing; due events."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from edge_agent.agent.maintenance.calibration import DAY_MS, Calibrations
from edge_agent.agent.maintenance.calibration_math import Coefficients, Mode, errors, fit, fit_sensitivity
from edge_agent.drivers.contract import ChannelReading, Values, Waveform, temperature_reading
from edge_agent.plugins.contract import MemoryStore


def test_linear_fit_known_answers() -> None:
    c = fit([(0.4, 0.0), (100.9, 100.0)], Mode.LINEAR)
    assert c.gain == pytest.approx(100 / 100.5) and c.offset == pytest.approx(-0.4 * 100 / 100.5)
    # three points on y = 1.02 x - 0.5 plus symmetric noise +-0.1: least squares gives the line back
    pts = [(0.0, -0.5 + 0.1), (50.0, 50.5 - 0.2), (100.0, 101.5 + 0.1)]
    c3 = fit(pts, Mode.LINEAR)
    assert c3.gain == pytest.approx(1.02) and c3.offset == pytest.approx(-0.5)
    assert fit([(10.0, 10.5), (20.0, 20.3)], Mode.OFFSET).offset == pytest.approx(0.4)


def test_table_interpolates_and_extends_the_end_segments() -> None:
    c = fit([(0.0, 0.0), (100.0, 101.0), (200.0, 201.0)], Mode.TABLE)
    assert c.apply(50.0) == pytest.approx(50.5)
    assert c.apply(150.0) == pytest.approx(151.0)
    assert c.apply(-10.0) == pytest.approx(-10.1)  # the first segment's slope 1.01
    assert c.apply(300.0) == pytest.approx(301.0)  # the last segment's slope 1.0
    assert Coefficients.from_dict(c.to_dict()) == c
    assert errors([(100.0, 101.0)], c) == [pytest.approx(0.0)]


@pytest.mark.parametrize(
    ("points", "mode", "message"),
    [
        ([(1.0, 0.0), (1.0, 100.0)], Mode.LINEAR, "do not differ"),
        ([(0.0, 0.0), (10.0, 100.0)], Mode.LINEAR, "gain 10 is outside 0.5..2"),
        ([(0.0, 0.0), (10.0, -10.0)], Mode.LINEAR, "outside"),
        ([(0.0, math.nan), (10.0, 10.0)], Mode.LINEAR, "not a finite number"),
        ([(0.0, 0.0)], Mode.LINEAR, "two reference readings or more"),
        ([(0.0, 0.0), (10.0, 10.0), (20.0, 5.0)], Mode.TABLE, "table slope"),
    ],
)
def test_fits_that_would_hide_a_broken_sensor_are_refused(points: Any, mode: Mode, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit(points, mode)


def test_sensitivity_is_a_gain_through_zero() -> None:
    c = fit_sensitivity([(0.98, 1.0), (4.9, 5.0)])
    assert c.offset == 0.0 and c.gain == pytest.approx(1 / 0.98)


def _cal() -> tuple[Calibrations, MemoryStore, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    store, published, events = MemoryStore(), [], []
    cal = Calibrations(store, lambda i, c, r: published.append((i, c, r)), lambda *a: events.append(a))
    return cal, store, published, events


def test_a_calibration_corrects_values_temperatures_and_waveforms() -> None:
    cal, store, published, events = _cal()
    cal.correct("plc", Values({"t003": 50.0, "flag": True}))
    rec = cal.command({"instance": "plc", "channel": "t003", "by": "ann", "points": [[0, 1], [10, 21]]}, None)
    assert rec["coefficients"]["gain"] == pytest.approx(2.0) and published[-1][:2] == ("plc", "t003")
    assert cal.correct("plc", Values({"t003": 50.0, "flag": True})).values == {
        "t003": pytest.approx(101.0),
        "flag": True,
    }
    # a thermocouple channel: the TemperatureReading's channel and flat view both change
    reading = temperature_reading({"de": ChannelReading(40.0), "nde": ChannelReading(41.0)})
    cal.correct("tc", reading)
    cal.command({"instance": "tc", "channel": "de", "by": "ann", "points": [[40, 40.5]], "mode": "offset"}, None)
    out = cal.correct("tc", reading)
    assert out.channels["de"].temperature_c == pytest.approx(40.5) and out.values["de"] == pytest.approx(40.5)
    assert out.values["nde"] == 41.0
    # an accelerometer axis: sensitivity gain on the samples, raw counts dropped
    wf = Waveform(np.ones((8, 2), dtype=np.float32), 100.0, ("x", "y"), 0, raw=np.ones((8, 2), dtype=np.int16))
    cal.correct("acc", wf)
    cal.command({"instance": "acc", "channel": "y", "by": "ann", "points": [[1.0, 1.1]]}, None)
    w2 = cal.correct("acc", wf)
    assert np.allclose(w2.samples[:, 0], 1.0) and np.allclose(w2.samples[:, 1], 1.1) and w2.raw is None
    assert [e[1] for e in events] == ["calibrated"] * 3 and len(store.records("calibration")) == 3


def test_refused_commands_change_nothing() -> None:
    cal, store, published, _ = _cal()
    cal.correct("plc", Values({"t003": 50.0}))
    bad: list[dict[str, Any]] = [
        {"instance": "plc", "channel": "t999", "by": "ann", "points": [[0, 0], [1, 1]]},
        {"instance": "plc", "channel": "t003", "points": [[0, 0], [1, 1]]},
        {"instance": "plc", "channel": "t003", "by": "ann", "points": [[0, 0], [1, 9]]},
        {"instance": "plc", "channel": "t003", "by": "ann", "points": "lots"},
        {"instance": "plc", "channel": "t003", "by": "ann", "points": [[0, 0], [1, 1]], "interval_days": -1},
        {"instance": "plc", "channel": "t003", "by": "ann", "points": [[0, 0], [1, 1]], "colour": "red"},
        {"instance": "plc", "channel": "t003", "by": "ann", "action": "point", "reference": "hot"},
    ]
    for args in bad:
        with pytest.raises(ValueError):
            cal.command(args, None)
    assert cal.active == {} and published == [] and store.records("calibration") == []
    assert cal.correct("plc", Values({"t003": 50.0})).values == {"t003": 50.0}


def test_a_calibration_from_the_panel_carries_where_it_came_from() -> None:
    """The panel sends every action with via = "panel ADDRESS"; calibrate refused it as unknown, so
    Take point on the panel's calibration page always failed."""
    cal, *_ = _cal()
    cal.correct("tc", Values({"motor_de": 60.9}))
    args = {"instance": "tc", "channel": "motor_de", "by": "demo", "via": "panel 127.0.0.1"}
    got = cal.command(args | {"action": "point", "reference": 60.0}, None)
    assert got["points"] == [[60.9, 60.0]], got


def test_points_pair_the_live_reading_and_declared_channels_are_checked() -> None:
    cal, *_ = _cal()
    cal.correct("plc", Values({"t003": 0.2}))
    cal.command({"instance": "plc", "channel": "t003", "by": "ann", "action": "point", "reference": "0"}, None)
    cal.correct("plc", Values({"t003": 99.8}))
    cal.command({"instance": "plc", "channel": "t003", "by": "ann", "action": "point", "reference": 100.0}, None)
    rec = cal.command({"instance": "plc", "channel": "t003", "by": "ann", "action": "apply"}, ["t003"])
    assert [p["reading"] for p in rec["references"]] == [0.2, 99.8]
    with pytest.raises(ValueError, match="not a numeric value"):
        cal.command({"instance": "plc", "channel": "t003", "by": "ann", "action": "show"}, ["other"])


def test_due_soon_then_overdue_then_uncertain() -> None:
    cal, _, _, events = _cal()
    cal.correct("plc", Values({"t003": 1.0}))
    args = {
        "instance": "plc",
        "channel": "t003",
        "by": "ann",
        "points": [[0, 0], [1, 1]],
        "interval_days": 10,
        "warn_days": 2,
        "uncertain_when_due": True,
    }
    rec = cal.command(args, None)
    due = rec["next_due_ms"]
    cal.check_due(due - 3 * DAY_MS)
    cal.check_due(due - 1 * DAY_MS)
    cal.check_due(due - 0.5 * DAY_MS)  # told once
    assert [(e[1], e[4]["overdue"]) for e in events if e[1] == "calibration_due"] == [("calibration_due", False)]
    assert cal.uncertain == {}
    cal.check_due(due + 1000, mono_s=0.0)
    assert events[-1][4]["overdue"] is True and cal.uncertain == {"plc": {"t003"}}
    # read on the panel's alarm list: a date, not ISO ("overdue since 2026-12-07T21:29:21+00:00")
    assert re.search(r"overdue since \d{4}-\d\d-\d\d \d\d:\d\d UTC$", events[-1][2]), events[-1][2]
    cal.check_due(due + DAY_MS + 2000, mono_s=86_400.5)  # reminded daily
    assert sum(1 for e in events if e[1] == "calibration_due") == 3


def test_a_clock_step_of_days_is_one_event_and_reminders_count_days_that_passed() -> None:
    """Issue 29: the wall clock steps 3 days forward past a due date: one overdue event (not one
    per day skipped); a step back and forth again within the day reminds nobody."""
    cal, _, _, events = _cal()
    cal.correct("plc", Values({"t003": 1.0}))
    rec = cal.command({"instance": "plc", "channel": "t003", "by": "ann", "points": [[0, 0], [1, 1]],
                       "interval_days": 2, "warn_days": 0}, None)  # fmt: skip
    due = rec["next_due_ms"]
    told = lambda: [e[4]["overdue"] for e in events if e[1] == "calibration_due"]  # noqa: E731
    cal.check_due(due - DAY_MS, mono_s=100.0)
    assert told() == []
    for i, wall in enumerate((due + 3 * DAY_MS, due - 3_600_000 + 3 * DAY_MS, due + 3 * DAY_MS + 60_000)):
        cal.check_due(wall, mono_s=220.0 + 120 * i)  # every state flush: two minutes apart
    assert told() == [True], "one overdue event for the 3-day step, no reminder within the day"
    cal.check_due(due + 4 * DAY_MS, mono_s=220.0 + 86_400)
    assert told() == [True, True], "a day that passed: reminded"


def test_a_point_taken_before_the_sensor_moved_is_flagged() -> None:
    cal, *_ = _cal()
    cal.correct("tc", Values({"oil": 62.05}))
    args = {"instance": "tc", "channel": "oil", "by": "ann", "action": "point"}
    assert "warning" not in cal.command({**args, "reference": 62.0}, None)
    second = cal.command({**args, "reference": 100.0}, None)
    assert "has not changed since the point at reference 62" in second["warning"]
    assert cal.command({"instance": "tc", "channel": "oil", "action": "cancel"}, None)["dropped_points"] == 2


# --- the calibration an auditor accepts: one stage, measured as-left, signed errors, no false rate ---------


def _tap_harness(cal: Calibrations, driver: Any, **options: Any) -> Any:
    """The temperature plugin reading ``driver`` through the agent's calibration tap, as the runtime wires it."""
    from edge_agent.agent.maintenance.driver_tap import DriverTap
    from edge_agent.plugins.temperature import SPEC
    from edge_agent.plugins.testing.harness import Harness, ManualClock

    tap = DriverTap("oven", driver, cal.correct)
    return Harness(SPEC, options=options, driver=tap, clock=ManualClock(), instance="oven")


def _polls(h: Any, n: int, step_s: float = 1.0) -> None:
    import asyncio

    async def go() -> None:
        if not getattr(h, "_started", False):
            await h.start()
            h._started = True
        for _ in range(n):
            await h.poll()
            h.clock.advance(step_s)

    asyncio.run(go())


def test_a_thermocouple_at_300_c_through_the_chip_and_nist_reads_the_reference_after_calibration() -> None:
    """The point pairs the reference with the NIST-converted value (the stage the correction applies
    to), so the published value equals the reference at both points and between them."""
    import msgspec
    from edge_agent.drivers.max318xx import max31855
    from edge_agent.plugins.temperature import its90

    chip = max31855.Max31855Chip(max31855.encode_frame(289.0, 25.0))
    options = msgspec.convert({"channels": [{"name": "zone1"}]}, max31855.Max31855Options)
    driver = max31855.SPEC.factory.__call__(options, buses={"zone1": chip})
    cal, _, _, events = _cal()
    h = _tap_harness(cal, driver)

    def nist(chip_c: float) -> float:
        return its90.linear_chip_corrected_c(its90.ThermocoupleType.K, chip_c, 25.0, 41.276, refine=True)

    def true_c(chip_c: float) -> float:  # a drifted thermocouple: it reads 0.4 % + 1.5 degC high
        return (nist(chip_c) - 1.5) / 1.004

    assert abs(nist(300.0) - 300.0) > 0.5  # the chip's straight line is off here: the test has teeth
    args = {"instance": "oven", "channel": "zone1", "by": "ann"}
    for chip_c in (289.0, 311.0):  # chip frames on its 0.25 degC grid: no quantisation in the check
        chip.frame = max31855.encode_frame(chip_c, 25.0)
        _polls(h, 1)
        cal.command({**args, "action": "point", "reference": true_c(chip_c)}, None)
    rec = cal.command({**args, "action": "apply"}, None)
    assert rec["unit"] == "degC" and rec["as_left"] == [] and rec["as_left_error"] is None
    assert rec["as_found_error"] > 0  # the thermocouple read high: the error's sign says so
    assert rec["as_found_error"] == pytest.approx(nist(311.0) - true_c(311.0), abs=1e-4)
    for chip_c in (289.0, 311.0, 300.0):
        chip.frame = max31855.encode_frame(chip_c, 25.0)
        _polls(h, 1)
        assert h.emitted[-1].values["zone1"]["temp_c"] == pytest.approx(true_c(chip_c), abs=0.01), chip_c
    check = cal.command({**args, "action": "check", "reference": true_c(300.0)}, None)
    assert check["error"] == pytest.approx(0.0, abs=0.01) and check["unit"] == "degC"
    active = cal.show(("oven", "zone1"))["active"]
    assert active["as_left"][0]["reference"] == pytest.approx(true_c(300.0)) and active["as_left_error"] is not None
    assert events[-1][1] == "calibration_checked" and "as left +0.0" in events[-1][2]


def test_errors_are_signed_rounded_and_carry_the_unit() -> None:
    cal, *_ = _cal()
    cal.correct("tc", temperature_reading({"oil": ChannelReading(44.05)}))
    rec = cal.command({"instance": "tc", "channel": "oil", "by": "ann", "points": [[44.05, 45.0]]}, None)
    assert rec["as_found_error"] == -0.95 and rec["references"][0]["as_found_error"] == -0.95  # read low: -
    assert rec["fit_residual"] == 0.0 and rec["unit"] == "degC"
    from edge_agent.agent.maintenance.calibration import fmt_error

    assert fmt_error(rec["as_found_error"], "degC") == "-0.950 degC" and fmt_error(None, "bar") == "not checked"
    # a check reading given by hand (a reference meter beside a PLC tag) is recorded with its unit
    cal.correct("plc", Values({"p1": 2.0}))
    cal.command({"instance": "plc", "channel": "p1", "by": "ann", "points": [[2.0, 2.1]], "unit": "bar"}, None)
    check = {"action": "check", "reference": 3.0, "reading": 3.02}
    got = cal.command({"instance": "plc", "channel": "p1", "by": "ann", **check}, None)
    assert got["error"] == 0.02 and got["unit"] == "bar"
    with pytest.raises(ValueError, match="no calibration to check"):
        cal.command({"instance": "tc", "channel": "none", "by": "ann", "action": "check", "reference": 1}, ["none"])


class _Warming:
    """A bearing warming at 0.2 degC/min, read as degC by a chip that linearises itself."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def read(self) -> Any:
        return temperature_reading({"de": ChannelReading(40.0 + 0.2 * self.clock.monotonic() / 60.0)})


def test_a_calibration_is_a_step_not_a_rate_of_change() -> None:
    cal, *_ = _cal()
    warming = _Warming(None)
    h = _tap_harness(cal, warming, rate_warning_c_per_min=1.0)
    warming.clock = h.clock
    _polls(h, 90)
    reading = cal.raw_value("oven", "de")
    assert reading is not None
    cal.command({"instance": "oven", "channel": "de", "by": "ann", "points": [[reading[0], reading[0] + 5.0]]}, None)
    _polls(h, 90)
    temps = [e.values["de"]["temp_c"] for e in h.emitted if "temp_c" in e.values.get("de", {})]
    rates = [e.values["de"]["rate_c_per_min"] for e in h.emitted if "rate_c_per_min" in e.values.get("de", {})]
    assert temps[-1] > 45.0  # the offset is applied
    assert all(r is None or r == pytest.approx(0.2, abs=0.01) for r in rates), rates
    assert not [e for e in h.events if e.kind == "rate_warning"]
