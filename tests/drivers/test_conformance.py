"""The driver conformance kit: run over every built-in driver, and shown to catch each violation."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

import msgspec
import pytest
from conformance_cases import DRIVERS, with_files
from edge_agent.agent.config.registry import load_registry
from edge_agent.drivers.contract import Capability, DriverSpec, DType, Options, Values, ValueSpec
from edge_agent.drivers.errors import CommError, DriverError
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.drivers.testing import DriverConformance
from edge_agent.drivers.testing.conformance import check_driver, check_registration

REGISTRY = load_registry()
BUILTIN = sorted(n for n in REGISTRY.drivers if REGISTRY.origins[("driver", n)].builtin)


@pytest.fixture(scope="module")
def replay_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("replay") / "block.csv"
    path.write_text("x,y\n" + "".join(f"{i / 100:.2f},{-i / 100:.2f}\n" for i in range(200)))
    return str(path)


def test_every_builtin_has_a_case() -> None:
    assert set(BUILTIN) == set(DRIVERS), "add the new driver to tests/conformance_cases.py"


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_driver_conforms(name: str, replay_csv: str) -> None:
    options, failing = DRIVERS[name]
    spec = REGISTRY.drivers[name]
    problems = check_driver(spec, with_files(options, replay_csv), failing_open_options=failing)
    assert problems == []
    assert check_registration(spec) == []


class TestSimByTheClass(DriverConformance):
    """The way an integrator runs the kit: subclass, set spec and options."""

    spec = SIM
    options = {"channels": 2}
    failing_open_options = {"fail_open": True}


# --- the kit catches each kind of violation (and never crashes or hangs on it) ------------------


class BadOptions(Options):
    backend: str = "sim"
    mode: str = "ok"


class BadDriver:
    """Misbehaves as ``mode`` says."""

    def __init__(self, o: BadOptions) -> None:
        if o.mode == "factory":
            raise RuntimeError("factory blew up")
        self.mode = o.mode
        self.opened = False
        if o.mode == "deadline_inf":  # set per instance: not seen at load, only the kit sees it
            self.deadline_s = {"read": float("inf")}
        if o.mode == "write_arity":
            self.write = lambda tag: None

    def open(self) -> None:
        if self.mode == "open_raw":
            raise OSError(2, "No such file or directory")
        self.opened = True

    def read(self) -> Any:
        if self.mode == "early" and not self.opened:
            return Values({"a": 1.0})
        if not self.opened:
            raise DriverError("read before open")
        if self.mode == "raw":
            raise OSError(5, "Input/output error")
        if self.mode == "hang":
            time.sleep(3)
        values: dict[Any, Any] = {"a": 1.0}
        quality: dict[Any, Any] = {}
        if self.mode == "int_key":
            values[3] = 1.0
        if self.mode == "none":
            values["b"] = None
        if self.mode == "bogus":
            quality["a"] = "totally_bogus"
        if self.mode == "object":
            values["b"] = object()
        if self.mode == "driver_error":
            raise CommError("bus gone")
        if self.mode == "nan":
            values["b"] = float("nan")
        if self.mode == "inf_flagged":  # a missing value as the contract wants it: NaN or inf with a quality
            values["b"], quality["b"] = float("-inf"), "open_circuit"
        return Values(values, quality)

    def close(self) -> None:
        if self.mode == "close_twice" and not self.opened:
            raise RuntimeError("already closed")
        self.opened = False


BAD = DriverSpec(name="bad", factory=BadDriver, options=BadOptions, provides=frozenset({Capability.VALUES}))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("ok", None),
        ("factory", "factory: raised RuntimeError (factory blew up), not a DriverError"),
        ("raw", "read 1: raised OSError ([Errno 5] Input/output error), not a DriverError"),
        ("int_key", "read: key 3 is not a non-empty str"),
        ("none", "read: value 'b' is None"),
        ("bogus", "read: quality 'totally_bogus' of 'a' is not one of"),
        ("object", "read: value 'b' is a object, not bool/int/float/str"),
        ("early", "read_before_open: returned a Values instead of raising a DriverError"),
        ("driver_error", "read 1: raised CommError: bus gone"),
        ("nan", "read: 'b' = nan without a quality"),
        ("inf_flagged", None),
        ("close_twice", "close before open: raised RuntimeError (already closed)"),
        ("hang", "read 1: BadDriver.read() did not return within 0.5 s"),
        ("deadline_inf", "features: deadline_s must be finite seconds > 0"),
        ("write_arity", "features: write must take (tag, value)"),
    ],
)
def test_kit_reports_each_violation(mode: str, expected: str | None) -> None:
    problems = check_driver(BAD, {"mode": mode}, read_deadline_s=0.5)
    if expected is None:
        assert problems == []
    else:
        assert any(p.startswith(expected) for p in problems), problems


def test_kit_reports_a_raw_exception_from_a_failed_open() -> None:
    problems = check_driver(BAD, {}, failing_open_options={"mode": "open_raw"})
    assert problems == [
        "failed_open: open: raised FileNotFoundError ([Errno 2] No such file or directory), not a DriverError: a plain "
        "exception skips the quality path and restarts the instance; wrap it in a drivers.errors class"
    ]


def test_kit_checks_the_options_schema() -> None:
    assert "unknown field" in check_driver(SIM, {"nope": 1})[0]

    class Loose(msgspec.Struct):  # not contract.Options: unknown keys pass silently
        backend: str = "sim"

    loose = DriverSpec(name="loose", factory=BadDriver, options=Loose, provides=frozenset({Capability.VALUES}))
    assert any("an unknown key" in p for p in check_driver(loose, {}))

    class BadDefault(Options):  # msgspec does not check a default against its constraint
        rate_hz: Annotated[int, msgspec.Meta(ge=1)] = 0

    bad_default = DriverSpec(name="bd", factory=BadDriver, options=BadDefault, provides=frozenset({Capability.VALUES}))
    assert any("the defaults" in p and "rate_hz" in p for p in check_driver(bad_default, {}))


def test_registration_needs_an_installed_entry_point() -> None:
    assert check_registration(BAD)[0].startswith("registration: no entry point 'bad' in group 'edge_agent.drivers'")
    assert check_registration(SIM) == []


def test_a_failing_sim_read_is_reported() -> None:
    assert check_driver(SIM, {"fail_reads": [2]}) == ["read 2: raised CommError: sim: injected failure on read 2"]


def test_kit_flags_a_key_the_driver_does_not_declare() -> None:
    declared = dataclasses.replace(BAD, values=lambda o: [ValueSpec("a", DType.FLOAT64)])
    problems = check_driver(declared, {"mode": "inf_flagged"}, read_deadline_s=0.5)
    assert any(p.startswith("read: key 'b' is not among the declared values") for p in problems), problems
    assert check_driver(declared, {"mode": "ok"}, read_deadline_s=0.5) == []
