"""What `edge-agent cmd` prints for people: one line for a refusal, tables for lists, JSON --arg values."""

from __future__ import annotations

from typing import Any

import pytest
from edge_agent.agent.maintenance.calibration import Calibrations
from edge_agent.agent.ops.answers import parse_args, summary, table
from edge_agent.drivers.contract import ChannelReading, temperature_reading
from edge_agent.plugins.contract import MemoryStore


def test_arg_values_lists_and_objects_are_json_text_stays_text() -> None:
    got = parse_args(["points=[[40,40.8],[100,100.8]]", "by=A. Technician", "reference=45", 'o={"a": 1}', "on:=true"])
    assert got == {
        "points": [[40, 40.8], [100, 100.8]],
        "by": "A. Technician",
        "reference": "45",
        "o": {"a": 1},
        "on": True,
    }
    with pytest.raises(ValueError, match=r"--arg points: not valid JSON"):
        parse_args(["points=[[40,40.8],"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_args(["points"])


def test_a_refusal_is_one_line_and_a_list_is_a_table() -> None:
    assert summary("plant-01", "write", {"ok": False, "error": "tag 'x' is\nnot writable"}) == (
        "plant-01: write refused: tag 'x' is not writable"
    )
    caps = {
        "captures": [{"id": "c1", "instance": "pump1-de", "bytes": 1200}, {"id": "c2", "instance": "plc1", "bytes": 9}]
    }
    lines = summary("a", "captures", {"ok": True, "result": caps}).splitlines()
    assert lines[0] == "captures:" and lines[1].split() == ["id", "instance", "bytes"]
    assert lines[2].split() == ["c1", "pump1-de", "1200"] and len(lines) == 4
    assert summary("a", "x", {"ok": True, "result": {"v": 0.9000000000000057, "png": b"123"}}).splitlines() == [
        "v: 0.9",
        "png: 3 bytes (save with --save png=FILE)",
    ]
    assert table([]) == ["(none)"]


def _calibrated() -> tuple[Calibrations, dict[str, Any]]:
    cal = Calibrations(MemoryStore(), lambda *a: None, lambda *a: None)
    cal.correct("thermo-a", temperature_reading({"motor_nde": ChannelReading(44.05)}))
    args = {"instance": "thermo-a", "channel": "motor_nde", "by": "ann"}
    rec = cal.command({**args, "points": [[44.05, 45.0]]}, None)
    return cal, rec


def test_a_calibration_reads_as_a_technician_expects() -> None:
    cal, rec = _calibrated()
    text = summary("plant-01", "calibrate", {"ok": True, "result": rec})
    assert "thermo-a/motor_nde calibrated by ann" in text and "as found: -0.950 degC (reading minus reference" in text
    assert "as left:  not checked (send action=check" in text
    check = cal.command({"instance": "thermo-a", "channel": "motor_nde", "by": "ann", "action": "check",
                         "reference": 60.0, "reading": 60.02}, None)  # fmt: skip
    assert summary("p", "calibrate", {"ok": True, "result": check}) == (
        "thermo-a/motor_nde: as left +0.020 degC at 60 degC (reading 60.02)"
    )
    shown = summary("p", "calibrate", {"ok": True, "result": cal.show(("thermo-a", "motor_nde"))})
    assert "as left:  +0.020 degC" in shown and "history:" in shown and "check" in shown
