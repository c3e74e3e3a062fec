"""Machine diagnosis: known answers (synthetic faults at several speeds and severities), the rule
table's behaviour, hostile inputs, and the plugin's machine_fault events and declared values."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest
from edge_agent.drivers.contract import Waveform
from edge_agent.drivers.dotted_keys import numeric_leaves as flatten
from edge_agent.plugins.contract import Severity
from edge_agent.plugins.testing.harness import Harness
from edge_agent.plugins.testing.vibration_faults import (
    EXPECTED,
    GATE_MM_S,
    Case,
    TrueFault,
    cases,
    confusion,
    diagnosed,
    feature_config,
    markdown,
    window,
)
from edge_agent.plugins.vibration import SPEC
from edge_agent.plugins.vibration.analysis import analyse
from edge_agent.plugins.vibration.diagnosis import RULES, Condition, Fault, order_amplitudes
from edge_agent.plugins.vibration.features import spectrum
from edge_agent.plugins.vibration.iso import Zone
from edge_agent.plugins.vibration.options import VibrationOptions

RATE = 3200.0
CFG = feature_config(RATE)


@pytest.mark.parametrize("case", [c for c in cases(seeds=2) if c.severity == "moderate"], ids=str)
def test_every_fault_is_named_right_at_moderate_severity(case: Case) -> None:
    assert diagnosed(case, CFG) == EXPECTED[case.fault]


@pytest.mark.parametrize("rpm", [600.0, 900.0, 1485.0, 1800.0, 2970.0, 3600.0])
@pytest.mark.parametrize("seed", range(6))
def test_healthy_machines_stay_quiet_across_speeds(rpm: float, seed: int) -> None:
    assert diagnosed(Case(TrueFault.HEALTHY, rpm, "moderate", 100 + seed), CFG) == frozenset()


def test_severe_faults_are_named_and_light_ones_never_misnamed() -> None:
    table, totals = confusion([c for c in cases(seeds=2) if c.severity != "moderate"])
    for (fault, sev), row in table.items():
        wrong = {k: v for k, v in row.items() if v and k != "none" and k not in EXPECTED[fault]}
        assert not wrong or (fault is TrueFault.MISALIGNMENT_ANGULAR and set(wrong) == {"unbalance"}), (fault, sev, row)
        if sev == "severe":
            assert all(row[k] == totals[(fault, sev)] for k in EXPECTED[fault]), (fault, row)


def test_confusion_markdown_has_a_row_per_fault_and_severity() -> None:
    table, totals = confusion(list(cases(speeds_rpm=(1485.0,), seeds=1)))
    md = markdown(table, totals)
    assert md.count("\n") == 2 + len(TrueFault) * 3 - 2 - 1  # healthy has one severity
    assert "| healthy | moderate |" in md and "**1/1**" in md


def test_order_amplitudes_read_a_known_sine() -> None:
    t = np.arange(int(RATE)) / RATE
    x = np.stack([0.3 * np.sin(2 * np.pi * 49.5 * t), 0.1 * np.sin(2 * np.pi * 12.375 * t)])
    sp = spectrum(x, RATE)
    amp, db = order_amplitudes(sp.power(), sp, 24.75, (0.5, 1.0, 2.0))
    assert amp[0, 2] == pytest.approx(0.3, rel=0.01) and db[0, 2] > 60
    assert amp[1, 0] == pytest.approx(0.1, rel=0.01)
    assert amp[0, 1] < 1e-3


def test_unbalance_evidence_names_orders_velocities_and_axes() -> None:
    a = analyse(window(Case(TrueFault.UNBALANCE, 1485.0, "severe", 1), GATE_MM_S), RATE, CFG, 24.75)
    d = a.diagnoses[Fault.UNBALANCE]
    assert d.confidence == 1.0 and d.kind == "1x radial"
    assert "1x" in d.evidence and "(x)" in d.evidence and "axial (z)" in d.evidence
    assert d.scores["axial_1x_ratio"] < 0.35
    assert a.message["diagnosis"]["unbalance"]["confidence"] == 1.0


def test_without_an_axial_axis_misalignment_is_still_found_by_its_2x() -> None:
    cfg = feature_config(RATE)
    cfg = type(cfg)(**{**cfg.__dict__, "axial_axis": None})
    a = analyse(window(Case(TrueFault.MISALIGNMENT_PARALLEL, 1800.0, "moderate", 0), GATE_MM_S), RATE, cfg, 30.0)
    assert a.diagnoses[Fault.MISALIGNMENT].confidence >= 0.6
    assert "axial" not in a.diagnoses[Fault.MISALIGNMENT].evidence


def test_rule_table_is_data_with_sources() -> None:
    assert {r.fault for r in RULES} == set(Fault)
    assert all("ISO 13373-3" in r.source for r in RULES)
    assert Condition("x", 0.5, 0.25).score(0.2) == 1.0 and Condition("x", 0.5, 0.25).score(0.6) == 0.0


@pytest.mark.parametrize(
    "x",
    [np.zeros((3200, 3)), np.full((3200, 3), np.nan), np.full((3200, 3), 1e30), np.ones((3200, 3))],
    ids=["zeros", "nan", "huge", "dc"],
)
@pytest.mark.parametrize("shaft_hz", [0.2, 24.75, 1500.0])
def test_hostile_windows_give_no_diagnosis_and_no_crash(x: Any, shaft_hz: float) -> None:
    with np.errstate(all="ignore"):
        a = analyse(x, RATE, CFG, shaft_hz)
    assert all(not d.confidence >= 0.6 for d in a.diagnoses.values())


def test_zone_names_follow_iso_20816_3() -> None:
    assert "unrestricted long-term" in Zone.B.description and "damage" in Zone.D.description


# -- the plugin ---------------------------------------------------------------------------------


class CaseDriver:
    """Serves 1-s windows of a fault case, switching case after ``switch_at`` reads."""

    def __init__(self, first: TrueFault, then: TrueFault, switch_at: int) -> None:
        self.first, self.then, self.switch_at, self.reads = first, then, switch_at, 0

    def open(self) -> None:
        pass

    def read(self) -> Waveform:
        fault = self.first if self.reads < self.switch_at else self.then
        x = window(Case(fault, 1485.0, "severe", self.reads), GATE_MM_S)
        self.reads += 1
        return Waveform(x, RATE, ("x", "y", "z"), self.reads * 1000)

    def close(self) -> None:
        pass


def _run(driver: CaseDriver, polls: int) -> Harness:
    opts = {"speed_source": "fixed", "rpm": 1485.0, "window_s": 1.0, "peaks": 0}
    h = Harness(SPEC, options=opts, driver=driver)

    async def go() -> None:
        await h.start()
        await h.poll(times=polls, advance_s=1.0)
        await h.close()

    asyncio.run(go())
    return h


def test_plugin_raises_and_clears_machine_fault_by_exception() -> None:
    h = _run(CaseDriver(TrueFault.UNBALANCE, TrueFault.HEALTHY, 6), 12)
    events = [e for e in h.events if e.kind == "machine_fault"]
    assert [(e.fields["fault"], e.fields["active"]) for e in events] == [("unbalance", True), ("unbalance", False)]
    assert events[0].severity is Severity.ALARM and events[1].severity is Severity.INFO
    assert "mm/s" in events[0].fields["evidence"] and events[0].fields["confidence"] >= 0.6
    msgs = [m.values for m in h.emitted if "diagnosis" in m.values]
    assert msgs[4]["diagnosis"]["faults"] == "unbalance" and msgs[4]["diagnosis"]["unbalance"]["active"] is True
    assert msgs[-1]["diagnosis"]["faults"] == ""


def test_every_emitted_diagnosis_key_is_declared() -> None:
    h = _run(CaseDriver(TrueFault.LOOSENESS, TrueFault.LOOSENESS, 99), 4)
    opts = VibrationOptions(speed_source="fixed", rpm=1485.0, peaks=0)
    declared = {v.key for v in SPEC.values(opts, [])} if SPEC.values else set()
    keys = {k for m in h.emitted for k in _all_keys(m.values)}
    diag = {k for k in keys if k.startswith("diagnosis.")}
    assert diag and diag <= declared
    assert any(k.endswith("looseness.confidence") for k in flatten(h.emitted[-1].values))


def _all_keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k, v in d.items():
        out += _all_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def test_diagnosis_can_be_switched_off() -> None:
    opts = VibrationOptions(speed_source="fixed", rpm=1485.0, diagnosis=False)
    assert SPEC.values is not None
    assert not any(v.key.startswith("diagnosis") for v in SPEC.values(opts, []))
    assert math.isclose(VibrationOptions(machine_group=1).diagnosis_gate(), 4.5)


def test_declared_diagnosis_becomes_typed_sparkplug_metrics() -> None:
    from edge_agent.agent.sparkplug.device import Aliases, Device, declare
    from edge_agent.agent.sparkplug.payload import DataType

    assert SPEC.values is not None
    dev = Device("pump1-de")
    declare(dev, Aliases(), SPEC.values(VibrationOptions(speed_source="fixed", rpm=1485.0), []))
    assert dev.metrics["diagnosis.unbalance.confidence"].datatype is DataType.FLOAT
    assert dev.metrics["diagnosis.unbalance.active"].datatype is DataType.BOOLEAN
    assert dev.metrics["diagnosis.faults"].datatype is DataType.STRING


def test_the_quiet_shortcut_never_hides_a_diagnosis() -> None:
    """Below 0.7 x the gate (largest axis) the full rules give 0 everywhere: the shortcut is exact."""
    from edge_agent.plugins.vibration.diagnosis import QUIET_BELOW, diagnose, quiet, symptoms
    from edge_agent.plugins.vibration.features import velocity_rms_mm_s

    checked = 0
    for case in cases(seeds=2):
        x = window(case, GATE_MM_S)
        sp = spectrum(np.ascontiguousarray(x.T), RATE)
        power = sp.power()
        vel = velocity_rms_mm_s(power, sp)
        shaft = case.rpm / 60.0
        full = diagnose(symptoms(power, sp, shaft, ("x", "y", "z"), "z", vel), GATE_MM_S)
        short = quiet(float(vel.max()), shaft, GATE_MM_S, (10.0, 1000.0))
        if short is not None:
            checked += 1
            assert all(d.confidence == 0.0 for d in full.values()), (case, vel, full)
            assert all(d.confidence == 0.0 and "below the gate" in d.evidence for d in short.values())
        else:
            assert float(vel.max()) >= QUIET_BELOW * GATE_MM_S or shaft < 20.0
    assert checked >= 10
    assert quiet(0.1, 12.0, GATE_MM_S, (10.0, 1000.0)) is None  # 0.5x at 6 Hz: outside the band, look
