"""The temperature plugin with emulated chips and scripted drivers, through the plugin Harness."""

import asyncio
import tomllib
from pathlib import Path

import msgspec
import pytest
from edge_agent.drivers.contract import ChannelReading, Linearisation, Quality, Values, temperature_reading
from edge_agent.drivers.errors import CommError
from edge_agent.drivers.max318xx import max31855, max31856, max31865
from edge_agent.plugins.contract import Severity, check_plugin_spec
from edge_agent.plugins.temperature import SPEC, its90
from edge_agent.plugins.testing.harness import Harness, ManualClock

SNIPPET = Path(__file__).resolve().parents[2] / "examples" / "snippets" / "temperature.toml"


class ScriptDriver:
    """A driver that returns scripted readings: each item maps channel -> degC, a
    ChannelReading, or is an exception to raise."""

    def __init__(self, script):
        self.script = list(script)
        self.reads = 0

    def open(self):
        pass

    def read(self):
        item = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        if isinstance(item, Exception):
            raise item
        return temperature_reading(
            {k: v if isinstance(v, ChannelReading) else ChannelReading(v) for k, v in item.items()}
        )

    def close(self):
        pass


def run(h, polls, step_s=1.0):
    async def go():
        if not getattr(h, "_started", False):
            await h.start()
            h._started = True
        for _ in range(polls):
            await h.poll()
            h.clock.advance(step_s)

    asyncio.run(go())


def harness(driver, **options):
    return Harness(SPEC, options=options, driver=driver, clock=ManualClock())


def values_of(h, channel, key):
    """Every value published for channel.key, in order (None for a bad reading)."""
    return [e.values[channel][key] for e in h.emitted if key in e.values.get(channel, {})]


def kinds(h):
    return [(e.kind, e.fields.get("active"), e.fields.get("quality")) for e in h.events]


def test_spec_is_valid():
    spec = check_plugin_spec(SPEC, "edge_agent.plugins.temperature:SPEC")
    assert spec.requires.value == "temperature"
    o = msgspec.convert({"median_window": 4}, spec.options)
    assert spec.check(o, "max31855") == ["median_window: must be odd (1 = off), got 4"]


# --- conversions -----------------------------------------------------------------------------


@pytest.mark.parametrize("nist", [True, False])
def test_max31855_nist_correction(nist):
    chip_c = 25.0 + (its90.emf_mv("K", 200.0) - its90.emf_mv("K", 25.0)) / 0.041276  # 197.94
    chip = max31855.Max31855Chip(max31855.encode_frame(chip_c, 25.0))
    drv = max31855.SPEC.factory.__call__(
        msgspec.convert({"channels": [{"name": "oven"}]}, max31855.Max31855Options), buses={"oven": chip}
    )
    h = harness(drv, nist_correction=nist)
    run(h, 1)
    value = h.emitted[0].values["oven"]["temp_c"]
    if nist:
        assert value == pytest.approx(its90.linear_chip_corrected_c("K", 198.0, 25.0, 41.276))
        assert value == pytest.approx(200.0, abs=0.1)  # only the chip's 0.25 degC step remains
    else:
        assert value == 198.0


def test_max31865_pt100_through_cvd():
    chip = max31865.Max31865Chip()
    drv = max31865.SPEC.factory.__call__(
        msgspec.convert({"channels": [{"name": "rtd"}]}, max31865.Max31865Options), buses={"rtd": chip}
    )
    h = harness(drv)
    drv.open()
    chip.set_code(round(138.5055 / 430.0 * 32768))
    run(h, 1)
    assert h.emitted[0].values["rtd"]["temp_c"] == pytest.approx(100.0, abs=0.04)  # one LSB = 0.034 degC


def test_units_fahrenheit_and_kelvin():
    ramp = [{"t": 100.0 + 0.1 * i} for i in range(80)]
    for unit, temp0, rate in (("F", 212.0, 10.8), ("K", 373.15, 6.0)):
        h = harness(ScriptDriver(ramp), unit=unit, report_by_exception=False)
        run(h, 80)
        u = unit.lower()
        assert h.emitted[0].values["t"][f"temp_{u}"] == pytest.approx(temp0)
        assert h.emitted[-1].values["t"][f"rate_{u}_per_min"] == pytest.approx(rate)


def test_serial_instrument_in_fahrenheit_through_the_plugin():
    from edge_agent.drivers.serial_line import driver as serial_line

    clock = ManualClock()
    o = msgspec.convert(
        {"backend": "sim", "request": "#01\r", "unit": "F", "response_regex": r"(?P<kiln>[-+]?[\d.]+)F",
         "sim_response": "{kiln:.1f}F\r\n", "sim": {"start_c": 212.0, "noise_c": 0.0, "amplitude_c": 0.0}},
        serial_line.SerialLineOptions,
    )  # fmt: skip
    h = Harness(SPEC, options={}, driver=serial_line.SerialLineDriver(o, clock=clock.monotonic), clock=clock)
    run(h, 1)
    assert h.emitted[0].values["kiln"]["temp_c"] == pytest.approx(100.0)  # the sim speaks F here


def test_plain_values_from_a_third_party_driver():
    class ValuesDriver(ScriptDriver):
        def read(self):
            return Values({"a": 21.5, "name": "x"}, {"a": Quality.GOOD})

    h = harness(ValuesDriver([]))
    run(h, 1)
    assert h.emitted[0].values == {"a": {"temp_c": 21.5, "rate_c_per_min": None}}


# --- alarms ----------------------------------------------------------------------------------

HIGH = {"feature": "b", "level": "high", "limit": 80.0, "hysteresis": 2.0, "on_delay_s": 5.0, "off_delay_s": 5.0}


def test_alarm_hysteresis_and_delay_no_chattering():
    script = (
        [{"b": 75.0}] * 5
        + [{"b": 79.9 if i % 2 else 80.1} for i in range(20)]  # hovering at the limit: never 5 s beyond
        + [{"b": 81.0}] * 8  # beyond for good: raises on the 6th read (5 s on-delay)
        + [{"b": 79.0 if i % 2 else 80.5} for i in range(20)]  # inside the hysteresis band: stays active
        + [{"b": 77.0}] * 8  # clears after 5 s below 78
    )
    h = harness(ScriptDriver(script), alarms=[HIGH], max_step_c=0)
    run(h, 25)
    assert h.events == []
    run(h, 5)
    assert h.events == []
    run(h, 1)
    assert kinds(h) == [("alarm", True, None)]
    raised = h.events[0]
    assert raised.severity is Severity.ALARM
    assert raised.fields | {"value": 0} == {
        "channel": "b", "feature": "b.temp_c", "level": "high", "active": True, "value": 0, "limit": 80.0, "unit": "C",
    }  # fmt: skip
    run(h, 2 + 20 + 5)
    assert len(h.events) == 1
    run(h, 1)
    assert kinds(h) == [("alarm", True, None), ("alarm", False, None)]
    assert h.events[1].severity is Severity.INFO


def test_high_high_is_critical_and_low_alarm_works():
    now = {"on_delay_s": 0.0, "off_delay_s": 0.0}
    alarms = [HIGH | now, HIGH | now | {"level": "high_high", "limit": 95.0},
              {"feature": "b", "level": "low", "limit": 10.0, "direction": "low"}]  # fmt: skip
    h = harness(ScriptDriver([{"b": 96.0}, {"b": 5.0}]), alarms=alarms, max_step_c=0)
    run(h, 2)
    levels = [(e.fields["level"], e.fields["active"], e.severity) for e in h.events]
    assert levels == [
        ("high", True, Severity.ALARM), ("high_high", True, Severity.CRITICAL),
        ("high", False, Severity.INFO), ("high_high", False, Severity.INFO), ("low", True, Severity.ALARM),
    ]  # fmt: skip


# --- trends ----------------------------------------------------------------------------------


def test_rate_of_change_and_time_to_alarm():
    ramp = [{"b": 50.0 + 0.1 * i} for i in range(200)]
    h = harness(ScriptDriver(ramp), alarms=[HIGH], report_by_exception=False, rate_window_s=60.0)
    run(h, 29)
    assert h.emitted[-1].values["b"]["rate_c_per_min"] is None  # less than half a window yet
    run(h, 71)  # t = 99 s, value 59.9
    last = h.emitted[-1].values["b"]
    assert last["rate_c_per_min"] == pytest.approx(6.0, abs=1e-9)
    assert last["time_to_alarm_s"] == 195  # (80 - 59.9) / 0.1 degC/s = 201 s, in 15 s steps


def test_time_to_alarm_is_none_when_flat():
    flat = [{"b": 50.0 + (1e-9 if i % 2 else 0.0)} for i in range(80)]
    h = harness(ScriptDriver(flat), alarms=[HIGH], report_by_exception=False)
    run(h, 80)
    assert h.emitted[-1].values["b"]["rate_c_per_min"] == pytest.approx(0.0, abs=1e-6)
    assert h.emitted[-1].values["b"]["time_to_alarm_s"] is None  # not years, and never a huge int


def test_rate_warning_comes_before_the_high_alarm():
    ramp = [{"b": 45.0 + 0.1 * i} for i in range(600)]
    h = harness(ScriptDriver(ramp), alarms=[HIGH], rate_warning_c_per_min=3.0, rate_warning_on_delay_s=10.0)
    run(h, 600)
    assert [e.kind for e in h.events] == ["rate_warning", "alarm"]
    warning = h.events[0]
    assert warning.severity is Severity.WARNING
    assert warning.fields["time_to_alarm_s"] > 250  # a real heads-up, minutes before the alarm


# --- sensor health ---------------------------------------------------------------------------


def test_open_circuit_episode_and_no_stale_republish():
    sim = {"profile": "ambient", "start_c": 30.0, "noise_c": 0.0, "amplitude_c": 0.0,
           "fault": "open_circuit", "fault_after_s": 10.0, "fault_for_s": 120.0}  # fmt: skip
    clock = ManualClock()
    options = msgspec.convert({"backend": "sim", "channels": [{"name": "tc", "sim": sim}]}, max31855.Max31855Options)
    drv = max31855.SPEC.factory.__call__(options, clock=clock.monotonic)
    h = Harness(SPEC, options={"heartbeat_s": 60.0}, driver=drv, clock=clock)
    run(h, 200)
    assert kinds(h) == [("sensor_fault", None, "open_circuit"), ("sensor_ok", None, None)]
    temps = [
        (e.values["tc"]["temp_c"], e.quality.get("tc.temp_c")) for e in h.emitted if "temp_c" in e.values.get("tc", {})
    ]
    bad = [t for t in temps if t[1] is not None]
    assert bad and all(v is None and q == "open_circuit" for v, q in bad)  # heartbeat repeats None, not 30.0
    assert len(bad) == 3  # the start of the episode (10 s) and the heartbeat snapshots at 60 s and 120 s
    assert temps[-1][1] is None and temps[-1][0] == pytest.approx(30.0, abs=0.1)


def test_stuck_sensor():
    script = [{"s": 25.0}] * 40 + [{"s": 25.5}] * 2
    h = harness(ScriptDriver(script), stuck_after_s=30.0)
    run(h, 42)
    assert kinds(h) == [("sensor_fault", None, "stuck"), ("sensor_ok", None, None)]
    assert h.emitted[-2].values["s"]["temp_c"] is None and h.emitted[-2].quality["s.temp_c"] == "stuck"
    assert h.emitted[-1].values["s"]["temp_c"] == 25.5


def test_implausible_jump_then_confirmed_new_level():
    script = [{"j": 25.0}] * 3 + [{"j": 80.0}, {"j": 25.0}] + [{"j": 60.0}] * 3
    h = harness(ScriptDriver(script), max_step_c=10.0, jump_confirm_reads=3, report_by_exception=False)
    run(h, 8)
    temps = values_of(h, "j", "temp_c")
    assert temps == [25.0, 25.0, 25.0, None, 25.0, None, None, 60.0]
    assert [k for k, _, _ in kinds(h)] == ["sensor_fault", "sensor_ok", "sensor_fault", "sensor_ok"]
    assert h.events[0].fields["quality"] == "implausible"


def test_median_filter_removes_a_single_spike_silently():
    script = [{"m": 25.0}, {"m": 25.0}, {"m": 300.0}, {"m": 25.25}, {"m": 25.25}]
    h = harness(ScriptDriver(script), median_window=3, max_step_c=0, report_by_exception=False)
    run(h, 5)
    assert max(values_of(h, "m", "temp_c")) == 25.25
    assert h.events == []


def test_out_of_range():
    h = harness(ScriptDriver([{"o": 600.0}, {"o": 400.0}]), valid_max_c=500.0, max_step_c=0)
    run(h, 2)
    assert kinds(h) == [("sensor_fault", None, "out_of_range"), ("sensor_ok", None, None)]


def test_conversion_without_answer_is_out_of_range():
    below = ChannelReading(
        -265.0, cold_junction_c=25.0, linearisation=Linearisation.LINEAR, sensor="K", slope_uv_per_c=41.276
    )
    h = harness(ScriptDriver([{"x": below}]))
    run(h, 1)
    assert h.emitted[0].quality == {"x.temp_c": "out_of_range", "x.rate_c_per_min": "out_of_range"}


def test_driver_failure_is_one_event_per_episode():
    script = [{"a": 20.0, "b": 21.0}] + [CommError("bus reset")] * 3 + [{"a": 20.0, "b": 21.0}]
    h = harness(ScriptDriver(script))
    run(h, 5)
    assert [(e.kind, e.fields["channel"]) for e in h.events] == [("sensor_fault", "*"), ("sensor_ok", "*")]
    assert h.emitted[1].values["a"]["temp_c"] is None and h.emitted[1].quality["a.temp_c"] == "comm_error"
    assert h.emitted[-1].values["a"]["temp_c"] == 20.0


# --- report by exception and the reference plant -----------------------------------------------


def _snippet_harnesses():
    cfg = tomllib.loads(SNIPPET.read_text())
    out = []
    clock = ManualClock()
    for inst in cfg["instances"]:
        driver_cfg = dict(inst["driver"])
        mod = {"max31855": max31855, "max31856": max31856}[driver_cfg.pop("type")]
        opts = msgspec.convert(driver_cfg, mod.SPEC.options)
        assert mod.SPEC.check(opts) == []
        drv = mod.SPEC.factory.__call__(opts, clock=clock.monotonic)
        h = Harness(SPEC, options=inst.get("options", {}), driver=drv, clock=clock, instance=inst["name"])
        assert SPEC.check(h.ctx.options, inst["driver"]["type"]) == []
        out.append(h)
    return clock, out


def test_reference_plant_snippet_warns_on_rate_before_the_high_alarm():
    clock, hs = _snippet_harnesses()
    assert sum(len(h.ctx.driver.o.channels) for h in hs) == 8
    timeline = []

    async def go():
        for h in hs:
            await h.start()
        for second in range(600):
            seen = [len(h.events) for h in hs]
            for h in hs:
                await h.poll()
            for h, n in zip(hs, seen, strict=True):
                timeline.extend(
                    [(second, e.kind, e.fields.get("channel"), e.fields.get("active")) for e in h.events[n:]]
                )
            clock.advance(1.0)

    asyncio.run(go())
    bearing = [(t, kind) for t, kind, ch, active in timeline if ch == "bearing_nde" and active]
    assert [kind for _, kind in bearing[:2]] == ["rate_warning", "alarm"]
    assert bearing[0][0] <= 90 and bearing[1][0] >= 180  # a warning within 1.5 min, minutes ahead
    pump = [(kind, t) for t, kind, ch, _ in timeline if ch == "pump_de"]
    assert [k for k, _ in pump] == ["sensor_fault", "sensor_ok"]
    total_keys = sum(len(v) for h in hs for e in h.emitted for v in e.values.values())
    every_read = 8 * 2 * 600  # temperature and rate, every channel, every second
    assert total_keys < 0.1 * every_read
