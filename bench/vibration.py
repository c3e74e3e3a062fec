"""Vibration benchmark, run by hand: ``.venv/bin/python -m bench.vibration [--cpu-seconds 20]``.

Prints:
1. the time to compute every feature of 1 s of 3-axis 25.6 kHz data (ours), and the same features
   with a straightforward scipy implementation in the same run, with the ratio;
2. the size of one data message in MessagePack (float32) against the same content as JSON;
3. the CPU share of one 3200 Hz ADXL345 sim instance (driver thread + plugin at a 1 s window).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import msgpack
import msgspec
import numpy as np
from edge_agent.drivers.adxl345 import Adxl345Driver, Adxl345Options
from edge_agent.drivers.simulation.vibration_model import FaultKind, ModelOptions, VibrationModel
from edge_agent.plugins.contract import RealClock
from edge_agent.plugins.testing.harness import Harness
from edge_agent.plugins.vibration import SPEC
from edge_agent.plugins.vibration.analysis import FeatureConfig, analyse
from edge_agent.plugins.vibration.bearing import orders_from_geometry

FS = 25600.0
RPM = 1797.0
ORDERS = orders_from_geometry(9, 0.3126, 1.537)
CFG = FeatureConfig(
    axes=("x", "y", "z"),
    iso_limits_mm_s=(1.4, 2.8, 4.5),
    peaks=3,
    bands_hz=((10.0, 1000.0), (1000.0, 5000.0)),
    orders=ORDERS,
    envelope_band_hz=(2000.0, 8000.0),
)


def scipy_features(x: Any, fs: float, shaft_hz: float) -> dict[str, Any]:
    """The same features, written the straightforward way with scipy (one pass per feature)."""
    from scipy import fft, signal, stats

    out: dict[str, Any] = {}
    sos = signal.butter(4, [2000.0, 8000.0], btype="bandpass", fs=fs, output="sos")
    for i, name in enumerate(("x", "y", "z")):
        a = signal.detrend(x[:, i], type="constant")
        n = len(a)
        f = fft.rfftfreq(n, 1 / fs)
        spec = np.abs(fft.rfft(a * signal.get_window("hann", n))) * 4 / n
        band = (f >= 10) & (f <= 1000)
        vel = spec[band] / (2 * np.pi * f[band]) * 9806.65
        peaks, _ = signal.find_peaks(spec)
        top = peaks[np.argsort(spec[peaks])[-3:]]
        env = np.abs(signal.hilbert(signal.sosfiltfilt(sos, a)))
        env_spec = np.abs(fft.rfft((env - env.mean()) * signal.get_window("hann", n))) * 4 / n
        tones = {}
        for tone, hz in ORDERS.hz(shaft_hz).items():
            k = round(hz * n / fs)
            floor = np.median(env_spec[max(k - 20, 2) : k + 20])
            tones[tone] = 20 * np.log10(env_spec[k - 1 : k + 2].max() / floor)
        out[name] = {
            "rms_g": float(np.sqrt(np.mean(a**2))),
            "peak_g": float(np.max(np.abs(a))),
            "p2p_g": float(np.ptp(a)),
            "kurtosis": float(stats.kurtosis(a, fisher=False)),
            "skewness": float(stats.skew(a)),
            "velocity_rms_mm_s": float(np.sqrt(np.sum(vel**2) / 1.5 / 2)),
            "peaks_hz": f[top].tolist(),
            "bands_g": [float(np.sqrt(np.sum(spec[(f >= lo) & (f <= hi)] ** 2) / 3)) for lo, hi in CFG.bands_hz],
            "tones": tones,
        }
    return out


def timed(fn: Any, repeat: int) -> tuple[float, float]:
    """(best, median) wall time of ``fn()`` in ms; the best is robust to other load on the machine."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return min(runs), statistics.median(runs)


def bench_features(repeat: int) -> dict[str, Any]:
    x = VibrationModel(ModelOptions(fault=FaultKind.OUTER, fault_g=0.2), FS).generate(int(FS))
    ours = timed(lambda: analyse(x, FS, CFG, RPM / 60), repeat)
    naive = timed(lambda: scipy_features(x, FS, RPM / 60), repeat)
    for label, i in (("best", 0), ("median", 1)):
        print(
            f"features, 1 s x 3 axes @ 25.6 kHz ({label} of {repeat}): ours {ours[i]:.2f} ms, "
            f"scipy straightforward {naive[i]:.2f} ms, ratio {ours[i] / naive[i]:.2f}x"
        )
    return analyse(x, FS, CFG, RPM / 60).message


def bench_size(message: dict[str, Any]) -> None:
    packed = msgpack.packb(message, use_single_float=True)
    content = msgpack.unpackb(packed, raw=False)  # exactly what a consumer receives
    for label, text in (
        ("json.dumps(d)", json.dumps(message)),
        ("compact JSON of the received content", json.dumps(content, separators=(",", ":"))),
        ("compact JSON, floats cut to 7 significant digits", json.dumps(_round(content), separators=(",", ":"))),
    ):
        size = len(text.encode())
        print(f"message: MessagePack {len(packed)} B vs {label} {size} B: {len(packed) / size:.0%}")


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.7g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_round(x) for x in v]
    return v


async def _run_instance(seconds: float) -> tuple[float, float, int]:
    o = msgspec.convert({"backend": "sim", "sim": {"fault": "outer"}}, Adxl345Options)
    opts = {
        "speed_source": "fixed",
        "rpm": RPM,
        "bearing": {"balls": 9, "ball_diameter": 0.3126, "pitch_diameter": 1.537},
    }
    h = Harness(SPEC, options=opts, driver=Adxl345Driver(o), clock=RealClock())
    await h.start()
    cpu0, wall0 = time.process_time(), time.monotonic()
    for _ in range(int(seconds)):
        await asyncio.sleep(1.0)
        await h.poll()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    await h.close()
    return cpu, wall, len(h.emitted)


def bench_cpu(seconds: float) -> None:
    cpu, wall, n = asyncio.run(_run_instance(seconds))
    print(
        f"one ADXL345 sim instance @ 3200 Hz, 1 s window: {100 * cpu / wall:.1f} % of one core "
        f"({cpu:.2f} s CPU in {wall:.1f} s, {n} messages)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--cpu-seconds", type=float, default=20.0)
    args = p.parse_args()
    message = bench_features(args.repeat)
    bench_size(message)
    bench_cpu(args.cpu_seconds)


if __name__ == "__main__":
    main()
