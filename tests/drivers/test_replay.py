"""replay: .wav (PCM and float), .npy and .csv, at the file's rate, looping or once."""

from __future__ import annotations

import struct
import wave
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.contract import check_driver_spec
from edge_agent.drivers.errors import DeviceNotFound, DriverError
from edge_agent.drivers.replay.driver import SPEC, ReplayDriver, ReplayOptions, check_options

RATE = 1000
SIGNAL = np.stack([np.linspace(-0.5, 0.5, 250), np.linspace(0.25, -0.25, 250)], axis=1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def driver(path: Path, **opts: Any) -> tuple[ReplayDriver, Clock]:
    clock = Clock()
    drv = ReplayDriver(msgspec.convert({"path": str(path), **opts}, ReplayOptions), clock=clock)
    drv.open()
    return drv, clock


def write_float_wav(path: Path, x: np.ndarray, rate: int) -> None:
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, x.shape[1], rate, rate * 4 * x.shape[1], 4 * x.shape[1], 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_spec_is_valid() -> None:
    check_driver_spec(SPEC, "edge_agent.drivers.replay.driver:SPEC")


def test_pcm16_wav_rate_from_file_and_scale(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.round(SIGNAL * 32768).astype("<i2").tobytes())
    drv, clock = driver(path, scale=4.0)  # 4 g at full scale
    clock.now = 0.1
    wf = drv.read()
    assert wf.rate_hz == RATE and wf.axes == ("x", "y") and len(wf.samples) == 100
    assert np.allclose(wf.samples, SIGNAL[:100] * 4.0, atol=4.0 / 32768)


def test_float_wav(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    write_float_wav(path, SIGNAL, RATE)
    drv, clock = driver(path, axes=["radial", "axial"])
    clock.now = 0.25
    wf = drv.read()
    assert np.allclose(wf.samples, SIGNAL, atol=1e-7) and wf.axes == ("radial", "axial")


def test_npy_needs_a_rate_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "rec.npy"
    np.save(path, SIGNAL)
    with pytest.raises(DriverError, match="rate_hz"):
        driver(path)
    drv, clock = driver(path, rate_hz=RATE)
    clock.now = 0.2
    assert len(drv.read().samples) == 200
    clock.now = 0.3  # wraps around the 250-sample recording
    wf = drv.read()
    assert np.allclose(wf.samples, np.concatenate([SIGNAL[200:], SIGNAL[:50]]))


def test_csv_with_time_column_plays_once(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    t = np.arange(len(SIGNAL)) / RATE
    lines = ["t_s,x,z"] + [f"{a:.6f},{b:.6f},{c:.6f}" for a, (b, c) in zip(t, SIGNAL, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    drv, clock = driver(path, loop=False)
    clock.now = 1.0
    wf = drv.read()
    assert wf.rate_hz == pytest.approx(RATE) and wf.axes == ("x", "z") and len(wf.samples) == 250
    assert drv.finished and len(drv.read().samples) == 0


def test_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("# a comment\n0.1\n0.2\n0.3\n")
    drv, clock = driver(path, rate_hz=10)
    clock.now = 0.3
    assert drv.read().samples[:, 0].tolist() == [0.1, 0.2, 0.3]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFound):
        driver(tmp_path / "missing.wav")
    (tmp_path / "x.txt").write_text("1\n")
    with pytest.raises(DriverError, match="unknown format"):
        driver(tmp_path / "x.txt")
    (tmp_path / "bad.wav").write_bytes(b"not a wave file")
    with pytest.raises(DriverError, match="RIFF"):
        driver(tmp_path / "bad.wav")


def test_check_options() -> None:
    def errs(**kw: Any) -> list[str]:
        return check_options(msgspec.convert(kw, ReplayOptions))

    assert errs(path="a.wav") == [] and errs(path="a.npy", rate_hz=100) == []
    assert errs(path="a.npy")[0].startswith("rate_hz:")
    assert errs(path="a.mp3")[0].startswith("path:")
