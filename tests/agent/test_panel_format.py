"""How the panel shows numbers, times and audit entries (agent/ops/panel/static/format.js, run in
node): values by their unit's resolution, round axis ticks, the plant's time with its zone (checked
against Python's zoneinfo, which the shift reports use) and audit entries as sentences."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

FORMAT_JS = Path(__file__).parents[2] / "agent/ops/panel/static/format.js"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("node"), reason="node not installed")]


def js(calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """Each (function, arguments) of format.js called in one node process; the results in order."""
    script = (
        f"const f = require({json.dumps(str(FORMAT_JS))});"
        f"const calls = {json.dumps(calls)};"
        "process.stdout.write(JSON.stringify(calls.map(([name, args]) => f[name](...args))));"
    )
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(done.stdout))


def test_values_show_what_their_unit_resolves() -> None:
    cases = [
        ((99.962, "degC"), "100.0"),
        ((51.253, "degC"), "51.3"),
        ((-0.00001, "degC/min"), "0.00"),  # float noise reads 0, not -0.00
        ((2.80449, "mm/s"), "2.80"),
        ((0.012345, "g"), "0.012"),
        ((1487.6, "rpm"), "1488"),
        ((12.46, "s"), "12"),
        ((7, ""), "7"),  # a count or code stays whole
        ((48.216314937742396, ""), "48.2"),  # no unit: three significant digits
        ((0.004, ""), "0.004"),  # ... and no trailing zeros (no column of one unit to align)
        ((0.9, ""), "0.9"),
        (([0.03145230076084317, 0.030493377259410644, 0.11257945937883963], "g"), "0.031, 0.030, 0.113"),
        ((0.000123, "ohm"), "0.0"),
        ((0.000123, ""), "0.000123"),
        ((0.0000123, ""), "1.23e-5"),
        ((True, ""), "on"),
        ((None, "degC"), "-"),
    ]
    got = js([("fmtValue", list(args)) for args, _ in cases])
    assert got == [want for _, want in cases]


def test_axis_ticks_are_round_and_cover_the_data() -> None:
    ranges = [(67.93, 100.2), (0.0012, 0.0049), (-3.3, 7.1), (48.2, 48.2), (1e5, 3.4e5), (99.1, 99.4)]
    got = js([("niceTicks", [lo, hi, 5, 0]) for lo, hi in ranges])
    for (lo, hi), t in zip(ranges, got, strict=True):
        step = t["step"]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 6) in (1, 2, 5), (lo, hi, t)
        assert 3 <= len(t["ticks"]) <= 8, (lo, hi, t)
        assert all(abs(v / step - round(v / step)) < 1e-6 for v in t["ticks"]), t
        assert t["lo"] <= lo and t["hi"] >= hi
    (coarse,) = js([("niceTicks", [48.21, 48.24, 5, 0.1])])  # degC shows one decimal: no 48.205
    assert coarse["step"] >= 0.1 and coarse["decimals"] == 1


ZONES = ["Europe/Berlin", "Europe/London", "America/New_York", "America/Chicago", "Australia/Sydney", "UTC"]


def test_plant_time_with_its_zone_as_the_reports_print_it() -> None:
    stamps = [
        dt.datetime(2026, m, d, h, 14, 39, tzinfo=dt.UTC)
        for m, d, h in ((1, 5, 3), (3, 29, 0), (3, 29, 1), (7, 7, 22), (10, 25, 1), (12, 7, 22))
    ]
    calls = [("plantTime", [t.timestamp() * 1000, zone]) for zone in ZONES for t in stamps]
    got = js(calls)
    want = [t.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z") for zone in ZONES for t in stamps]
    assert got == want
    assert js([("plantTime", [None, "UTC"]), ("knownZone", ["Mars/Olympus"]), ("knownZone", ["Asia/Kolkata"])]) == [
        "-",
        False,
        True,
    ]


def test_time_ticks_fall_on_round_plant_times() -> None:
    until = dt.datetime(2026, 12, 7, 22, 14, 39, tzinfo=dt.UTC).timestamp() * 1000
    spans_s = [3600, 8 * 3600, 86400, 7 * 86400]
    for zone in ("Europe/Berlin", "Asia/Kolkata"):
        got = js([("timeTicks", [until - s * 1000, until, zone, 5]) for s in spans_s])
        for span, ticks in zip(spans_s, got, strict=True):
            assert 2 <= len(ticks) <= 6, (zone, span, ticks)
            for t in ticks:
                local = dt.datetime.fromtimestamp(t["ms"] / 1000, ZoneInfo(zone))
                assert local.second == 0 and local.minute % 15 == 0, (zone, span, local)
                if span >= 86400:
                    assert local.minute == 0 and local.hour % 6 == 0, (zone, span, local)
                assert t["label"] in (f"{local:%H:%M}", f"{local:%m-%d}")


def test_audit_entries_read_as_sentences() -> None:
    entries = [
        {"command": "ack", "by": "tech", "outcome": "done", "instance": None,
         "args": {"id": "thermo-a/alarm/bearing_nde.temp_c/high", "comment": "checking the grease",
                  "by": "tech", "via": "panel 10.0.0.5"}},
        {"command": "shelve", "outcome": "done",
         "args": {"id": "pump1/alarm/x.rms/high", "for_s": 28800, "comment": "sensor swap"}},
        {"command": "maintenance_done", "outcome": "done", "instance": "maintenance",
         "args": {"asset": "pump1", "plan": "regrease", "notes": "DE and NDE", "work_order": "4711"}},
        {"command": "calibrate", "outcome": "refused: no points taken", "instance": "thermo-a",
         "args": {"action": "apply", "channel": "motor_de", "note": "bath 12"}},
        {"command": "frobnicate", "outcome": "done", "instance": "plc1", "args": {"level": 3, "mode": {"a": 1}}},
        {"command": "calibrate", "outcome": "done", "instance": "thermo-a",
         "args": {"action": "check", "channel": "motor_de", "reference": 60, "reading": 60.05}},
    ]  # fmt: skip
    got = js([("auditEntry", [e]) for e in entries])
    assert [g["what"] for g in got] == [
        "Acknowledged alarm thermo-a bearing_nde.temp_c high",
        "Shelved alarm pump1 x.rms high for 8 h",
        "Signed off pump1 regrease (maintenance), work order 4711",
        "Applied the calibration of thermo-a motor_de",
        "frobnicate on plc1",
        "As-left check of thermo-a motor_de: reference 60, hand reading 60.05",  # as the person gave it
    ]
    assert [g["note"] for g in got] == ["checking the grease", "sensor swap", "DE and NDE", "bath 12", "", ""]
    assert [g["ok"] for g in got] == [True, True, True, False, True, True]
    assert got[0]["rest"] == "" and got[4]["rest"] == 'level 3, mode {"a":1}'


def test_due_times_and_errors_read_for_a_person() -> None:
    h = 3_600_000
    got = js(
        [
            ("untilText", [5 * h, 0]),
            ("untilText", [0, 3 * h]),
            ("untilText", [40 * 60_000, 0]),
            ("untilText", [30_000, 0]),
            ("untilText", [12 * 24 * h, 0]),
            ("fmtDelta", [0.05, "degC"]),
            ("fmtDelta", [-0.4123, "degC"]),
            ("fmtDelta", [-0.001, "degC"]),
            ("fmtDelta", [0.004, ""]),
            ("fmtValue", [60.05, "degC", 1]),  # a calibration's reading: one decimal finer
        ]
    )
    assert got == [
        "in 5 h",
        "overdue by 3 h",
        "in 40 min",
        "due now",
        "in 12 d",
        "+0.05",
        "-0.41",
        "0.00",
        "+0.004",
        "60.05",
    ]
