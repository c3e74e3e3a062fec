"""Bearing tones from geometry, and diagnosis on the simulated machine: right tone only."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from edge_agent.drivers.iio.driver import IioDriver, IioOptions
from edge_agent.drivers.simulation.vibration_model import ModelOptions, SimBearing, defect_orders
from edge_agent.plugins.testing.harness import Harness
from edge_agent.plugins.vibration import SPEC
from edge_agent.plugins.vibration.bearing import NofM, Orders, Tone, orders_from_geometry
from edge_agent.plugins.vibration.options import BearingOptions

GEOMETRY_6205 = {"balls": 9, "ball_diameter": 0.3126, "pitch_diameter": 1.537}


def test_6205_at_1797_rpm() -> None:
    hz = orders_from_geometry(9, 0.3126, 1.537).hz(1797 / 60)
    assert round(hz[Tone.BPFI], 2) == 162.19
    assert round(hz[Tone.BPFO], 2) == 107.36
    assert round(hz[Tone.FTF], 2) == 11.93
    assert round(2 * hz[Tone.BSF], 2) == 141.17


def test_contact_angle_and_catalogue_orders() -> None:
    angled = orders_from_geometry(9, 0.3126, 1.537, 15.0)
    assert angled.bpfo > orders_from_geometry(9, 0.3126, 1.537).bpfo
    cat = BearingOptions(bpfo=3.585, bpfi=5.415, bsf=2.357, ftf=0.398)
    assert cat.orders() == Orders(bpfo=3.585, bpfi=5.415, bsf=2.357, ftf=0.398)
    assert BearingOptions(bpfo=3.5).problems()
    assert BearingOptions(balls=9, ball_diameter=2.0, pitch_diameter=1.0).problems()


def test_model_uses_the_same_kinematics() -> None:
    ref = orders_from_geometry(9, 0.3126, 1.537)
    model = defect_orders(SimBearing())
    assert model["bpfo"] == pytest.approx(ref.bpfo) and model["bsf"] == pytest.approx(ref.bsf)


def test_n_of_m() -> None:
    ind = NofM(3, 5)
    assert [ind.update(p) for p in (True, False, True, False)] == [None, None, None, None]
    assert ind.update(True) is True  # T F T F T: 3 of the last 5
    assert ind.update(False) is False  # F T F T F: 2 of 5
    assert [ind.update(p) for p in (False, False, False)] == [None, None, None]


class StepClock:
    """Driver-side clock advanced by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_machine(fault: str, rpm: float, seed: int, rate_hz: float, windows: int = 6) -> list[Any]:
    """Windows of the plugin on the iio sim backend; returns the emitted messages."""
    sim = {"fault": fault, "rpm": rpm, "seed": seed, "fault_g": 0.15}
    clock = StepClock()
    driver = IioDriver(msgspec.convert({"backend": "sim", "rate_hz": rate_hz, "sim": sim}, IioOptions), clock=clock)
    opts = {"speed_source": "fixed", "rpm": rpm, "bearing": GEOMETRY_6205}
    h = Harness(SPEC, options=opts, driver=driver)

    async def go() -> None:
        await h.start()
        for _ in range(windows):
            clock.now += 1.0
            await h.poll(advance_s=1.0)
        await h.close()

    asyncio.run(go())
    return [e.values for e in h.emitted]


def faults(msg: dict[str, Any]) -> set[str]:
    return {t for t, v in msg["bearing"].items() if v.get("fault")}


CASES = [
    ("outer", 1797.0, 1, 25600.0, "bpfo"),
    ("outer", 1200.0, 2, 3200.0, "bpfo"),
    ("inner", 1797.0, 3, 3200.0, "bpfi"),
    ("inner", 2900.0, 4, 25600.0, "bpfi"),
    ("ball", 1797.0, 5, 25600.0, "bsf"),
    ("ball", 1480.0, 6, 3200.0, "bsf"),
]


@pytest.mark.parametrize(("fault", "rpm", "seed", "rate", "tone"), CASES)
def test_fault_flags_the_right_tone_only(fault: str, rpm: float, seed: int, rate: float, tone: str) -> None:
    msgs = run_machine(fault, rpm, seed, rate)
    assert faults(msgs[-1]) == {tone}
    assert msgs[-1]["rpm"] == pytest.approx(rpm)


@pytest.mark.parametrize(("rpm", "seed", "rate"), [(1797.0, 1, 25600.0), (900.0, 2, 3200.0), (3000.0, 3, 25600.0)])
def test_healthy_machine_flags_nothing(rpm: float, seed: int, rate: float) -> None:
    for msg in run_machine("none", rpm, seed, rate, windows=12):
        assert faults(msg) == set()


def test_model_options_default_is_healthy() -> None:
    assert ModelOptions().fault == "none"
