"""CPU cost of the simulated vibration sensors, run by hand: ``.venv/bin/python -m bench.adxl345_drain``.

Prints microseconds of process CPU per simulated second (best of ``--repeat`` runs) for the
reference plant's machines (examples/snippets/vibration.toml), each as former path / current path:

1. draining the two ADXL345 at 3.2 kHz (pump1-de, pump1-nde, SPI, backend "sim") the way the shared
   drain thread does: every 4 ms, with a fake clock advanced 4 ms per drain so it runs flat out.
   Former: one SPI transaction per FIFO entry (SpiBus's fallback for a port without
   ``xfer_segments``, forced); current: one burst message per drain. The chips replay pre-generated
   samples, so this is the bus, driver and emulated FIFO alone;
2. ``VibrationModel.generate`` for those two machines in the emulator's 0.125-s chunks, over 40 s
   so that pump1-de's outer-race fault (from 20 s) is half of it. Former: a copy of the formulas
   before the rewrite (``FormerModel``, checked against the current model first);
3. ``IioDriver.read`` of the 25.6 kHz sim (fan2), 1 s per read, former model against current;

then the ratios and the sum of the three.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from edge_agent.drivers.adxl345 import Adxl345Driver, Adxl345Options
from edge_agent.drivers.adxl345.bus import SpiBus
from edge_agent.drivers.adxl345.emulator import Adxl345Emulator
from edge_agent.drivers.iio.driver import IioDriver, IioOptions
from edge_agent.drivers.simulation.vibration_model import ModelOptions, VibrationModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from former_vibration_model import FormerModel

SNIPPET = Path(__file__).resolve().parents[1] / "examples" / "snippets" / "vibration.toml"
DRAIN_S = 0.004  # the drain thread's interval
CHUNK_S = 0.125  # the emulator generates samples in chunks this long
ADXL345 = ("pump1-de", "pump1-nde")
IIO = "fan2"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def driver_tables() -> dict[str, dict[str, Any]]:
    """The plant's driver tables by instance name, without ``type``."""
    instances = tomllib.loads(SNIPPET.read_text())["instances"]
    return {i["name"]: {k: v for k, v in i["driver"].items() if k != "type"} for i in instances}


def replay(samples: Any) -> Callable[[int, float], Any]:
    """An emulator source cycling through pre-generated samples (so draining is measured alone)."""
    pos = [0]

    def source(n: int, _rate_hz: float) -> Any:
        idx = (pos[0] + np.arange(n)) % len(samples)
        pos[0] += n
        return samples[idx]

    return source


def drain_run(*, per_entry: bool, seconds: float) -> float:
    """CPU us per simulated second to drain the plant's two ADXL345 every 4 ms."""
    tables, clock, drivers = driver_tables(), FakeClock(), []
    for name in ADXL345:
        o = msgspec.convert(tables[name], Adxl345Options)
        chip = Adxl345Emulator(replay(VibrationModel(o.sim, o.rate_hz).generate(int(o.rate_hz))), clock=clock)
        bus = SpiBus(chip.spi)
        if per_entry:  # what SpiBus does for a port without xfer_segments (no wrapper: no extra call per entry)
            bus._segments = None
        drv = Adxl345Driver(o, bus=bus, clock=clock, background=False)
        drv.open()
        drivers.append(drv)
    start = time.process_time_ns()
    for _ in range(round(seconds / DRAIN_S)):
        clock.now += DRAIN_S
        for drv in drivers:
            drv.drain()
    elapsed_ns = time.process_time_ns() - start
    for drv in drivers:  # every sample arrived once, none lost
        wf = drv.read()
        assert wf.lost_samples == 0 and abs(len(wf.samples) - seconds * drv.o.rate_hz) <= 40, wf.lost_samples
    return elapsed_ns / 1e3 / seconds


def model_run(cls: type[VibrationModel], *, seconds: float) -> float:
    """CPU us per simulated second of ``generate`` for the two ADXL345 machines, in emulator chunks."""
    tables = driver_tables()
    options = [msgspec.convert(tables[name], Adxl345Options) for name in ADXL345]
    models = [cls(o.sim, o.rate_hz, axes=3) for o in options]
    chunk = int(options[0].rate_hz * CHUNK_S)
    start = time.process_time_ns()
    for _ in range(round(seconds / CHUNK_S)):
        for m in models:
            m.generate(chunk)
    return (time.process_time_ns() - start) / 1e3 / seconds


def iio_run(cls: type[VibrationModel], *, seconds: int) -> float:
    """CPU us per simulated second of 1-s ``IioDriver.read`` calls on the 25.6 kHz sim."""
    clock = FakeClock()
    drv = IioDriver(msgspec.convert(driver_tables()[IIO], IioOptions), clock=clock)
    drv.open()
    drv.model = cls(drv.o.sim, drv.rate_hz, axes=drv.o.sim_axes)
    start = time.process_time_ns()
    for _ in range(seconds):
        clock.now += 1.0
        drv.read()
    return (time.process_time_ns() - start) / 1e3 / seconds


def check_former_model() -> None:
    """The baseline must be the same signal: compare a faulty and a healthy machine block by block."""
    tables = driver_tables()
    for name in (*ADXL345, IIO):
        table = tables[name]
        sim, rate_hz = msgspec.convert(table.get("sim", {}), ModelOptions), float(table["rate_hz"])
        new, old = VibrationModel(sim, rate_hz), FormerModel(sim, rate_hz)
        for _ in range(int(25 / CHUNK_S) if name != IIO else 2):  # past pump1-de's fault start (20 s)
            n = int(rate_hz * CHUNK_S)
            assert np.allclose(new.generate(n), old.generate(n), rtol=0, atol=1e-12), name


def best(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="simulated seconds of draining per run")
    p.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is kept")
    args = p.parse_args()
    check_former_model()
    rows = [
        (
            "ADXL345 drain, 2 chips x 3.2 kHz, 4-ms drains",
            best(args.repeat, lambda: drain_run(per_entry=True, seconds=args.seconds)),
            best(args.repeat, lambda: drain_run(per_entry=False, seconds=args.seconds)),
        ),
        (
            "VibrationModel.generate, those 2 machines",
            best(args.repeat, lambda: model_run(FormerModel, seconds=40.0)),
            best(args.repeat, lambda: model_run(VibrationModel, seconds=40.0)),
        ),
        (
            "IioDriver.read sim, 25.6 kHz x 3 axes, 1-s reads",
            best(args.repeat, lambda: iio_run(FormerModel, seconds=10)),
            best(args.repeat, lambda: iio_run(VibrationModel, seconds=10)),
        ),
    ]
    rows.append(("sum", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    print(f"{'CPU us per simulated second':<50} {'former':>9} {'current':>9} {'ratio':>7}")
    for label, former, current in rows:
        print(f"{label:<50} {former:>9.0f} {current:>9.0f} {former / current:>6.1f}x")


if __name__ == "__main__":
    main()
