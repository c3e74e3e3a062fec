"""The vibration plugin end to end with the Harness: messages, events, alarms, overrun, capture."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.adxl345 import Adxl345Driver, Adxl345Options
from edge_agent.drivers.contract import Waveform
from edge_agent.drivers.dotted_keys import numeric_leaves
from edge_agent.drivers.errors import CommError
from edge_agent.plugins.contract import Severity, UnknownCommand
from edge_agent.plugins.testing.harness import Harness, StaticLink
from edge_agent.plugins.vibration import SPEC
from edge_agent.plugins.vibration.options import VibrationOptions, check_options

RATE = 3200.0


def sine_block(seconds: float, amp_g: float, f_hz: float = 100.0, start: int = 0, lost: int = 0) -> Waveform:
    n = int(seconds * RATE)
    t = (start + np.arange(n)) / RATE
    x = amp_g * np.sin(2 * np.pi * f_hz * t)
    samples = np.stack([x, 0.5 * x, 0.1 * x], axis=1)
    return Waveform(samples, RATE, ("x", "y", "z"), 0, lost_samples=lost)


class BlockDriver:
    """Returns prepared blocks in order; an exception in the list is raised instead."""

    def __init__(self, blocks: list[Any]) -> None:
        self.blocks = list(blocks)

    def open(self) -> None:
        pass

    def read(self) -> Waveform:
        item = self.blocks.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        pass


def run(blocks: list[Any], options: dict[str, Any] | None = None, link: Any = None) -> Harness:
    h = Harness(SPEC, options=options or {}, driver=BlockDriver(blocks), link=link)

    async def go() -> None:
        await h.start()
        await h.poll(times=len(blocks), advance_s=1.0)
        await h.close()

    asyncio.run(go())
    return h


def test_one_nested_message_per_window() -> None:
    h = run([sine_block(1.0, 1.0)], {"bands_hz": [[10, 200], [200, 1000]]})
    (msg,) = [e.values for e in h.emitted]
    assert set(msg) == {"x", "y", "z", "velocity_rms_mm_s", "iso_zone"}
    x = msg["x"]
    assert round(x["velocity_rms_mm_s"], 2) == 11.04
    assert x["rms_g"] == pytest.approx(0.7071, abs=1e-4) and x["crest"] == pytest.approx(1.414, abs=1e-3)
    assert x["kurtosis"] == pytest.approx(1.5, abs=1e-3)
    assert x["peaks_hz"][0] == pytest.approx(100.0, abs=0.01) and x["peaks_g"][0] == pytest.approx(1.0, rel=1e-3)
    assert x["bands_g"][0] == pytest.approx(0.7071, rel=1e-3) and x["bands_g"][1] < 1e-3
    assert msg["velocity_rms_mm_s"] == x["velocity_rms_mm_s"] and msg["iso_zone"] == "D"


def test_windows_are_cut_from_uneven_blocks() -> None:
    blocks = [sine_block(0.6, 0.1), sine_block(0.6, 0.1, start=1920), sine_block(0.9, 0.1, start=3840)]
    h = run(blocks)
    assert len(h.emitted) == 2  # 0.6 s: none yet; 1.2 s: one; 2.1 s: two windows


def test_iso_zone_change_events() -> None:
    blocks = [sine_block(1.0, 0.1, start=i * 3200) for i in range(2)] + [sine_block(1.0, 0.5, start=6400)]
    h = run(blocks, {"machine_group": 1, "foundation": "rigid"})
    zones = [e.values["iso_zone"] for e in h.emitted]
    assert zones == ["A", "A", "C"]  # 1.10 mm/s then 5.52 mm/s
    (ev,) = [e for e in h.events if e.kind == "iso_zone"]
    assert ev.fields["zone"] == "C" and ev.fields["previous"] == "A" and ev.severity is Severity.WARNING


def test_feature_alarm_with_on_delay() -> None:
    alarm = {"feature": "x.velocity_rms_mm_s", "limit": 4.0, "on_delay_s": 1.0, "hysteresis": 0.5}
    blocks = [sine_block(1.0, 0.5, start=i * 3200) for i in range(3)] + [sine_block(1.0, 0.1, start=9600)]
    h = run(blocks, {"alarms": [alarm]})
    alarms = [e for e in h.events if e.kind == "alarm"]
    assert [a.fields["active"] for a in alarms] == [True, False]
    assert alarms[0].severity is Severity.ALARM and alarms[0].fields["feature"] == "x.velocity_rms_mm_s"


def test_overrun_block_is_not_analysed() -> None:
    blocks = [sine_block(1.0, 0.1), sine_block(1.0, 0.1, lost=40), sine_block(1.0, 0.1, lost=5), sine_block(1.0, 0.1)]
    h = run(blocks, {"overrun_quiet_s": 1.0})
    kinds = [e.kind for e in h.events]
    assert kinds.count("overrun") == 1 and kinds.count("overrun_end") == 1
    assert h.events[-1].fields["blocks"] == 2
    assert [e.kind for e in run(blocks).events].count("overrun_end") == 0  # 60 s quiet time not reached
    bad = [e for e in h.emitted if e.quality]
    assert [b.values["lost_samples"] for b in bad] == [40, 5]
    assert all(b.quality == {"lost_samples": "overrun"} and "x" not in b.values for b in bad)
    assert sum("x" in e.values for e in h.emitted) == 2


def test_driver_error_is_one_event_per_episode() -> None:
    err = CommError("spi: no answer")
    h = run([err, err, sine_block(1.0, 0.1)])
    assert [e.kind for e in h.events] == ["sensor_fault", "sensor_ok"]
    assert h.emitted[0].quality == {"velocity_rms_mm_s": "comm_error"}


def test_speed_from_link_and_orders() -> None:
    link = StaticLink({("tacho", "rpm"): 1500.0})
    opts = {"speed_source": "link", "speed_instance": "tacho"}
    msg = run([sine_block(1.0, 0.2, f_hz=25.0)], opts, link).emitted[0].values
    assert msg["rpm"] == 1500.0
    assert msg["x"]["1x_g"] == pytest.approx(0.2, rel=1e-3) and msg["x"]["2x_g"] < 1e-3


def test_speed_from_link_missing_means_no_orders() -> None:
    opts = {"speed_source": "link", "speed_instance": "tacho", "speed_fallback_spectrum": False}
    msg = run([sine_block(1.0, 0.2)], opts).emitted[0].values
    assert "rpm" not in msg and "1x_g" not in msg["x"]


def test_speed_from_link_falls_back_to_the_spectrum() -> None:
    link = StaticLink({("other", "rpm"): 1500.0})
    opts = {"speed_source": "link", "speed_instance": "tacho"}
    msg = run([sine_block(1.0, 0.2, f_hz=24.75)], opts, link).emitted[0].values
    assert msg["rpm"] == pytest.approx(1485.0, abs=1.0)


def test_speed_from_spectrum() -> None:
    msg = run([sine_block(1.0, 0.2, f_hz=29.95)], {"speed_source": "spectrum"}).emitted[0].values
    assert msg["rpm"] == pytest.approx(1797.0, abs=1.0)


def test_numeric_leaves_by_dotted_key() -> None:
    flat = numeric_leaves({"x": {"rms_g": 1.0, "peaks_g": [1.0]}, "bearing": {"bpfo": {"ratio_db": 3}}, "ok": True})
    assert flat == {"x.rms_g": 1.0, "bearing.bpfo.ratio_db": 3.0}


def test_check_options() -> None:
    o = msgspec.convert(
        {"speed_source": "fixed", "iso_limits_mm_s": [3, 2, 1], "bands_hz": [[5, 1]], "fault_n": 6}, VibrationOptions
    )
    errs = check_options(o, "adxl345")
    assert any(e.startswith("rpm:") for e in errs) and any(e.startswith("iso_limits_mm_s:") for e in errs)
    assert any(e.startswith("bands_hz[0]:") for e in errs) and any(e.startswith("fault_n:") for e in errs)
    assert check_options(VibrationOptions(), None) == []
    assert VibrationOptions(iso_limits_mm_s=(1.0, 2.0, 3.0)).iso_limits() == (1.0, 2.0, 3.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def adxl_sim(clock: Clock, **sim: Any) -> Adxl345Driver:
    o = msgspec.convert({"backend": "sim", "sim": sim}, Adxl345Options)
    return Adxl345Driver(o, clock=clock, background=False)


def test_capture_returns_int16_from_adxl345() -> None:
    clock = Clock()
    drv = adxl_sim(clock, fault="outer")
    h = Harness(
        SPEC,
        options={
            "speed_source": "fixed",
            "rpm": 1797,
            "bearing": {"balls": 9, "ball_diameter": 0.3126, "pitch_diameter": 1.537},
        },
        driver=drv,
    )

    async def go() -> dict[str, Any]:
        await h.start()
        task = asyncio.create_task(h.plugin.command("capture", {"seconds": 1.5}))
        for _ in range(2):
            await asyncio.sleep(0)
            for _ in range(200):  # drain the FIFO like the driver thread would
                clock.now += 0.005
                drv.drain()
            await h.poll(advance_s=1.0)
        result = await task
        await h.close()
        return result

    r = asyncio.run(go())
    assert r["dtype"] == "int16" and r["scale"] == 0.0039 and r["rate_hz"] == 3200.0 and r["unit"] == "g"
    assert r["axes"] == ["x", "y", "z"] and r["n"] == 4800 and len(r["samples"]) == 4800 * 3 * 2
    assert r["rpm"] == pytest.approx(1797.0) and r["bearing_hz"]["bpfo"] == pytest.approx(107.36, abs=0.01)
    counts = np.frombuffer(r["samples"], dtype="<i2").reshape(-1, 3)
    assert 0.01 < float(np.std(counts[:, 0])) * r["scale"] < 1.0


def test_capture_float32_and_limits() -> None:
    blocks = [sine_block(1.0, 0.5, start=i * 3200) for i in range(3)]
    h = Harness(SPEC, options={"capture_max_s": 5}, driver=BlockDriver(blocks))

    async def go() -> dict[str, Any]:
        await h.start()
        with pytest.raises(ValueError):
            await h.plugin.command("capture", {"seconds": 10})
        with pytest.raises(UnknownCommand):
            await h.plugin.command("nope", {})
        task = asyncio.create_task(h.plugin.command("capture", {"seconds": 0.25}))
        await asyncio.sleep(0)
        await h.poll()
        return await task

    r = asyncio.run(go())
    assert r["dtype"] == "float32" and r["scale"] == 1.0 and r["n"] == 800
    x = np.frombuffer(r["samples"], dtype="<f4").reshape(-1, 3)[:, 0]
    assert x[200] == pytest.approx(0.5 * math.sin(2 * math.pi * 100 * 200 / RATE), abs=1e-6)


def test_sim_fault_command_switches_the_model() -> None:
    clock = Clock()
    drv = adxl_sim(clock)
    h = Harness(SPEC, driver=drv)

    async def go() -> None:
        await h.start()
        assert await h.plugin.command("sim_fault", {"fault": "inner", "fault_g": 0.3}) == {"fault": "inner"}
        await h.close()

    asyncio.run(go())
    assert drv.model is not None and drv.model.fault == "inner" and drv.model.fault_g == 0.3
    with pytest.raises(ValueError):
        asyncio.run(Harness(SPEC, driver=BlockDriver([])).plugin.command("sim_fault", {"fault": "outer"}))


def test_axes_subset_and_unknown_axis() -> None:
    msg = run([sine_block(1.0, 0.2)], {"axes": ["z", "x"]}).emitted[0].values
    assert set(msg) == {"z", "x", "velocity_rms_mm_s", "iso_zone"}
    assert msg["x"]["rms_g"] == pytest.approx(0.2 / math.sqrt(2), rel=1e-4)
    with pytest.raises(ValueError, match="axes"):
        run([sine_block(1.0, 0.2)], {"axes": ["q"]})


def test_linked_zero_rpm_means_stopped_not_estimated() -> None:
    link = StaticLink({("tacho", "rpm"): 0})
    msg = run([sine_block(1.0, 0.2, f_hz=24.75)], {"speed_source": "link", "speed_instance": "tacho"}, link)
    assert "rpm" not in msg.emitted[0].values


def test_envelope_band_above_nyquist_falls_back_with_an_event() -> None:
    opts = {
        "speed_source": "fixed",
        "rpm": 1500,
        "envelope_band_hz": [2000, 8000],
        "bearing": {"bpfo": 3.0, "bpfi": 5.0, "bsf": 2.0, "ftf": 0.4},
    }
    h = run([sine_block(1.0, 0.2)], opts)
    assert [e.kind for e in h.events] == ["config"] and "bearing" in h.emitted[0].values
