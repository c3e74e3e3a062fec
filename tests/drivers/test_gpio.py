"""The GPIO driver on gpiozero's MockFactory, with a scripted clock so that edges have exact times."""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec
import pytest
from edge_agent.drivers.gpio.driver import SPEC, Debouncer, GpioDriver, GpioOptions, Tachometer, check, make_factory
from gpiozero.pins.mock import MockFactory, MockPin, PinState
from support import scaled


class ScriptedPin(MockPin):
    """A MockPin whose edges are stamped with the factory's scripted time instead of the wall clock."""

    def _change_state(self, value: bool) -> bool:
        state: Any = self.__dict__["_state"]
        if state == value:
            return False
        t = self._factory.now
        last: float = self.__dict__["_last_change"]
        self.__dict__.update(_state=value, _last_change=t)
        self.states.append(PinState(t - last, value))
        return True


class ScriptedFactory(MockFactory):
    def __init__(self) -> None:
        super().__init__(pin_class=ScriptedPin)
        self.now = 0.0

    def ticks(self) -> float:
        return self.now


def make(
    inputs: list[dict[str, Any]], outputs: list[dict[str, Any]] | None = None
) -> tuple[GpioDriver, ScriptedFactory]:
    f = ScriptedFactory()
    o = msgspec.convert({"backend": "mock", "inputs": inputs, "outputs": outputs or []}, GpioOptions)
    d = GpioDriver(o, pin_factory=f)
    d.open()
    return d, f


def pulses(f: ScriptedFactory, pin: int, freq_hz: float, start_s: float, stop_s: float, active_high: bool) -> float:
    """A square wave with exact edge times on a pin; returns the time of the last active edge."""
    p = f.pin(pin)
    k = 0
    while start_s + k / freq_hz < stop_s:
        f.now = start_s + k / freq_hz
        p.drive_high() if active_high else p.drive_low()
        f.now += 0.5 / freq_hz
        p.drive_low() if active_high else p.drive_high()
        k += 1
    return start_s + (k - 1) / freq_hz


def test_tachometer_pulse_train_gives_the_right_rpm_and_times_out_to_zero() -> None:
    d, f = make([{"name": "shaft_rpm", "pin": 5, "kind": "tachometer", "pulses_per_rev": 2, "pull": "down"}])
    last = pulses(f, 5, 49.5, 0.0, 1.0, active_high=True)  # 49.5 Hz / 2 pulses per rev = 1485 rpm
    f.now = 1.0
    assert d.read().values["shaft_rpm"] == pytest.approx(1485.0, rel=1e-9)
    last = pulses(f, 5, 25.0, last + 0.04, 3.0, active_high=True)  # slows down to 750 rpm
    f.now = 3.0
    assert d.read().values["shaft_rpm"] == pytest.approx(750.0, rel=1e-9)
    f.now = last + 0.5  # no pulse for 0.5 s: at most 60 / 0.5 / 2 = 60 rpm
    assert d.read().values["shaft_rpm"] == pytest.approx(60.0, rel=1e-9)
    f.now = last + 2.01  # more than timeout_s (2 s) after the last pulse
    assert d.read().values["shaft_rpm"] == 0.0
    d.close()


def test_counter_is_debounced_in_our_code() -> None:
    d, f = make([{"name": "parts", "pin": 6, "kind": "counter", "debounce_s": 0.01}])  # pull-up: active low
    p = f.pin(6)
    for t, level in [(0.100, 0), (0.101, 1), (0.102, 0), (0.103, 1), (0.104, 0),  # press with contact bounce
                     (0.300, 1), (0.301, 0), (0.3015, 1),  # release with bounce
                     (0.500, 0), (0.502, 1),  # a 2 ms glitch: not a part
                     (0.700, 0), (0.800, 1)]:  # fmt: skip
        f.now = t
        p.drive_high() if level else p.drive_low()
    f.now = 1.0
    assert d.read().values["parts"] == 2
    d.close()


def test_input_state_with_pull_and_active_state() -> None:
    d, f = make([{"name": "door", "pin": 7}, {"name": "lamp_ok", "pin": 8, "pull": "down", "active_state": "low"}])
    assert d.read().values == {"door": False, "lamp_ok": True}  # idle levels: high (pull-up), low (pull-down)
    f.now = 1.0
    f.pin(7).drive_low()
    f.pin(8).drive_high()
    f.now = 1.005
    assert d.read().values == {"door": False, "lamp_ok": True}  # not stable for 10 ms yet
    f.now = 1.02
    assert d.read().values == {"door": True, "lamp_ok": False}
    d.close()


def test_outputs_are_off_by_default_and_switch_off_on_close() -> None:
    d, f = make([], [{"name": "stack_red", "pin": 20}, {"name": "relay", "pin": 21, "active_high": False}])
    assert f.pin(20).state is False and f.pin(21).state is True  # both off
    d.write("stack_red", True)
    d.write("relay", True)
    assert f.pin(20).state is True and f.pin(21).state is False
    with pytest.raises(ValueError, match="no output named"):
        d.write("horn", True)
    d.close()
    assert f.pin(20).state is False and f.pin(21).state is True


def test_debouncer_and_tachometer_units() -> None:
    db = Debouncer(0.01, False)
    assert db.edge(0.0, True) == [] and db.edge(0.005, False) == [] and db.settle(1.0) == []
    assert db.edge(1.0, True) == [] and db.settle(1.02) == [(1.0, True)]
    t = Tachometer(pulses_per_rev=1, timeout_s=1.0)
    assert t.rpm(0.5) == 0.0
    for k in range(11):
        t.pulse(k * 0.1)
    assert t.rpm(1.0) == pytest.approx(600.0)


def test_sim_backend_generates_pulses() -> None:
    o = msgspec.convert(
        {"backend": "sim", "inputs": [{"name": "parts", "pin": 6, "kind": "counter", "sim_hz": 200, "debounce_s": 0}]},
        GpioOptions,
    )
    d = SPEC.factory(o)
    assert isinstance(d, GpioDriver)
    d.open()
    deadline = time.monotonic() + scaled(5.0)
    while d.read().values["parts"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    d.close()
    d.close()
    assert d.read is not None


def test_pin_factory_from_the_environment_and_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.drivers.gpio.driver import Backend

    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    assert isinstance(make_factory(Backend.HW, None), MockFactory)
    o = msgspec.convert({"inputs": [{"name": "a", "pin": 5}], "outputs": [{"name": "a", "pin": 5}]}, GpioOptions)
    assert check(o) == [
        "inputs: duplicate name(s) a across inputs and outputs",
        "inputs: duplicate pin(s) 5 across inputs and outputs",
    ]


def test_sim_edges_carry_their_own_times() -> None:
    """Each simulated edge has its due time as its ticks and is delivered at the next read (no
    thread), so the tachometer reads the configured speed exactly (24.75 Hz -> 1485 rpm)."""
    tach = {"name": "rpm", "pin": 5, "kind": "tachometer", "pull": "down", "sim_hz": 24.75}
    d = GpioDriver(msgspec.convert({"backend": "sim", "inputs": [tach]}, GpioOptions))
    d.open()
    try:
        time.sleep(0.6)
        assert d.read().values["rpm"] == pytest.approx(1485.0, rel=1e-9)
        assert not [t for t in threading.enumerate() if "gpio" in t.name]
    finally:
        d.close()
