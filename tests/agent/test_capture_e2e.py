"""Waveform capture end to end: `edge-agent capture` -> cmd/capture -> chunks -> a .npy file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import AgentProcess, Subscriber, scaled, write_config

ROOT = Path(__file__).resolve().parents[2]
# 2 s at 800 Hz: the 1,600 samples of 0.5 s at 3200 Hz, but the emulated chip's 32-entry FIFO
# lasts 40 ms instead of 10 ms, so a loaded or 3-4x slower machine still drains it in time.
SECONDS = 2.0
CONTIGUOUS = "contiguous samples"  # the agent's answer when every window had an overrun

VIB = """
[remote]
capture_chunk_bytes = 4096

[[instances]]
name = "pump"
plugin = "vibration"
interval_s = 0.5
driver = { type = "adxl345", backend = "sim", bus = "spi", rate_hz = 800, range_g = 16 }
options = { machine_group = 2, speed_source = "fixed", rpm = 1485 }
"""


def _capture(broker: LocalBroker, instance: str, out: Path, *, timeout_s: int) -> subprocess.CompletedProcess[str]:
    """`edge-agent capture` of SECONDS from agent t1's instance into `out`.

    Tried up to 3 times while the agent answers that every window had an overrun: a starved
    drain thread loses samples on a loaded machine, as it would on a real chip.
    """
    args = ["--url", broker.url, "--agent", "t1", "--instance", instance, "--seconds", str(SECONDS), "--out", str(out)]
    command = [sys.executable, "-m", "edge_agent.agent", "capture", *args, "--timeout", f"{scaled(timeout_s):.0f}"]
    for _ in range(3):
        run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=scaled(60))
        if CONTIGUOUS not in run.stdout + run.stderr:
            break
    return run


def test_capture_writes_the_raw_waveform(tmp_path: Path, broker: LocalBroker, subscriber: Subscriber) -> None:
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances="", extra=VIB)
    agent = AgentProcess(cfg, broker.url)
    try:
        subscriber.wait_for(lambda: subscriber.on("edge/t1/data/pump"), 20, "vibration data")
        out = tmp_path / "wave.npy"
        run = _capture(broker, "pump", out, timeout_s=20)
        assert run.returncode == 0, run.stdout + run.stderr
        wave = np.load(out)
        assert wave.shape[1] == 3 and 1500 <= wave.shape[0] <= 1700, wave.shape
        chunks = [m for m in subscriber.on("edge/t1/cmd/capture/result")]
        assert len(chunks) > 1 and all(m.size < 4096 + 300 for m in chunks), "sent in chunks"
        assert np.abs(wave).max() < 16 and wave.std() > 0.001, "in g, and not silence"
        bad = _capture(broker, "nope", out, timeout_s=10)
        assert bad.returncode == 1 and "unknown instance" in bad.stdout + bad.stderr
    finally:
        agent.stop()
