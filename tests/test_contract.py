"""The versioned contract: another major version is refused, a newer minor warns."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from edge_agent.agent.config.registry import Registry
from edge_agent.drivers import contract as dc
from edge_agent.drivers.contract import ContractError
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.plugins import contract as pc
from edge_agent.plugins.values.plugin import SPEC as VALUES


def test_another_major_version_is_refused_with_both_versions() -> None:
    old = dataclasses.replace(SIM, contract_version="0.9")
    with pytest.raises(ContractError, match=r"written for contract 0\.9, this agent implements 1\.2"):
        Registry().add_driver(old)
    new = dataclasses.replace(VALUES, contract_version="2.0")
    with pytest.raises(ContractError, match=r"written for contract 2\.0, this agent implements 1\.2"):
        Registry().add_plugin(new)


def test_a_newer_minor_version_loads_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "edge_agent.registry"):
        Registry().add_driver(dataclasses.replace(SIM, contract_version="1.7"))
    assert "written for contract 1.7, newer than this agent's 1.2" in caplog.text
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
    assert pc.CONTRACT_VERSION == dc.CONTRACT_VERSION == "1.2"


def test_a_plugin_reading_that_does_not_fit_its_requirement_is_refused() -> None:
    wrong = dataclasses.replace(VALUES, reading=dc.Waveform)
    with pytest.raises(ContractError, match="does not match requires: a driver gives Values"):
        Registry().add_plugin(wrong)
    Registry().add_plugin(dataclasses.replace(VALUES, reading=dc.Values))


class _Plain:
    def open(self) -> None: ...

    def read(self) -> dc.Values:
        return dc.Values({})

    def close(self) -> None: ...


class _Deadlines(_Plain):
    deadline_s = {"read": "fast"}


class _BadWrite(_Plain):
    deadline_s = {"read": 2.0, "open": 30}

    def write(self) -> None: ...


class _Features(_Plain):
    deadline_s: dict[str, float]  # annotated only: set per instance
    failure: Exception | None = None

    def write(self, tag: str, value: object) -> object:
        return value


def _make_features(options: dc.Options) -> _Features:
    return _Features()


def test_a_wrongly_typed_optional_feature_is_refused_at_load_naming_it() -> None:
    with pytest.raises(
        ContractError, match=r"optional feature 'deadline_s' of _Deadlines \(DeclaresDeadlines\): .*'fast'"
    ):
        Registry().add_driver(dataclasses.replace(SIM, factory=_Deadlines))
    with pytest.raises(
        ContractError, match=r"optional feature 'write' of _BadWrite \(Writable\): write must take \(tag, value\)"
    ):
        Registry().add_driver(dataclasses.replace(SIM, factory=_BadWrite))
    for bad in (float("inf"), float("nan"), True, 0, -1):
        with pytest.raises(ContractError, match=r"deadline_s must be finite seconds > 0"):
            Registry().add_driver(dataclasses.replace(SIM, factory=type("Bad", (_Features,), {"deadline_s": bad})))
    with pytest.raises(ContractError, match=r"deadline_s names 'reed'"):
        Registry().add_driver(dataclasses.replace(SIM, factory=type("Typo", (_Features,), {"deadline_s": {"reed": 1}})))


def test_optional_features_are_seen_on_the_factory_class_or_its_declared_return_type() -> None:
    spec = dataclasses.replace(SIM, factory=_Features)
    Registry().add_driver(spec)
    assert dc.driver_features(spec) == ("write", "deadline_s", "failure")
    assert dc.driver_features(dataclasses.replace(SIM, factory=_make_features)) == ("write", "deadline_s", "failure")
    assert dc.driver_features(dataclasses.replace(SIM, factory=lambda o: _Features())) == ()  # unknown until run
    assert dc.driver_features(SIM) == ()
    driver = _Features()
    driver.deadline_s = {"read": 1.0}
    assert isinstance(driver, dc.Writable) and isinstance(driver, dc.DeclaresDeadlines)
    assert not isinstance(_Deadlines(), dc.Writable)


@pytest.mark.slow  # two CLI processes that load every driver
def test_the_listings_name_each_drivers_optional_features() -> None:
    root = Path(__file__).resolve().parent.parent
    run = [sys.executable, "-m", "edge_agent.agent", "drivers"]
    text = subprocess.run(run, capture_output=True, text=True, cwd=root, check=True).stdout
    assert any(line.startswith("modbus ") and line.endswith("[write]") for line in text.splitlines())
    listed = json.loads(subprocess.run([*run, "--json"], capture_output=True, text=True, cwd=root, check=True).stdout)
    features = {d["name"]: d.get("features") for d in listed}
    assert features["modbus"] == ["write"] and features["gpio"] == ["write"] and features["sim"] == []
