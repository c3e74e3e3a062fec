"""MLX90640: known answers from the datasheet's worked example (pixel 12,16), the emulator round
trip (scene -> RAM words by the inverse computation -> driver -> scene), and hostile devices."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.buses.emulated import FakeI2CBus, FaultPlan
from edge_agent.drivers.errors import CommError, DeviceIdMismatch, DeviceNotFound, DeviceTimeout, SensorFault
from edge_agent.drivers.mlx90640 import SPEC, Mlx90640Driver, Mlx90640Options
from edge_agent.drivers.mlx90640 import compute as C
from edge_agent.drivers.mlx90640.calibration import extract
from edge_agent.drivers.mlx90640.emulator import STATUS, Mlx90640Emulator, SceneOptions, make_eeprom, scene_temperatures
from edge_agent.drivers.mlx90640.options import check_options

# The datasheet example (section 11.2): the EEPROM and RAM words it gives, pixel (12, 16).
EXAMPLE_EE = {
    0x2410: 0x4210, 0x2411: 0xFFBB, 0x2414: 0xF2F2, 0x241B: 0xE0EF, 0x2420: 0x79A6, 0x2421: 0x2F44,
    0x2424: 0x3333, 0x242B: 0x3333, 0x2430: 0x18EF, 0x2431: 0x2FF1, 0x2432: 0x5952, 0x2433: 0x9D68,
    0x2434: 0x5454, 0x2435: 0x0994, 0x2437: 0x5354, 0x2438: 0x2363, 0x2439: 0xE446, 0x243A: 0xFBB5,
    0x243B: 0x044B, 0x243C: 0xF020, 0x243D: 0x9797, 0x243F: 0x2889, 0x25AF: 0x08A0,
}  # fmt: skip
EXAMPLE_RAM = {
    0x056F: 0x0261,
    0x0708: 0xFFCA,
    0x0728: 0xFFC8,
    0x070A: 0x1881,
    0x072A: 0xCCC5,
    0x0720: 0x06AF,
    0x0700: 0x4BF2,
}
PIX = (11, 15)  # the datasheet's pixel (12, 16), zero-based


def _words(values: dict[int, int], start: int, n: int) -> Any:
    out = np.zeros(n, dtype=np.int64)
    for addr, word in values.items():
        out[addr - start] = word
    return out


CAL = extract(_words(EXAMPLE_EE, 0x2400, 832))
RAM = _words(EXAMPLE_RAM, 0x0400, 832)


def test_eeprom_parameters_match_the_datasheet_example() -> None:
    c = CAL
    assert (c.k_vdd, c.vdd25, c.vptat25, c.gain) == (-3168, -13056, 12273, 6383)
    assert c.kv_ptat == pytest.approx(0.005371094, abs=1e-9) and c.kt_ptat == 42.25 and c.alpha_ptat == 9.0
    assert c.offset[PIX] == -75.0
    assert c.kta[PIX] == 0.005126953125 and c.kv[PIX] == 0.5
    assert c.alpha[PIX] == pytest.approx(1.26223312690865e-7, rel=1e-12)
    assert c.alpha_cp == pytest.approx((4.07453626394272e-9, 3.85171006200835e-9), rel=1e-12)
    assert c.offset_cp == (-75, -77) and c.kta_cp == 0.00457763671875 and c.kv_cp == 0.5
    assert c.ks_ta == -0.001953125 and c.tgc == 1.0
    assert c.ks_to[1] == -0.00080108642578125 and c.ct == (-40.0, 0.0, 160.0, 320.0)
    assert c.il_chess == (1.25, 3.0, 0.125) and c.resolution_ee == 2


def test_frame_intermediates_match_the_datasheet_example() -> None:
    vdd = C.supply_voltage(CAL, RAM, resolution_reg=2)
    assert vdd == pytest.approx(3.319, abs=5e-4)  # datasheet: 3.319 V (dV = 0.018623)
    ta = C.ambient_temperature(CAL, RAM, vdd)
    assert ta == pytest.approx(39.184, abs=1e-3)
    ta = 39.184  # the example goes on with Ta rounded, Vdd unrounded (3.3186)
    assert CAL.gain / C.aux(RAM, 0x070A) == pytest.approx(1.01753546947234, rel=1e-12)
    p = C.subpage_mask(C.Pattern.CHESS)
    assert p[PIX] == 0
    v_ir = C.compensated_ir(CAL, RAM, ta, vdd, p, C.Pattern.CHESS, 1.0)
    # pix_OS 700.882495690877 less TGC x the subpage-0 compensation pixel 25.6666575059956
    assert v_ir[PIX] == pytest.approx(700.882495690877 - 25.6666575059956, rel=1e-7)  # printed rounding
    assert C.compensated_alpha(CAL, ta, p)[PIX] == pytest.approx(1.1876487360496e-7, rel=1e-9)


def test_object_temperature_of_the_datasheet_example() -> None:
    """The example's last step: alpha_comp 1.1876487360496e-7, V_IR 679.250909123826 (as printed;
    its pix_OS_CP of 21.63 is not what its own inputs give, 25.67: see docs/thermal.md), Ta 39.184."""
    ta_r = C.reflected_term(39.184, 39.184 - 8, 1.0)
    assert ta_r == pytest.approx(9516495632.56, rel=1e-10)
    basic = C.basic_temperature(np.array([679.250909123826]), np.array([1.1876487360496e-7]), ta_r, CAL.ks_to[1])
    assert basic[0] == pytest.approx(80.36, abs=0.005)
    ext = C.object_temperature(CAL, np.array([679.250909123826]), np.array([1.1876487360496e-7]), 39.184, 31.184, 1.0)
    assert ext[0] == pytest.approx(basic[0], abs=0.1)  # range 2 (0..CT3): KsTo2 from 0 degC


def _driver(**kw: Any) -> Mlx90640Driver:
    o = msgspec.convert({"backend": "sim", **kw}, Mlx90640Options)
    return Mlx90640Driver(o)


@pytest.mark.parametrize("scene", ["motor", "cabinet"])
@pytest.mark.parametrize("pattern", ["chess", "interleaved"])
@pytest.mark.parametrize("hot_c", [-10.0, 55.0, 180.0, 290.0])
def test_round_trip_reads_the_scene_back(scene: str, pattern: str, hot_c: float) -> None:
    d = _driver(pattern=pattern, sim={"scene": scene, "hot_c": hot_c, "noise_c": 0.0, "seed": 3})
    d.open()
    try:
        frame = d.read()
    finally:
        d.close()
    truth = scene_temperatures(d.o.sim, hot_c)
    assert np.nanmax(np.abs(frame.frame_c - truth)) < 0.2
    assert frame.values["max_c"] == pytest.approx(max(hot_c, float(truth.max())), abs=0.2)
    assert frame.ta_c == pytest.approx(33.0, abs=0.05)  # ambient 25 + the sensor's own 8 K
    assert frame.values["vdd_v"] == pytest.approx(3.3, abs=1e-3)


def test_both_subpages_are_needed_for_a_frame() -> None:
    d = _driver(sim={"noise_c": 0.0})
    d.open()
    frame = d.read()
    assert np.isfinite(frame.frame_c).all() and d.chip is not None and d.chip.frames == 2
    d.set_hot(150.0)
    assert d.read().values["max_c"] == pytest.approx(150.0, abs=0.2)


def test_control_register_written_at_open() -> None:
    d = _driver(refresh_hz=8.0, pattern="interleaved")
    d.open()
    assert d.chip is not None
    control = d.chip.regs[0x800D]
    assert (control >> 7) & 7 == 4 and (control >> 12) & 1 == 0 and (control >> 10) & 3 == 2 and control & 1


def test_emissivity_raises_the_temperature_of_a_warm_object() -> None:
    d1, d2 = _driver(sim={"noise_c": 0.0}), _driver(emissivity=0.9, sim={"noise_c": 0.0})
    d1.open()
    d2.open()
    hot1, hot2 = d1.read().values["max_c"], d2.read().values["max_c"]
    assert hot2 > hot1 + 2.0


def test_blank_eeprom_is_not_an_mlx90640() -> None:
    chip = Mlx90640Emulator(lambda: np.zeros((24, 32)), eeprom=np.full(832, 0xFFFF, dtype=np.uint16))
    d = Mlx90640Driver(msgspec.convert({}, Mlx90640Options), bus=FakeI2CBus({0x33: chip}))
    with pytest.raises(DeviceIdMismatch, match="0xffff"):
        d.open()


def test_no_device_at_the_address_and_bus_errors_are_comm_errors() -> None:
    d = Mlx90640Driver(msgspec.convert({}, Mlx90640Options), bus=FakeI2CBus({}))
    with pytest.raises(CommError, match="0x33"):
        d.open()
    faults = FaultPlan()
    chip = Mlx90640Emulator(lambda: np.full((24, 32), 30.0))
    d = Mlx90640Driver(msgspec.convert({}, Mlx90640Options), bus=FakeI2CBus({0x33: chip}, faults=faults))
    d.open()
    faults.fail_calls = {faults.calls + 1}
    with pytest.raises(CommError):
        d.read()


def test_a_chip_that_never_has_new_data_times_out() -> None:
    class Stuck(Mlx90640Emulator):
        def measure(self) -> None:
            pass

    now = [0.0]
    chip = Stuck(lambda: np.full((24, 32), 30.0))
    d = Mlx90640Driver(
        msgspec.convert({"refresh_hz": 2.0}, Mlx90640Options),
        bus=FakeI2CBus({0x33: chip}),
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    d.open()
    with pytest.raises(DeviceTimeout, match="no new subpage"):
        d.read()
    assert chip.regs[STATUS] & 8 == 0


def test_failed_pixels_are_nan_not_numbers() -> None:
    ee = make_eeprom(5)
    ee[0x40 + 5 * 32 + 7] = 0  # pixel (5, 7) failed at calibration
    chip = Mlx90640Emulator(lambda: np.full((24, 32), 30.0), eeprom=ee, options=SceneOptions(noise_c=0.0))
    d = Mlx90640Driver(msgspec.convert({}, Mlx90640Options), bus=FakeI2CBus({0x33: chip}))
    d.open()
    f = d.read()
    assert np.isnan(f.frame_c[5, 7]) and np.isfinite(np.delete(f.frame_c.ravel(), 5 * 32 + 7)).all()


def test_options_checks_and_the_hardware_backend_without_a_bus() -> None:
    assert check_options(msgspec.convert({"refresh_hz": 3}, Mlx90640Options))
    assert not check_options(msgspec.convert({"refresh_hz": 0.5}, Mlx90640Options))
    d = SPEC.factory(msgspec.convert({"device": "/dev/i2c-99"}, Mlx90640Options))
    with pytest.raises(DeviceNotFound):
        d.open()
    d.close()
    with pytest.raises(ValueError, match="832"):
        extract(np.zeros(10))


@pytest.mark.parametrize("seed", range(8))
def test_garbage_ram_is_a_sensor_fault_or_nan_never_a_crash(seed: int) -> None:
    class Garbage(Mlx90640Emulator):
        def write_subpage(self, scene_c: Any, subpage: int) -> None:
            rng = np.random.default_rng(seed)
            self.ram[:] = rng.integers(0, 0x10000, self.ram.shape)
            if seed % 2:
                self.ram[0x070A - 0x0400] = 0  # a zero gain word

    chip = Garbage(lambda: np.full((24, 32), 30.0))
    d = Mlx90640Driver(msgspec.convert({}, Mlx90640Options), bus=FakeI2CBus({0x33: chip}))
    d.open()
    try:
        frame = d.read()
    except SensorFault as exc:
        assert exc.quality == "implausible"
        return
    good = frame.frame_c[np.isfinite(frame.frame_c)]
    assert all(np.isfinite(v) for v in frame.values.values())
    assert good.size == 0 or np.isfinite(good).all()
