"""The driver conformance kit, run over every built-in driver's simulated backend."""

from __future__ import annotations

from edge_agent.drivers.conformance import check_driver
from edge_agent.drivers.sim import SPEC as SIM


def test_sim_driver_conforms() -> None:
    assert check_driver(SIM, {"channels": 3}) == []


def test_conformance_reports_problems() -> None:
    assert check_driver(SIM, {"fail_reads": [2]}) == ["life cycle raised CommError: sim: injected failure on read 2"]
    assert "unknown field" in check_driver(SIM, {"nope": 1})[0]
