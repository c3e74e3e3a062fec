"""MAX31855/56/65 drivers against emulated chips (register files behind the SPI bus interface)."""

import msgspec
import pytest
from edge_agent.drivers.buses.spi import parse_device
from edge_agent.drivers.contract import Capability, Linearisation, Quality, TemperatureReading, check_driver_spec
from edge_agent.drivers.errors import CommError
from edge_agent.drivers.max318xx import max31855, max31856, max31865
from edge_agent.drivers.max318xx.simulator import SimFault
from edge_agent.plugins.temperature import rtd


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(mod, options, **kw):
    return mod.SPEC.factory.__call__(msgspec.convert(options, mod.SPEC.options), **kw)


# --- MAX31855 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "tc_c", "cj_c"),
    [(0x064C1900, 100.75, 25.0), (0xF060EC00, -250.0, -20.0), (0xFFFCFFF0, -0.25, -0.0625)],
)
def test_max31855_datasheet_frames(frame, tc_c, cj_c):
    assert max31855.decode_frame(frame) == (tc_c, cj_c, ())
    assert max31855.encode_frame(tc_c, cj_c) == frame


@pytest.mark.parametrize(
    ("bits", "faults", "quality"),
    [
        (0x1, ("open_circuit",), Quality.OPEN_CIRCUIT),
        (0x2, ("short_gnd",), Quality.SHORT_CIRCUIT),
        (0x4, ("short_vcc",), Quality.SHORT_CIRCUIT),
        (0x0, ("fault",), Quality.BAD),  # D16 without a cause bit
    ],
)
def test_max31855_fault_bits(bits, faults, quality):
    chip = max31855.Max31855Chip(0x064C1900 | 1 << 16 | bits)
    drv = make(max31855, {"channels": [{"name": "t1"}]}, buses={"t1": chip})
    drv.open()
    ch = drv.read().channels["t1"]
    assert ch.faults == faults
    assert ch.quality is quality
    assert ch.temperature_c is None  # a faulted channel never carries a temperature


@pytest.mark.parametrize("frame", [0x00000000, 0xFFFFFFFF, 0x064C1908])
def test_max31855_impossible_frames_are_comm_errors(frame):
    with pytest.raises(CommError):
        max31855.decode_frame(frame)
    drv = make(max31855, {"channels": [{"name": "t1"}]}, buses={"t1": max31855.Max31855Chip(frame)})
    drv.open()
    assert drv.read().channels["t1"].quality is Quality.COMM_ERROR


def test_max31855_reading_carries_the_linear_slope_for_correction():
    drv = make(
        max31855, {"variant": "J", "channels": [{"name": "t1"}]}, buses={"t1": max31855.Max31855Chip(0x064C1900)}
    )
    drv.open()
    reading = drv.read()
    ch = reading.channels["t1"]
    assert (ch.temperature_c, ch.cold_junction_c) == (100.75, 25.0)
    assert ch.linearisation is Linearisation.LINEAR
    assert (ch.sensor, ch.slope_uv_per_c) == ("J", 57.953)
    assert reading.values == {"t1": 100.75} and reading.quality == {}  # the flat Values view


def test_max31855_sim_bearing_ramp_and_injected_open_circuit():
    clock = Clock()
    sim = {"profile": "bearing", "start_c": 45.0, "ramp_c_per_min": 6.0, "noise_c": 0.0, "ambient_c": 25.0,
           "fault": "open_circuit", "fault_after_s": 100.0, "fault_for_s": 20.0}  # fmt: skip
    drv = make(max31855, {"backend": "sim", "channels": [{"name": "b", "sim": sim}]}, clock=clock)
    drv.open()
    assert drv.read().channels["b"].temperature_c == 45.0
    clock.now += 60.0
    ch = drv.read().channels["b"]
    assert ch.temperature_c == 51.0 and ch.cold_junction_c == pytest.approx(25.0, abs=0.25)
    clock.now += 50.0
    assert drv.read().channels["b"].quality is Quality.OPEN_CIRCUIT
    clock.now += 20.0
    assert drv.read().channels["b"].temperature_c == 58.0
    drv.close()
    drv.close()


# --- MAX31856 --------------------------------------------------------------------------------


def _m56(options=None, chip=None, **kw):
    chip = chip or max31856.Max31856Chip()
    o = {"channels": [{"name": "t1", **kw}], **(options or {})}
    drv = make(max31856, o, buses={"t1": chip})
    drv.sleep = lambda _s: None
    drv.open()
    return drv, chip


@pytest.mark.parametrize(("tc_type", "code"), list(zip("BEJKNRST", range(8), strict=True)))
def test_max31856_cr1_type_codes(tc_type, code):
    _, chip = _m56(tc_type=tc_type)
    assert chip.regs[max31856.CR1] & 0x0F == code


@pytest.mark.parametrize(
    ("options", "cr0", "cr1"),
    [
        ({}, 0x91, 0x03),  # continuous, open detect, 50 Hz, K, 1 sample
        ({"mains_hz": 60, "averaging": 16}, 0x90, 0x43),
        ({"averaging": 4, "open_detect": False, "conversion": "one_shot"}, 0x01, 0x23),
        ({"averaging": 2, "mains_hz": 60, "conversion": "one_shot"}, 0x10, 0x13),
        ({"averaging": 8}, 0x91, 0x33),
    ],
)
def test_max31856_configuration_registers(options, cr0, cr1):
    _, chip = _m56(options)
    assert (chip.regs[max31856.CR0], chip.regs[max31856.CR1]) == (cr0, cr1)
    assert chip.writes[:2] == [(0, cr0), (1, cr1)]  # one burst write at 0x80, auto-increment


@pytest.mark.parametrize(
    ("regs", "tc_c", "cj_c"),
    [
        ([0x19, 0x00, 0x06, 0x40, 0x00], 100.0, 25.0),
        ([0x19, 0x00, 0x64, 0x00, 0x00], 1600.0, 25.0),
        ([0xEC, 0x00, 0xF0, 0x60, 0x00], -250.0, -20.0),
        ([0xFF, 0xFC, 0xFF, 0xFF, 0xE0], -0.0078125, -0.015625),
        ([0x7F, 0xFC, 0x00, 0x00, 0x20], 0.0078125, 127.984375),
    ],
)
def test_max31856_temperature_registers(regs, tc_c, cj_c):
    assert max31856.decode_temperatures(regs) == (tc_c, cj_c)
    _, chip = _m56()
    chip.set_temperatures(tc_c, cj_c)
    assert list(chip.regs[0x0A:0x0F]) == regs


def test_max31856_reads_through_the_bus():
    drv, chip = _m56(tc_type="J")
    chip.set_temperatures(345.6171875, 23.5)
    ch = drv.read().channels["t1"]
    assert (ch.temperature_c, ch.cold_junction_c, ch.quality, ch.sensor) == (345.6171875, 23.5, Quality.GOOD, "J")
    assert ch.linearisation is Linearisation.DONE


@pytest.mark.parametrize(
    ("sr", "faults", "quality"),
    [
        (0x01, ("open_circuit",), Quality.OPEN_CIRCUIT),
        (0x02, ("over_under_voltage",), Quality.SHORT_CIRCUIT),
        (0x40, ("tc_range",), Quality.OUT_OF_RANGE),
        (0x80, ("cj_range",), Quality.OUT_OF_RANGE),
        (0x08, ("tc_high",), Quality.GOOD),
        (0x04, ("tc_low",), Quality.GOOD),
        (0x20, ("cj_high",), Quality.GOOD),
        (0x10, ("cj_low",), Quality.GOOD),
        (0x43, ("open_circuit", "over_under_voltage", "tc_range"), Quality.OPEN_CIRCUIT),
    ],
)
def test_max31856_fault_status_bits(sr, faults, quality):
    drv, chip = _m56()
    chip.set_temperatures(100.0, 25.0)
    chip.regs[max31856.SR] = sr
    ch = drv.read().channels["t1"]
    assert (ch.faults, ch.quality) == (faults, quality)
    assert (ch.temperature_c is None) == (quality is not Quality.GOOD)


def test_max31856_one_shot_triggers_one_conversion_per_read():
    drv, chip = _m56({"conversion": "one_shot", "averaging": 4})
    waits = []
    drv.sleep = waits.append
    drv.read()
    drv.read()
    assert chip.conversions == 2
    assert chip.regs[max31856.CR0] & max31856.CR0_1SHOT == 0
    assert waits == [pytest.approx(0.1855 + 3 * 0.04)] * 2


def test_max31856_missing_chip_marks_only_its_channel():
    class Dead:
        def xfer(self, data):
            return [0] * len(data)

        def close(self):
            pass

    opts = {"channels": [{"name": "ok"}, {"name": "dead"}]}
    drv = make(max31856, opts, buses={"ok": max31856.Max31856Chip(), "dead": Dead()})
    drv.open()
    reading = drv.read()
    assert reading.channels["ok"].quality is Quality.GOOD
    assert reading.channels["dead"].quality is Quality.DEVICE_ERROR
    assert "read back" in reading.channels["dead"].faults[0]


def test_max31856_sim_range_fault_and_open_circuit():
    clock = Clock()
    chans = [
        {"name": "cold_t", "tc_type": "T", "sim": {"start_c": 450.0, "noise_c": 0.0}},
        {"name": "open", "sim": {"fault": "open_circuit"}},
    ]
    drv = make(max31856, {"backend": "sim", "channels": chans}, clock=clock)
    drv.open()
    reading = drv.read()
    assert reading.channels["cold_t"].quality is Quality.OUT_OF_RANGE  # type T ends at 400 degC
    assert reading.channels["open"].quality is Quality.OPEN_CIRCUIT


# --- MAX31865 --------------------------------------------------------------------------------


def _m65(options=None, **kw):
    chip = max31865.Max31865Chip(kw.get("r0_ohm", 100.0), kw.get("r_ref_ohm", 430.0))
    drv = make(max31865, {"channels": [{"name": "r1", **kw}], **(options or {})}, buses={"r1": chip})
    drv.open()
    return drv, chip


@pytest.mark.parametrize(
    ("wires", "mains_hz", "config"), [(2, 50, 0xC1), (3, 50, 0xD1), (4, 50, 0xC1), (3, 60, 0xD0), (4, 60, 0xC0)]
)
def test_max31865_configuration(wires, mains_hz, config):
    _, chip = _m65({"mains_hz": mains_hz}, wires=wires)
    assert chip.regs[max31865.CONFIG] == config


def test_max31865_thresholds_span_the_cvd_range():
    _, chip = _m65()
    low, high = max31865.threshold_codes(msgspec.convert({"name": "r1"}, max31865.Max31865Channel))
    assert int.from_bytes(chip.regs[3:5], "big") >> 1 == high
    assert int.from_bytes(chip.regs[5:7], "big") >> 1 == low
    assert low == int(18.52008 / 430 * 32768) and high == int(390.481125 / 430 * 32768) + 1


def test_max31865_datasheet_ratio_example():
    # Datasheet: with R_REF = 400 ohm, code 0x2000 (8192) is 100 ohm, i.e. 0 degC.
    drv, chip = _m65(r_ref_ohm=400.0)
    chip.set_code(0x2000)
    ch = drv.read().channels["r1"]
    assert ch.resistance_ohm == 100.0 and ch.r0_ohm == 100.0
    assert ch.linearisation is Linearisation.RTD and ch.temperature_c is None
    assert rtd.temperature_c(ch.resistance_ohm, ch.r0_ohm) == 0.0
    assert max31865.decode_rtd(0x40, 0x01) == (0x2000, True)


def test_max31865_pt1000_at_100c():
    drv, chip = _m65(r0_ohm=1000.0, r_ref_ohm=4300.0)
    chip.drive(100.0, 25.0, SimFault.NONE)
    ch = drv.read().channels["r1"]
    assert ch.resistance_ohm == pytest.approx(1385.055, abs=4300 / 32768)  # one LSB
    assert rtd.temperature_c(ch.resistance_ohm, 1000.0) == pytest.approx(100.0, abs=0.04)


@pytest.mark.parametrize(
    ("status", "code", "quality"),
    [
        (0x80, 32767, Quality.OPEN_CIRCUIT),
        (0x80, 30000, Quality.OUT_OF_RANGE),
        (0x40, 3, Quality.SHORT_CIRCUIT),
        (0x40, 1500, Quality.OUT_OF_RANGE),
        (0x20, 8000, Quality.OPEN_CIRCUIT),
        (0x10, 8000, Quality.OPEN_CIRCUIT),
        (0x08, 8000, Quality.OPEN_CIRCUIT),
        (0x04, 8000, Quality.SHORT_CIRCUIT),
    ],
)
def test_max31865_fault_status_bits(status, code, quality):
    drv, chip = _m65()
    chip.set_code(code, status)
    ch = drv.read().channels["r1"]
    assert ch.quality is quality
    assert set(ch.faults) >= {name for bit, name in max31865.FAULT_BITS if status & bit}


def test_max31865_latched_fault_is_cleared_after_it_was_reported():
    drv, chip = _m65()
    chip.set_code(32767)  # open: beyond the high threshold
    assert drv.read().channels["r1"].quality is Quality.OPEN_CIRCUIT
    chip.set_code(7620)  # repaired
    ch = drv.read().channels["r1"]
    assert ch.quality is Quality.GOOD and ch.faults == ()
    assert rtd.temperature_c(ch.resistance_ohm) == pytest.approx(0.0, abs=0.05)


def test_max31865_sim_open_circuit():
    drv = make(max31865, {"backend": "sim", "channels": [{"name": "r", "sim": {"fault": "open_circuit"}}]})
    drv.open()
    assert drv.read().channels["r"].quality is Quality.OPEN_CIRCUIT


def test_emulated_pt_physics_matches_the_plugin_cvd():
    for t in (-150.0, -20.0, 0.0, 60.0, 400.0):
        assert max31865._pt_resistance_ohm(t, 100.0) == pytest.approx(rtd.resistance_ohm(t), rel=1e-12)


# --- common ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mod", [max31855, max31856, max31865])
def test_specs_and_checks(mod):
    spec = check_driver_spec(mod.SPEC, mod.__name__)
    assert {Capability.TEMPERATURE, Capability.VALUES} <= spec.provides
    o = msgspec.convert({"channels": [{"name": "a"}, {"name": "a"}]}, spec.options)
    assert any("duplicate" in e for e in spec.check(o))
    o = msgspec.convert({"channels": [{"name": "a.b"}, {"name": ""}]}, spec.options)
    assert [e.split(":")[0] for e in spec.check(o)] == ["channels[0].name", "channels[1].name"]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"channels": []}, spec.options)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"channels": [{"name": "a", "bogus": 1}]}, spec.options)


def test_hw_backend_without_device_is_a_clear_error():
    from edge_agent.drivers.errors import DeviceNotFound

    drv = make(max31855, {"channels": [{"name": "t", "device": "/dev/spidev9.9"}]})
    with pytest.raises(DeviceNotFound):
        drv.open()
    drv.close()


def test_parse_device():
    assert parse_device("/dev/spidev1.2") == (1, 2)
    with pytest.raises(ValueError):
        parse_device("/dev/ttyS0")


def test_reading_is_values_too():
    drv, chip = _m65()
    chip.set_code(7620)
    reading = drv.read()
    assert isinstance(reading, TemperatureReading)
    assert reading.values == {"r1_ohm": pytest.approx(99.99, abs=0.01)}
