"""The simulated machine: the cheaper shaft and impact arithmetic gives the former formulas' samples."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.simulation.vibration_model import FaultKind, ModelOptions, VibrationModel
from former_vibration_model import FormerModel

PLANT = {  # the reference plant's three machines (examples/snippets/vibration.toml), two more faults
    "pump1-de": (
        {
            "rpm": 1485,
            "unbalance_g": 0.04,
            "fault": "outer",
            "fault_start_s": 0.5,
            "fault_g": 0.02,
            "fault_growth_g_per_min": 0.06,
        },
        3200.0,
        3,
    ),
    "pump1-nde": ({"rpm": 1485, "unbalance_g": 0.04, "seed": 2}, 3200.0, 3),
    "fan2": ({"rpm": 2980, "unbalance_g": 0.1, "noise_g": 0.03, "seed": 3}, 25600.0, 3),
    "inner-8-axes": ({"fault": "inner", "seed": 5}, 25600.0, 8),
    "ball": ({"fault": "ball", "fault_g": 0.3, "seed": 7}, 3200.0, 3),
}


def pair(name: str) -> tuple[VibrationModel, VibrationModel]:
    opts, rate_hz, axes = PLANT[name]
    o = msgspec.convert(opts, ModelOptions)
    return VibrationModel(o, rate_hz, axes), FormerModel(o, rate_hz, axes)


@pytest.mark.parametrize("name", sorted(PLANT))
def test_blocks_match_the_former_formulas(name: str) -> None:
    new, old = pair(name)
    rate_hz = new.rate_hz
    for n in [int(rate_hz * 0.125)] * 6 + [7, 1, int(rate_hz)] * 2 + [50]:  # emulator chunks, odd sizes, 1-s reads
        a, b = new.generate(n), old.generate(n)
        assert a.shape == b.shape == (n, new.axes)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert new.rng.bit_generator.state == old.rng.bit_generator.state  # the same random stream
    assert new.n_done == old.n_done and new._next_impact_k == old._next_impact_k


def test_switching_the_fault_off_and_gaps_match_the_former_formulas() -> None:
    new, old = pair("ball")
    for step in range(12):
        if step == 4:
            for m in (new, old):
                m.set_fault(FaultKind.NONE, 0.0)  # the resonance tail rings on into the healthy blocks
        if step == 8:
            for m in (new, old):
                m.skip(1000)
                m.set_fault(FaultKind.OUTER, 0.4)
        n = 60 if step % 2 else 400  # blocks shorter than the tail too
        np.testing.assert_allclose(new.generate(n), old.generate(n), rtol=0, atol=1e-12)
    assert new.rng.bit_generator.state == old.rng.bit_generator.state


def test_an_hour_later_the_shaft_still_matches() -> None:
    new, old = pair("fan2")
    for m in (new, old):
        m.n_done = 3600 * 25600  # large phase arguments: rounding of w t + ph differs by ~1 ulp of w t
    np.testing.assert_allclose(new.generate(25600), old.generate(25600), rtol=0, atol=5e-12)
