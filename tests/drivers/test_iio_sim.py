"""The plant simulator's IIO device, read by the agent's own ``iio`` driver (backend hw) through
its sysfs-like tree and FIFO, as on a Pi."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.iio.driver import IioDriver, IioOptions
from edge_agent.drivers.iio.simulator import IEPE_MV_PER_G, SimChip, SimIioDevice
from edge_agent.drivers.simulation.vibration_model import ModelOptions, VibrationModel


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _pair(tmp_path: Path, chip: SimChip, rate: float, **opts: object) -> tuple[SimIioDevice, IioDriver, Clock]:
    clock = Clock()
    model = ModelOptions(rpm=1485, unbalance_g=0.3, noise_g=0.01, seed=4)
    sim = SimIioDevice(tmp_path / "sys" / "iio:device1", tmp_path / "dev" / "iio:device1", chip, model, clock=clock)
    sim.create()
    o = {
        "device": "iio:device1",
        "sysfs_root": str(tmp_path / "sys"),
        "dev_dir": str(tmp_path / "dev"),
        "rate_hz": rate,
    }
    drv = IioDriver(msgspec.convert({**o, **opts}, IioOptions))
    return sim, drv, clock


@pytest.mark.parametrize(
    ("chip", "rate", "lsb_g"), [(SimChip.ADXL345, 3200.0, 0.0383 / 9.80665), (SimChip.IEPE, 25600.0, 0.0006)]
)
def test_driver_reads_the_simulated_device_like_the_kernels(
    tmp_path: Path, chip: SimChip, rate: float, lsb_g: float
) -> None:
    """Every scan the model made arrives, in order, equal to the model within one LSB."""
    extra = {"sensitivity_mv_per_g": IEPE_MV_PER_G, "axes": ["x", "y", "z"]} if chip is SimChip.IEPE else {}
    sim, drv, clock = _pair(tmp_path, chip, rate, **extra)
    drv.open()
    sim.tick()  # the simulator sees buffer/enable = 1: the buffer starts filling now
    try:
        assert drv.rate_hz == rate and drv.axes == ("x", "y", "z")
        got = []
        for _ in range(8):  # one simulated second in 125-ms ticks, read after every second tick
            clock.t += 0.125
            sim.tick()
            if len(got) % 2 == 0:
                got.append(drv.read().samples)
        got.append(drv.read().samples)
        samples = np.concatenate(got)
        expect = VibrationModel(ModelOptions(rpm=1485, unbalance_g=0.3, noise_g=0.01, seed=4), rate).generate(int(rate))
        assert samples.shape == (int(rate), 3)
        assert np.max(np.abs(samples - expect)) <= lsb_g
        assert sim.stats()["lost"] == 0 and sim.stats()["produced"] == int(rate)
    finally:
        drv.close()
    sim.tick()
    assert not sim.enabled and sim.fd is None  # enable 0 stops the feed


def test_full_buffer_loses_the_newest_scans_and_counts_them(tmp_path: Path) -> None:
    sim, drv, clock = _pair(tmp_path, SimChip.ADXL345, 3200.0, buffer_s=0.5)
    drv.open()
    sim.tick()  # the simulator sees buffer/enable = 1: the buffer starts filling now
    try:
        for _ in range(16):  # 2 s with nobody reading: the 0.5-s buffer (1600 scans) fills
            clock.t += 0.125
            sim.tick()
        assert sim.stats()["lost"] == 6400 - 1600
        assert len(drv.read().samples) == 1600
    finally:
        drv.close()
        sim.remove()
    assert not (tmp_path / "sys" / "iio:device1").exists() and not (tmp_path / "dev" / "iio:device1").exists()


def test_only_enabled_channels_are_sent_and_faults_switch(tmp_path: Path) -> None:
    sim, drv, clock = _pair(tmp_path, SimChip.ADXL345, 3200.0, channels=["accel_y", "accel_z"])
    drv.open()
    sim.tick()  # the simulator sees buffer/enable = 1: the buffer starts filling now
    try:
        assert drv.read().samples.shape == (0, 2)  # nothing yet (the second channel sits at an offset)
        clock.t += 0.5
        sim.tick()
        assert drv.read().samples.shape == (1600, 2)
        sim.set_fault("outer", 0.5)
        assert sim.model is not None and sim.model.fault_hz() > 0
    finally:
        drv.close()
