"""Waveform capture: plugin answer -> chunks -> agent.capture.assemble -> files the replay driver reads."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import msgspec
import numpy as np
import pytest
from edge_agent.agent.ops.capture import CaptureError, _finish, assemble, run_capture, write
from edge_agent.drivers.contract import Waveform
from edge_agent.drivers.replay.driver import ReplayOptions, load

RATE = 3200.0


def capture_answer(raw: bool) -> dict[str, Any]:
    """What the vibration plugin returns for a 0.5 s capture (int16 or float32)."""
    n = 1600
    t = np.arange(n) / RATE
    counts = np.stack([np.round(100 * np.sin(2 * np.pi * 50 * t)), np.arange(n) % 300, np.full(n, 256)], 1)
    counts = counts.astype(np.int16)
    from edge_agent.plugins.vibration.capture import pack

    wf = Waveform(counts * 0.0039, RATE, ("x", "y", "z"), 123, raw=counts if raw else None, scale=0.0039)
    return pack([wf], n)


def chunked(result: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """Split like the agent does (agent/remote/commands.py)."""
    data = result["samples"]
    meta = {k: v for k, v in result.items() if k != "samples"}
    n = max(1, -(-len(data) // size))
    out = [{"id": "r1", "ok": True, "chunk": i, "chunks": n, "data": data[i * size : (i + 1) * size]} for i in range(n)]
    out[0]["meta"] = meta
    return out


@pytest.mark.parametrize("raw", [True, False])
def test_assemble_any_order(raw: bool) -> None:
    result = capture_answer(raw)
    chunks = chunked(result, 1000)
    assert len(chunks) > 5
    wire = [msgpack.unpackb(msgpack.packb(c), raw=False) for c in reversed(chunks)]
    meta, g = assemble(wire)
    assert meta["dtype"] == ("int16" if raw else "float32") and meta["n"] == 1600 and meta["axes"] == ["x", "y", "z"]
    assert g.shape == (1600, 3) and g.dtype == np.float32
    assert g[0, 2] == pytest.approx(0.9984, abs=1e-6) and g[299, 1] == pytest.approx(299 * 0.0039, rel=1e-6)


def test_assemble_incomplete() -> None:
    chunks = chunked(capture_answer(True), 1000)
    with pytest.raises(CaptureError, match="incomplete"):
        assemble(chunks[:-1])
    with pytest.raises(CaptureError):
        assemble([])


@pytest.mark.parametrize("suffix", [".npy", ".wav", ".csv"])
def test_written_files_replay(tmp_path: Path, suffix: str) -> None:
    meta, g = assemble(chunked(capture_answer(True), 4096))
    path = tmp_path / f"cap{suffix}"
    write(path, meta, g)
    rate = RATE if suffix == ".npy" else None
    x, rate_hz, axes = load(msgspec.convert({"path": str(path), "rate_hz": rate}, ReplayOptions))
    assert rate_hz == pytest.approx(RATE) and x.shape == (1600, 3)
    assert np.allclose(x, g, atol=1e-6)
    if suffix == ".csv":
        assert axes == ("x", "y", "z")


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _finish({}, str(tmp_path / "a.npy"), None, 3.0) == 2
    assert _finish({"id": "r1", "ok": False, "error": "seconds: too long"}, "a.npy", None, 3.0) == 1
    assert "too long" in capsys.readouterr().err
    assert _finish(chunked(capture_answer(False), 999), str(tmp_path / "a.npy"), None, 3.0) == 0
    assert np.load(tmp_path / "a.npy").shape == (1600, 3)
    assert _finish(chunked(capture_answer(False), 999), str(tmp_path / "a.txt"), None, 3.0) == 1


def test_no_broker_is_no_answer(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    code = run_capture(
        url=f"mqtt://127.0.0.1:{port}",
        agent="a",
        instance="i",
        seconds=0.1,
        out=str(tmp_path / "x.npy"),
        plot=None,
        timeout_s=0.5,
    )
    assert code == 2


@pytest.fixture
def mosquitto(tmp_path: Path) -> Any:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if exe is None:
        pytest.skip("mosquitto not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def responder(port: int, answer: list[dict[str, Any]] | None, ready: threading.Event, done: threading.Event) -> Any:
    """A stand-in agent: answers each capture request with chunks (or an error when answer is None)."""
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fake-agent")

    def on_message(client: Any, _u: Any, msg: Any) -> None:
        req = msgpack.unpackb(msg.payload, raw=False)
        ds = [{"id": req["id"], "ok": False, "error": "no such instance"}] if answer is None else answer
        for seq, d in enumerate(ds):
            d = {**d, "id": req["id"]}
            env = {"v": 1, "ts": 0, "seq": seq, "d": d}
            client.publish("edge/a1/cmd/capture/result", msgpack.packb(env, use_bin_type=True), qos=1)
        done.set()

    c.on_message = on_message
    c.on_subscribe = lambda *_a: ready.set()
    c.connect("127.0.0.1", port)
    c.subscribe("edge/a1/cmd/capture", qos=1)
    c.loop_start()
    return c


@pytest.mark.slow
@pytest.mark.parametrize("ok", [True, False])
def test_end_to_end_through_a_broker(mosquitto: int, tmp_path: Path, ok: bool) -> None:
    ready, done = threading.Event(), threading.Event()
    answer = chunked(capture_answer(True), 2000) if ok else None
    c = responder(mosquitto, answer, ready, done)
    try:
        assert ready.wait(5)
        code = run_capture(
            url=f"mqtt://127.0.0.1:{mosquitto}",
            agent="a1",
            instance="pump",
            seconds=0.5,
            out=str(tmp_path / "w.csv"),
            plot=None,
            timeout_s=5,
        )
    finally:
        c.loop_stop()
        c.disconnect()
    assert done.is_set()
    assert code == (0 if ok else 1)
    if ok:
        assert (tmp_path / "w.csv").read_text().startswith("t_s,x,y,z")


def test_plugin_capture_meta_keys() -> None:
    from edge_agent.plugins.testing.harness import Harness
    from edge_agent.plugins.vibration import SPEC

    class One:
        def open(self) -> None: ...
        def close(self) -> None: ...
        def read(self) -> Waveform:
            return Waveform(np.zeros((3200, 3)), RATE, ("x", "y", "z"), 0)

    h = Harness(
        SPEC,
        options={"speed_source": "fixed", "rpm": 1800, "bearing": {"bpfo": 3.0, "bpfi": 5.0, "bsf": 2.0, "ftf": 0.4}},
        driver=One(),
    )

    async def go() -> dict[str, Any]:
        task = asyncio.create_task(h.plugin.command("capture", {"seconds": 0.5}))
        await asyncio.sleep(0)
        await h.poll()
        return await task

    r = asyncio.run(go())
    assert set(r) >= {"rate_hz", "axes", "unit", "dtype", "scale", "n", "samples", "rpm", "bearing_hz"}
    assert r["bearing_hz"]["bpfo"] == pytest.approx(90.0) and r["envelope_band_hz"] == [250.0, 1000.0]


def test_plot_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from edge_agent.agent.ops.plots import capture as plot

    meta, g = assemble(chunked(capture_answer(True), 4096))
    meta["bearing_hz"] = {"bpfo": 107.4, "bpfi": 162.2}
    plot(tmp_path / "p.png", meta, g)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
