"""The versioned contract: another major version is refused, a newer minor warns."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from edge_agent.agent.config.registry import Registry
from edge_agent.drivers import contract as dc
from edge_agent.drivers.contract import ContractError
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.plugins import contract as pc
from edge_agent.plugins.values.plugin import SPEC as VALUES


def test_another_major_version_is_refused_with_both_versions() -> None:
    old = dataclasses.replace(SIM, contract_version="0.9")
    with pytest.raises(ContractError, match=r"written for contract 0\.9, this agent implements 1\.0"):
        Registry().add_driver(old)
    new = dataclasses.replace(VALUES, contract_version="2.0")
    with pytest.raises(ContractError, match=r"written for contract 2\.0, this agent implements 1\.0"):
        Registry().add_plugin(new)


def test_a_newer_minor_version_loads_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "edge_agent.registry"):
        Registry().add_driver(dataclasses.replace(SIM, contract_version="1.7"))
    assert "written for contract 1.7, newer than this agent's 1.0" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "edge_agent.registry"):
        Registry().add_driver(SIM)
    assert caplog.text == ""


def test_a_malformed_version_is_refused() -> None:
    with pytest.raises(ContractError, match=r'contract_version must be "MAJOR\.MINOR", got \'one\''):
        Registry().add_driver(dataclasses.replace(SIM, contract_version="one"))


def test_reading_types_live_in_the_contract_beside_their_capability() -> None:
    assert dc.READING_TYPES[dc.Capability.TEMPERATURE] is dc.TemperatureReading
    assert issubclass(dc.TemperatureReading, dc.Values)
    assert pc.CONTRACT_VERSION == dc.CONTRACT_VERSION == "1.0"


def test_a_plugin_reading_that_does_not_fit_its_requirement_is_refused() -> None:
    wrong = dataclasses.replace(VALUES, reading=dc.Waveform)
    with pytest.raises(ContractError, match="does not match requires: a driver gives Values"):
        Registry().add_plugin(wrong)
    Registry().add_plugin(dataclasses.replace(VALUES, reading=dc.Values))
