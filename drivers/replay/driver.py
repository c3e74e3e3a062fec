"""Replay a recorded waveform from ``.wav``, ``.npy`` or ``.csv`` at its rate, looping or once.

``.wav``: PCM 16/24/32-bit (full scale = ``scale``) or IEEE float32/64 (x ``scale``), rate from the
file. ``.npy``: shape (n,) or (n, axes), ``rate_hz`` required. ``.csv``: one column per axis, an
optional header row naming the axes; a first column ``t_s`` (or ``time_s``) gives the rate.
Samples are released in real time: each ``read()`` returns what "arrived" since the previous one.
"""

from __future__ import annotations

import csv
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
from edge_agent.drivers.contract import Capability, DriverSpec, DType, FilePath, Options, ValueSpec, Waveform
from edge_agent.drivers.errors import DeviceNotFound, DriverError

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


class ReplayOptions(Options):
    path: FilePath  # relative: to the config file's directory
    rate_hz: Annotated[float, msgspec.Meta(gt=0)] | None = None  # required for .npy; overrides the file
    loop: bool = True
    axes: list[str] | None = None  # default: the CSV header, else x, y, z, ...
    scale: float = 1.0  # multiplier to g (WAV PCM: g at full scale)
    unit: str = "g"


def _wav_chunks(data: bytes) -> dict[bytes, bytes]:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DriverError("replay: not a RIFF/WAVE file")
    chunks, pos = {}, 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks[cid] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    return chunks


def read_wav(path: Path) -> tuple[Any, float]:
    """(samples (n, channels) float64 normalised to +-1 for PCM, rate_hz)."""
    ch = _wav_chunks(path.read_bytes())
    if b"fmt " not in ch or b"data" not in ch:
        raise DriverError(f"replay: {path}: WAV without fmt or data chunk")
    fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", ch[b"fmt "][:16])
    if fmt == _EXTENSIBLE:
        fmt = struct.unpack("<H", ch[b"fmt "][24:26])[0]
    raw, width = ch[b"data"], bits // 8
    if fmt == _FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, dtype=f"<f{width}").astype(np.float64)
    elif fmt == _PCM and bits in (16, 32):
        x = np.frombuffer(raw, dtype=f"<i{width}") / float(1 << (bits - 1))
    elif fmt == _PCM and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8) / float(1 << 23)
    else:
        raise DriverError(f"replay: {path}: unsupported WAV format {fmt} with {bits} bits")
    return x[: len(x) // channels * channels].reshape(-1, channels), float(rate)


def read_csv(path: Path) -> tuple[Any, list[str] | None, float | None]:
    """(samples, axis names from the header or None, rate from a t_s column or None)."""
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    header = None
    try:
        float(rows[0][0])
    except ValueError:
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    x = np.asarray(rows, dtype=np.float64)
    rate = None
    if header and header[0] in ("t_s", "time_s"):
        if len(x) > 1:
            rate = 1.0 / float(np.median(np.diff(x[:, 0])))
        header, x = header[1:], x[:, 1:]
    return x, header, rate


def load(o: ReplayOptions) -> tuple[Any, float, tuple[str, ...]]:
    """Load a recording: (samples (n, axes) in g, rate_hz, axis names)."""
    path = Path(o.path)
    if not path.exists():
        raise DeviceNotFound(f"replay: no file {path}")
    names: list[str] | None = None
    rate: float | None = None
    suffix = path.suffix.lower()
    if suffix == ".wav":
        x, rate = read_wav(path)
    elif suffix == ".npy":
        x = np.load(path, allow_pickle=False).astype(np.float64)
    elif suffix == ".csv":
        x, names, rate = read_csv(path)
    else:
        raise DriverError(f"replay: {path}: unknown format (use .wav, .npy or .csv)")
    x = x.reshape(len(x), -1) * o.scale
    rate = o.rate_hz or rate
    if rate is None:
        raise DriverError(f"replay: {path}: the file has no sample rate; set rate_hz")
    default = ("x", "y", "z", *(f"ch{i}" for i in range(3, x.shape[1])))
    axes = tuple(o.axes or names or default[: x.shape[1]])
    if len(axes) != x.shape[1] or len(x) == 0:
        raise DriverError(f"replay: {path}: {x.shape[1]} columns, {len(x)} rows, axes {axes}")
    return x, rate, axes


class ReplayDriver:
    """Releases the recording in real time from ``open()``; loops or stops at its end."""

    def __init__(self, options: ReplayOptions, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.o = options
        self.clock = clock
        self.data: Any = None
        self.rate_hz = 0.0
        self.axes: tuple[str, ...] = ()
        self.pos = 0  # samples released so far (may pass len(data) when looping)
        self._t0 = 0.0

    def open(self) -> None:
        self.data, self.rate_hz, self.axes = load(self.o)
        self._t0, self.pos = self.clock(), 0

    def read(self) -> Waveform:
        """The samples due since the previous read (empty once a non-looping file has ended)."""
        if self.data is None:
            raise DriverError("replay: read before open")
        n_total = len(self.data)
        due = int((self.clock() - self._t0) * self.rate_hz)
        if not self.o.loop:
            due = min(due, n_total)
        idx = np.arange(self.pos, max(due, self.pos)) % n_total
        t0_ms = time.time_ns() // 1_000_000
        self.pos = max(due, self.pos)
        return Waveform(self.data[idx], self.rate_hz, self.axes, t0_ms, unit=self.o.unit)

    @property
    def finished(self) -> bool:
        return not self.o.loop and self.data is not None and self.pos >= len(self.data)

    def close(self) -> None:
        self.data = None


def check_options(o: ReplayOptions) -> list[str]:
    """Config checks that need no file access."""
    suffix = Path(o.path).suffix.lower()
    if suffix not in (".wav", ".npy", ".csv"):
        return [f"path: unknown format {suffix!r} (use .wav, .npy or .csv)"]
    if suffix == ".npy" and o.rate_hz is None:
        return ["rate_hz: required for .npy recordings (the file has no rate)"]
    return []


def declared(o: ReplayOptions) -> list[ValueSpec]:
    """One waveform axis each: ``axes``, else named by the recording ("*")."""
    return [ValueSpec(a, DType.FLOAT32, o.unit, "recorded signal (waveform axis)") for a in o.axes or ["*"]]


SPEC = DriverSpec(
    name="replay",
    factory=ReplayDriver,
    options=ReplayOptions,
    provides=frozenset({Capability.WAVEFORM}),
    description="Replay a recorded waveform (.wav, .npy, .csv) in real time, looping or once",
    check=check_options,
    values=declared,
)
