"""Client side of ``cmd/capture``: request a raw waveform, reassemble its chunks, write a file.

The request goes to ``{p}/{agent}/cmd/capture`` as a MessagePack map ``{"id", "instance", "args":
{"seconds"}}``; the answers arrive on ``{p}/{agent}/cmd/capture/result`` as envelopes whose ``d`` is
``{"id", "ok", "chunk", "chunks", "meta" (chunk 0 only), "data"}`` or ``{"id", "ok": false,
"error"}``. Output by extension: ``.npy`` (float32, g), ``.wav`` (IEEE float32, g), ``.csv``
(``t_s`` then one column per axis). ``--plot`` draws waveform, spectrum and envelope spectrum with
the bearing tones marked (agent/ops/plots.py).
"""

from __future__ import annotations

import queue
import struct
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from edge_agent.agent.ops.connection import ClientError, ClientSettings, Connection

EXIT_OK, EXIT_ERROR_ANSWER, EXIT_NO_ANSWER = 0, 1, 2
DTYPES = {"int16": "<i2", "float32": "<f4"}


class CaptureError(Exception):
    """The chunks do not form a complete capture."""


def assemble(chunks: list[dict[str, Any]]) -> tuple[dict[str, Any], Any]:
    """Join the ``d`` maps of one capture: (meta, samples in g as float32 (n, axes))."""
    by_index = {int(c["chunk"]): c for c in chunks}
    total = int(chunks[0]["chunks"]) if chunks else 0
    if not chunks or sorted(by_index) != list(range(total)):
        raise CaptureError(f"incomplete capture: have chunks {sorted(by_index)} of {total}")
    meta = by_index[0].get("meta")
    if not isinstance(meta, dict):
        raise CaptureError("chunk 0 carries no meta")
    data = b"".join(bytes(by_index[i]["data"]) for i in range(total))
    axes = len(meta["axes"])
    raw = np.frombuffer(data, dtype=DTYPES[meta["dtype"]])
    if raw.size != int(meta["n"]) * axes:
        raise CaptureError(f"expected {meta['n']} x {axes} samples, got {raw.size} values")
    g = raw.reshape(-1, axes).astype(np.float32) * np.float32(meta.get("scale", 1.0))
    return meta, g


def write_wav(path: Path, g: Any, rate_hz: float) -> None:
    """IEEE float32 WAV (format 3), one channel per axis, values in g."""
    data = np.ascontiguousarray(g, dtype="<f4").tobytes()
    ch, rate = g.shape[1], round(rate_hz)
    fmt = struct.pack("<HHIIHH", 3, ch, rate, rate * 4 * ch, 4 * ch, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_csv(path: Path, g: Any, rate_hz: float, axes: list[str]) -> None:
    """``t_s`` and one column per axis (g), readable by the replay driver."""
    t = np.arange(len(g)) / rate_hz
    table = np.column_stack([t, g])
    np.savetxt(path, table, delimiter=",", header=",".join(["t_s", *axes]), comments="", fmt="%.9g")


def write(path: Path, meta: dict[str, Any], g: Any) -> None:
    """Write by extension: .npy, .wav or .csv."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, g)
    elif suffix == ".wav":
        write_wav(path, g, float(meta["rate_hz"]))
    elif suffix == ".csv":
        write_csv(path, g, float(meta["rate_hz"]), list(meta["axes"]))
    else:
        raise ValueError(f"unknown output format {suffix!r} (use .npy, .wav or .csv)")


def _collect(inbox: queue.Queue[Any], req_id: str, deadline: float) -> dict[str, Any] | list[dict[str, Any]]:
    """Chunks of our request until complete (list), an error answer (dict) or the deadline ({})."""
    chunks: dict[int, dict[str, Any]] = {}
    while (left := deadline - time.monotonic()) > 0:
        try:
            d = inbox.get(timeout=left)
        except queue.Empty:
            break
        if not isinstance(d, dict) or d.get("id") != req_id:
            continue
        if not d.get("ok"):
            return d
        chunks[int(d["chunk"])] = d
        if len(chunks) == int(d["chunks"]):
            return [chunks[i] for i in sorted(chunks)]
    return {}


def run_capture(
    *,
    agent: str,
    instance: str,
    seconds: float,
    out: str,
    plot: str | None,
    timeout_s: float = 30.0,
    settings: ClientSettings | None = None,
    url: str | None = None,
) -> int:
    """Request a capture and write it; exit code 0 ok, 1 error answer, 2 no answer."""
    settings = settings or ClientSettings(url=url or "mqtt://127.0.0.1:1883")
    req_id = uuid.uuid4().hex[:12]
    topic = f"{settings.prefix}/{agent}/cmd/capture"
    inbox: queue.Queue[Any] = queue.Queue()
    request = msgpack.packb({"id": req_id, "instance": instance, "args": {"seconds": seconds}})
    try:
        conn = Connection(settings, [topic + "/result"], name="edge-capture").__enter__()
    except ClientError as exc:
        print(f"capture: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    try:
        conn.publish(topic, request)
        deadline = time.monotonic() + timeout_s + seconds
        threading.Thread(target=_pump, args=(conn, inbox, deadline), daemon=True).start()
        answer = _collect(inbox, req_id, deadline)
    finally:
        conn.close()
    return _finish(answer, out, plot, timeout_s + seconds)


def _pump(conn: Connection, inbox: queue.Queue[Any], deadline: float) -> None:
    """Hand the ``d`` of every envelope to the collector (other payloads are skipped)."""
    while (msg := conn.get(deadline - time.monotonic())) is not None:
        try:
            inbox.put(msgpack.unpackb(msg[1], raw=False).get("d"))
        except (ValueError, AttributeError, msgpack.UnpackException):
            pass  # not an envelope: ignore


def _finish(answer: dict[str, Any] | list[dict[str, Any]], out: str, plot_path: str | None, waited_s: float) -> int:
    if isinstance(answer, dict):
        if not answer:
            print(f"capture: no answer within {waited_s:.0f} s", file=sys.stderr)
            return EXIT_NO_ANSWER
        print(f"capture: refused: {answer.get('error', 'unknown error')}", file=sys.stderr)
        return EXIT_ERROR_ANSWER
    try:
        meta, g = assemble(answer)
        write(Path(out), meta, g)
        if plot_path:
            from edge_agent.agent.ops import plots

            plots.capture(Path(plot_path), meta, g)
    except (CaptureError, ValueError, KeyError) as exc:
        print(f"capture: {exc}", file=sys.stderr)
        return EXIT_ERROR_ANSWER
    print(f"capture: {meta['n']} samples x {len(meta['axes'])} axes at {meta['rate_hz']:g} Hz -> {out}")
    if plot_path:
        print(f"capture: plot -> {plot_path}")
    return EXIT_OK
