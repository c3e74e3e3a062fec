"""``edge-agent plantsim``: a config's PLC and IIO devices served from another process, read by
the agent's own drivers as on hardware; faults switched through the control socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from edge_agent.agent.devtools.local_broker import free_port
from edge_agent.drivers.iio.driver import IioDriver, IioOptions
from edge_agent.drivers.simulation.plantsim import PlantSimError, plan, send
from support import scaled

CONFIG = """
[[instances]]
name = "pump"
plugin = "vibration"
[instances.driver]
type = "iio"
sysfs_root = "{root}/sys"
dev_dir = "{root}/dev"
device = "iio:device0"
rate_hz = 3200
[instances.driver.sim]
rpm = 1485
unbalance_g = 0.5

[[instances]]
name = "plc1"
plugin = "plc"
driver = {{ type = "modbus", host = "127.0.0.1", port = {port}, layout = "reference" }}

[[instances]]
name = "far-plc"
plugin = "plc"
driver = {{ type = "modbus", host = "10.1.2.3", port = 502, layout = "reference" }}

[[instances]]
name = "pi-accel"
plugin = "vibration"
driver = {{ type = "iio", device = "iio:device0" }}
"""


@pytest.fixture
def plantsim(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    cfg = tmp_path / "plant.toml"
    cfg.write_text(CONFIG.format(root=tmp_path, port=port))
    sock = str(tmp_path / "ctl.sock")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge_agent.drivers.simulation.plantsim",
            "-c",
            str(cfg),
            "--control",
            sock,
            "--stats-json",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},  # its note for flagless commands, here
    )
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    yield ready, sock, port, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_serves_only_what_is_local_and_not_the_kernels(tmp_path: Path) -> None:
    cfg = tmp_path / "plant.toml"
    cfg.write_text(CONFIG.format(root=tmp_path, port=1502))
    plant = plan(cfg)
    assert list(plant.iio) == ["pump"] and list(plant.plcs) == ["plc1"]  # not 10.1.2.3, not /sys
    cfg.write_text(
        '[[instances]]\nname = "a"\nplugin = "vibration"\n'
        f'driver = {{ type = "iio", sysfs_root = "{tmp_path}", dev_dir = "{tmp_path}", device = "adxl345" }}\n'
    )
    with pytest.raises(PlantSimError, match=r"a\.driver\.device: give the directory name"):
        plan(cfg)


@pytest.mark.slow
def test_agent_drivers_read_the_simulated_plant_and_faults_switch(plantsim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ready, sock, port, proc = plantsim
    assert ready["ready"]["plcs"] == {"plc1": port} and ready["ready"]["iio"] == ["pump"]
    o = {
        "device": "iio:device0",
        "sysfs_root": str(tmp_path / "sys"),
        "dev_dir": str(tmp_path / "dev"),
        "rate_hz": 3200,
    }
    drv = IioDriver(msgspec.convert(o, IioOptions))
    drv.open()
    try:
        time.sleep(0.6)
        drv.read()
        time.sleep(1.0)
        block = drv.read().samples
        assert 2600 <= len(block) <= 3800  # one second of scans at 3.2 kHz, fed in real time
        assert 0.15 < float(block[:, 0].std()) < 0.6  # the unbalance (0.5 g 1x) is there
        # read within the 2-s buffer: nothing lost (asked now: under emulation the `plantsim
        # status` run below takes longer than the buffer holds, and nobody reads meanwhile)
        assert send(sock, {"cmd": "status"})["iio"]["pump"]["lost"] == 0
        answer = send(sock, {"cmd": "fault", "instance": "pump", "fault": "outer", "fault_g": 0.4})
        assert answer == {"ok": True, "instance": "pump", "fault": "outer"}
        assert not send(sock, {"cmd": "fault", "instance": "nope", "fault": "outer"})["ok"]
        assert send(sock, {"cmd": "plc", "instance": "plc1", "state": "busy"})["ok"]
        flagless = subprocess.run(  # `plantsim status` finds the running simulator without --control
            [sys.executable, "-m", "edge_agent.drivers.simulation.plantsim", "status"],
            capture_output=True, text=True, timeout=scaled(30), env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},
        )  # fmt: skip
        assert flagless.returncode == 0 and '"plc1"' in flagless.stdout, flagless.stderr
        status = send(sock, {"cmd": "status"})
        assert status["iio"]["pump"]["enabled"]
    finally:
        drv.close()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=scaled(10))
    final = [json.loads(x) for x in out.splitlines() if x.startswith('{"final"')]
    assert final and final[0]["final"]["iio"]["pump"]["produced"] > 3000
    assert not (tmp_path / "sys" / "iio:device0").exists() and not Path(sock).exists()
    # nothing of the run is left: no empty device directories, no note
    assert not (tmp_path / "sys").exists() and not (tmp_path / "dev").exists()
    assert not (tmp_path / "edge-agent" / "plantsim-control").exists()


@pytest.mark.slow
def test_serial_instrument_on_a_pty_answers_the_agents_driver(tmp_path: Path) -> None:
    """A polled serial instrument served on a pty (linked at the configured port) answers the
    agent's serial_line driver with backend hw, as a USB-serial adapter would."""
    from edge_agent.drivers.serial_line.driver import SPEC as SERIAL

    port = tmp_path / "dev" / "ttyUSB0"
    cfg = tmp_path / "plant.toml"
    cfg.write_text(
        '[[instances]]\nname = "oven"\nplugin = "temperature"\n[instances.driver]\ntype = "serial_line"\n'
        f'port = "{port}"\nrequest = "#01\\r"\nsim = {{ start_c = 181.5, amplitude_c = 0, noise_c = 0 }}\n'
    )
    sock = str(tmp_path / "ctl.sock")
    cmd = [sys.executable, "-m", "edge_agent.drivers.simulation.plantsim", "-c", str(cfg), "--control", sock]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["ready"]["serial"] == {"oven": str(port)}
        opts = msgspec.convert({"port": str(port), "request": "#01\r", "timeout_s": 2.0}, SERIAL.options)
        drv = SERIAL.factory(opts)
        drv.open()
        try:
            reading = drv.read()
        finally:
            drv.close()
        assert [round(c.temperature_c, 2) for c in reading.channels.values()] == [181.5]
        assert send(sock, {"cmd": "status"})["serial"]["oven"]["requests"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert not port.is_symlink()
