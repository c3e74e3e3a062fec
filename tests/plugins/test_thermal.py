"""The thermal plugin: emissivity, region statistics, NETA classes (known answers), the plugin on the
emulated MLX90640 (classes confirmed and raised, alarms, frames as PNG), hostile input."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.contract import ThermalFrame, Values
from edge_agent.drivers.mlx90640 import Mlx90640Driver, Mlx90640Options
from edge_agent.plugins.contract import Severity
from edge_agent.plugins.testing.harness import Harness
from edge_agent.plugins.thermal import SPEC
from edge_agent.plugins.thermal.analysis import KELVIN, at_emissivity, classify, region_stats
from edge_agent.plugins.thermal.options import NETA_AMBIENT, NETA_SIMILAR, ThermalOptions, check_options


def test_emissivity_correction_known_answers() -> None:
    frame = np.array([[100.0, 20.0]])
    assert np.allclose(at_emissivity(frame, 1.0, 1.0, 20.0), frame)
    assert at_emissivity(frame, 1.0, 0.5, 20.0)[0, 1] == pytest.approx(20.0)  # at Tr every emissivity agrees
    t1, tr = 100.0 + KELVIN, 20.0 + KELVIN
    expected = ((t1**4 - 0.5 * tr**4) / 0.5) ** 0.25 - KELVIN  # T^4 = (T1^4 - (1 - e) Tr^4) / e
    assert at_emissivity(frame, 1.0, 0.5, 20.0)[0, 0] == pytest.approx(expected, rel=1e-12)
    back = at_emissivity(at_emissivity(frame, 1.0, 0.8, 20.0), 0.8, 1.0, 20.0)
    assert np.allclose(back, frame)


def test_region_stats_skip_failed_pixels_and_find_the_hot_spot() -> None:
    f = np.full((24, 32), 30.0)
    f[10, 20] = 80.0
    f[9, 19] = np.nan
    s = region_stats(f, (18, 8, 5, 5))
    assert s is not None and (s.max_c, s.min_c, s.hot_row, s.hot_col, s.pixels) == (80.0, 30.0, 10, 20, 24)
    assert region_stats(np.full((24, 32), np.nan), None) is None


@pytest.mark.parametrize(
    ("delta", "similar", "ambient"),
    [(0.5, None, None), (3.0, 4, 4), (4.0, 3, 4), (15.0, 3, 3), (16.0, 1, 3), (21.0, 1, 2), (40.9, 1, 2), (41.0, 1, 1)],
)
def test_neta_table_classes(delta: float, similar: int | None, ambient: int | None) -> None:
    s, a = classify(delta, NETA_SIMILAR), classify(delta, NETA_AMBIENT)
    assert (s.priority if s else None, a.priority if a else None) == (similar, ambient)
    assert classify(float("nan"), NETA_SIMILAR) is None


REGIONS = {
    "regions": [
        {"name": "motor_de", "rect": [18, 9, 7, 7], "emissivity": 0.95, "reference": "housing"},
        {"name": "housing", "rect": [5, 8, 12, 10], "emissivity": 0.95, "classes": []},  # a reference only
    ],
    "alarms": [{"feature": "motor_de.max_c", "limit": 80.0, "level": "high"}],
}


def _run(options: dict[str, Any], steps: list[tuple[float | None, int]], sim: dict[str, Any] | None = None) -> Harness:
    """Poll the plugin on the emulated camera; before each step set the hot spot (None: keep)."""
    o = msgspec.convert({"backend": "sim", "sim": {"noise_c": 0.05, **(sim or {})}}, Mlx90640Options)
    driver = Mlx90640Driver(o)
    h = Harness(SPEC, options=options, driver=driver)

    async def go() -> None:
        await h.start()
        for hot, polls in steps:
            if hot is not None:
                driver.set_hot(hot)
            await h.poll(times=polls, advance_s=1.0)
        await h.close()

    asyncio.run(go())
    return h


def test_motor_bearing_rise_is_classed_confirmed_and_alarmed() -> None:
    h = _run(REGIONS, [(55.0, 4), (95.0, 4)])
    sev = [e for e in h.events if e.kind == "thermal_severity"]
    assert [(e.fields["region"], e.fields["priority"]) for e in sev] == [("motor_de", 3), ("motor_de", 1)]
    assert sev[0].severity is Severity.WARNING and sev[1].severity is Severity.ALARM
    assert "similar component housing" in sev[1].message
    first = h.emitted[0].values
    assert first["motor_de"]["max_c"] == pytest.approx(55.0 + 0.9, abs=0.8)  # at emissivity 0.95, not 1
    assert abs(first["motor_de"]["hot_row"] - 12.5) <= 2 and abs(first["motor_de"]["hot_col"] - 22) <= 2  # the bearing
    assert first["motor_de"]["severity"] == "" and h.emitted[2].values["motor_de"]["severity"] == "probable deficiency"
    assert [e.fields["active"] for e in h.events if e.kind == "alarm"] == [True]


def test_frame_command_returns_raw_and_png_and_the_alarm_frame() -> None:
    h = _run(REGIONS, [(95.0, 4)])

    async def ask(args: dict[str, Any]) -> Any:
        return await h.plugin.command("frame", args)

    now = asyncio.run(ask({}))
    assert now["png"].startswith(b"\x89PNG\r\n\x1a\n") and len(now["frame_c"]) == 24 * 32 * 4
    raw = np.frombuffer(now["frame_c"], "<f4").reshape(24, 32)
    assert raw.max() == pytest.approx(95.0, abs=0.5)
    alarm = asyncio.run(ask({"alarm": True}))
    assert "motor_de" in alarm["why"] and alarm["png"].startswith(b"\x89PNG")


def test_cabinet_terminal_over_ambient() -> None:
    opts = {"regions": [{"name": "terminal", "rect": [11, 14, 6, 4], "emissivity": 0.9}], "ambient_c": 25.0}
    h = _run(opts, [(None, 4)], sim={"scene": "cabinet", "hot_c": 80.0})
    msg = h.emitted[-1].values["terminal"]
    true_c = float(at_emissivity(np.array([80.0]), 1.0, 0.9, 25.0)[0])  # 80 apparent at emissivity 0.9
    assert true_c == pytest.approx(84.7, abs=0.1)
    assert msg["delta_t_c"] == pytest.approx(true_c - 25.0, abs=0.5) and msg["priority"] == 1
    assert msg["rate_c_per_min"] is None or abs(msg["rate_c_per_min"]) < 5


def test_the_whole_frame_is_the_default_region() -> None:
    h = _run({}, [(None, 2)])
    assert set(h.emitted[-1].values) == {"ta_c", "ambient_c", "frame"}
    declared = {v.key for v in SPEC.values(ThermalOptions(), [])} if SPEC.values else set()
    assert {f"frame.{k}" for k in h.emitted[-1].values["frame"]} <= declared


class _NotAFrame:
    def open(self) -> None:
        pass

    def read(self) -> Values:
        return Values({"t": 1.0})

    def close(self) -> None:
        pass


def test_a_driver_that_returns_no_frame_is_a_sensor_fault() -> None:
    h = Harness(SPEC, options={}, driver=_NotAFrame())

    async def go() -> None:
        await h.start()
        await h.poll(times=2, advance_s=1.0)
        await h.close()

    asyncio.run(go())
    assert [e.kind for e in h.events] == ["sensor_fault"]
    assert h.emitted[-1].values == {"ta_c": None}


def test_all_failed_pixels_publish_no_numbers() -> None:
    class Blind(_NotAFrame):
        def read(self) -> ThermalFrame:  # type: ignore[override]
            return ThermalFrame(values={}, frame_c=np.full((24, 32), np.nan, np.float32), ta_c=30.0, reflected_c=22.0)

    h = Harness(SPEC, options={}, driver=Blind())

    async def go() -> None:
        await h.start()
        await h.poll(times=1, advance_s=1.0)
        await h.close()

    asyncio.run(go())
    assert h.emitted[-1].values["frame"] == {}


def test_check_config_names_what_is_wrong() -> None:
    bad = msgspec.convert(
        {
            "regions": [
                {"name": "a", "rect": [30, 0, 5, 5]},
                {"name": "a", "reference": "nowhere"},
                {"name": "ambient"},
                {
                    "name": "b",
                    "classes": [
                        {"priority": 1, "name": "x", "min_delta_c": 5},
                        {"priority": 2, "name": "y", "min_delta_c": 1},
                    ],
                },
            ]
        },
        ThermalOptions,
    )
    errs = "\n".join(check_options(bad, "mlx90640"))
    assert "regions[0].rect" in errs and "regions[1].reference" in errs and "regions[2].name" in errs
    assert "regions[3].classes" in errs and "regions[1].name" in errs


def test_reference_plant_camera_follows_the_bearing_fault() -> None:
    """examples/reference-plant.toml's pump1-thermal with a manual clock: quiet while the bearing is
    healthy, "possible" and "probable deficiency" within 1.5 min of the fault (20 s), "major" by 6 min."""
    import tomllib
    from pathlib import Path

    from edge_agent.drivers.testing.clock import ManualClock

    plant = tomllib.loads((Path(__file__).parents[2] / "examples" / "reference-plant.toml").read_text())
    inst = next(i for i in plant["instances"] if i["name"] == "pump1-thermal")
    clock = ManualClock()
    driver_options = {k: v for k, v in inst["driver"].items() if k != "type"}
    driver = Mlx90640Driver(msgspec.convert(driver_options, Mlx90640Options), clock=clock.monotonic)
    h = Harness(SPEC, options=inst["options"], driver=driver, clock=clock, interval_s=inst["interval_s"])
    times: dict[int, float] = {}

    async def go() -> None:
        await h.start()
        for k in range(95):
            await h.poll(times=1, advance_s=inst["interval_s"])
            for e in h.events:
                if e.kind == "thermal_severity":
                    times.setdefault(e.fields["priority"], k * inst["interval_s"])
        await h.close()

    asyncio.run(go())
    assert set(times) == {4, 3, 1}, times
    assert 20 < times[4] < times[3] < times[1] and 60 <= times[3] <= 150 and 280 <= times[1] <= 380


@pytest.mark.parametrize(
    "bad", [None, np.zeros(768, np.float32), np.zeros((0, 0), np.float32)], ids=["none", "1d", "empty"]
)
def test_a_frame_of_the_wrong_shape_is_a_sensor_fault(bad: Any) -> None:
    class Odd(_NotAFrame):
        def read(self) -> ThermalFrame:  # type: ignore[override]
            return ThermalFrame(values={}, frame_c=bad, ta_c=30.0, reflected_c=22.0)

    h = Harness(SPEC, options={}, driver=Odd())

    async def go() -> None:
        await h.start()
        await h.poll(times=1, advance_s=1.0)
        await h.close()

    asyncio.run(go())
    assert [e.kind for e in h.events] == ["sensor_fault"]
