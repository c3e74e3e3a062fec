"""Linux IIO buffered devices: the generic path for high-rate sensors with a kernel driver.

Reads ``/sys/bus/iio/devices/iio:deviceN`` (scan elements with their type strings such as
``le:s20/32>>4``, ``_index``, per-channel or shared ``_scale`` and ``_offset``, the sampling
frequency), enables the buffer and decodes whole scans from ``/dev/iio:deviceN``. Accelerometer
channels (m/s^2 after scaling) are returned in g; voltage channels (mV, e.g. an IEPE front end) are
divided by ``sensitivity_mv_per_g``. ``backend = "sim"`` generates the same Waveform blocks from
:mod:`drivers.vibration_model` at any rate (the reference plant's 25.6 kHz accelerometer).
"""

from __future__ import annotations

import enum
import errno
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
import numpy as np
from edge_agent.drivers.contract import Capability, DriverSpec, DType, Options, ValueSpec, Waveform
from edge_agent.drivers.errors import CommError, DeviceNotFound, DriverError
from edge_agent.drivers.simulation.vibration_model import FaultKind, ModelOptions, VibrationModel

STANDARD_GRAVITY = 9.80665
_TYPE_RE = re.compile(r"^(be|le):([su])(\d+)/(\d+)(?:X(\d+))?>>(\d+)$")


class Backend(enum.StrEnum):
    HW = "hw"
    SIM = "sim"


class SimChip(enum.StrEnum):
    """What ``edge-agent plantsim`` emulates at a device's path (the agent itself ignores it)."""

    ADXL345 = "adxl345"  # the kernel's adxl345 driver: 13-bit full resolution, 3.9 mg/LSB
    ADXL355 = "adxl355"  # 20-bit, +-2 g
    IEPE = "iepe"  # a 24-bit ADC behind an IEPE front end: voltage channels, 100 mV/g sensors


class IioOptions(Options):
    backend: Backend = Backend.HW
    device: str = "iio:device0"  # directory under sysfs_root, or the device's `name`
    sysfs_root: str = "/sys/bus/iio/devices"
    dev_dir: str = "/dev"
    channels: list[str] | None = None  # e.g. ["accel_x", "accel_y"]; default: all but timestamp
    axes: list[str] | None = None  # names in the Waveform; default from channels (accel_x -> x)
    rate_hz: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] | None = None  # None: keep the device's
    buffer_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0  # kernel buffer length
    sensitivity_mv_per_g: Annotated[float, msgspec.Meta(gt=0)] | None = None  # voltage channels
    sim_axes: Annotated[int, msgspec.Meta(ge=1, le=8)] = 3
    sim: ModelOptions = msgspec.field(default_factory=ModelOptions)  # backend sim, or plantsim's model
    sim_chip: SimChip = SimChip.ADXL345  # plantsim only


@dataclass(frozen=True, slots=True)
class ScanType:
    """A parsed scan element type string, e.g. ``le:s20/32>>4``."""

    big_endian: bool
    signed: bool
    bits: int
    storage_bits: int
    repeat: int
    shift: int

    @property
    def nbytes(self) -> int:
        return self.storage_bits // 8 * self.repeat


def parse_type(text: str) -> ScanType:
    """Parse ``[be|le]:[s|u]bits/storagebits[Xrepeat]>>shift``."""
    m = _TYPE_RE.match(text.strip())
    if not m:
        raise DriverError(f"iio: cannot parse scan element type {text!r}")
    e, s, bits, storage, rep, shift = m.groups()
    st = ScanType(e == "be", s == "s", int(bits), int(storage), int(rep or 1), int(shift))
    if st.storage_bits not in (8, 16, 32, 64) or not 0 < st.bits <= st.storage_bits:
        raise DriverError(f"iio: unsupported scan element type {text!r}")
    return st


def decode(raw: Any, st: ScanType) -> Any:
    """Storage words -> signed/unsigned integers: shift, mask to ``bits``, sign-extend."""
    v = raw.astype(np.int64) if st.storage_bits < 64 else raw.view(np.int64)
    v = (v >> st.shift) & ((1 << st.bits) - 1) if st.bits < 64 else v
    if st.signed and st.bits < 64:
        v = np.where(v >= 1 << (st.bits - 1), v - (1 << st.bits), v)
    return v


def decode_native(word: Any, st: ScanType) -> Any:
    """The same as :func:`decode` in the storage's own integer size: shifts in a signed type
    sign-extend by themselves, so no int64 copy and no ``where``."""
    size = st.storage_bits // 8
    v = word.astype(f"{'i' if st.signed else 'u'}{size}")  # native byte order, one pass
    if st.signed:
        left = st.storage_bits - st.bits - st.shift
        if left:
            v <<= left
        if left + st.shift:
            v >>= left + st.shift
    else:
        if st.shift:
            v >>= st.shift
        if st.bits < st.storage_bits:
            v &= (1 << st.bits) - 1
    return v


@dataclass(frozen=True)
class Channel:
    name: str  # e.g. accel_x
    index: int
    type: ScanType
    scale: float
    offset: float
    kind: str  # accel, voltage, ...


def _read(path: Path) -> str:
    return path.read_text().strip()


def _attr(dev: Path, names: list[str]) -> str | None:
    for n in names:
        p = dev / n
        if p.exists():
            return _read(p)
    return None


def find_device(root: Path, device: str) -> Path:
    """The sysfs directory of ``device`` (a directory name or the device's ``name``)."""
    if (root / device).is_dir():
        return root / device
    for d in sorted(root.glob("iio:device*")):
        if (d / "name").exists() and _read(d / "name") == device:
            return d
    raise DeviceNotFound(f"iio: no device {device!r} under {root}")


def _channel(dev: Path, name: str) -> Channel:
    se = dev / "scan_elements"
    kind = name.split("_")[0].rstrip("0123456789")  # accel_x -> accel, voltage0 -> voltage (kernel names)
    scale = _attr(dev, [f"in_{name}_scale", f"in_{kind}_scale"])
    offset = _attr(dev, [f"in_{name}_offset", f"in_{kind}_offset"])
    return Channel(
        name=name,
        index=int(_read(se / f"in_{name}_index")),
        type=parse_type(_read(se / f"in_{name}_type")),
        scale=float(scale) if scale else 1.0,
        offset=float(offset) if offset else 0.0,
        kind=kind,
    )


def scan_channels(dev: Path) -> list[str]:
    """Names of the scan elements (``in_accel_x_en`` -> ``accel_x``), timestamp excluded."""
    names = [p.name[3:-3] for p in (dev / "scan_elements").glob("in_*_en")]
    return sorted(n for n in names if n != "timestamp")


def scan_layout(channels: list[Channel]) -> tuple[list[int], int]:
    """Byte offset of each channel (in index order, each aligned to its size) and the scan size."""
    offsets, pos, align = [], 0, 1
    for ch in sorted(channels, key=lambda c: c.index):
        size = ch.type.storage_bits // 8
        pos = (pos + size - 1) // size * size
        offsets.append(pos)
        pos += ch.type.nbytes
        align = max(align, size)
    return offsets, (pos + align - 1) // align * align


class IioDriver:
    """One IIO buffered device; ``read()`` returns the whole scans buffered since the last read."""

    def __init__(self, options: IioOptions, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.o = options
        self.clock = clock
        self.dev: Path | None = None
        self.channels: list[Channel] = []
        self.fd: int | None = None
        self.rate_hz = options.rate_hz or 25600.0
        self.axes: tuple[str, ...] = ()
        self._rest = b""
        self._scan_size = 0
        self._offsets: list[int] = []
        self._raw_scale: float | None = None  # g per count when every channel has 16-bit counts of one scale
        self.model: VibrationModel | None = None
        self._t0 = 0.0
        self._made = 0

    def open(self) -> None:
        """Configure and enable the buffer (hw) or start the model clock (sim)."""
        if self.o.backend is Backend.SIM:
            self.model = VibrationModel(self.o.sim, self.rate_hz, axes=self.o.sim_axes)
            self.axes = tuple(self.o.axes or ("x", "y", "z", "a", "b", "c", "d", "e")[: self.o.sim_axes])
            self._t0, self._made = self.clock(), 0
            return
        self.dev = find_device(Path(self.o.sysfs_root), self.o.device)
        names = self.o.channels or scan_channels(self.dev)
        try:
            self.channels = sorted((_channel(self.dev, n) for n in names), key=lambda c: c.index)
        except FileNotFoundError as exc:
            raise DeviceNotFound(f"iio {self.dev.name}: missing attribute {exc.filename}") from exc
        self._check_units()
        self.axes = tuple(self.o.axes or [c.name.split("_")[-1] for c in self.channels])
        self._offsets, self._scan_size = scan_layout(self.channels)
        self._raw_scale = self._common_scale()
        self._configure(self.dev, names)
        self.fd = self._open_node(self.dev.name)

    def _check_units(self) -> None:
        for ch in self.channels:
            if ch.kind == "voltage" and self.o.sensitivity_mv_per_g is None:
                raise DriverError(f"iio: channel {ch.name} is a voltage: set sensitivity_mv_per_g")
            if ch.kind not in ("accel", "voltage"):
                raise DriverError(f"iio: channel {ch.name}: only accel and voltage channels are supported")

    def _configure(self, dev: Path, names: list[str]) -> None:
        for p in (dev / "scan_elements").glob("in_*_en"):
            p.write_text("1" if p.name[3:-3] in names else "0")
        kind = self.channels[0].kind
        freq_files = [dev / "sampling_frequency", dev / f"in_{kind}_sampling_frequency"]
        freq = next((f for f in freq_files if f.exists()), None)
        if self.o.rate_hz is not None and freq is not None:
            freq.write_text(f"{self.o.rate_hz:g}")
        if freq is None:
            if self.o.rate_hz is None:
                raise DriverError(f"iio {dev.name}: no sampling_frequency attribute; set rate_hz")
        else:
            self.rate_hz = float(_read(freq))
        (dev / "buffer" / "length").write_text(str(max(int(self.rate_hz * self.o.buffer_s), 2)))
        (dev / "buffer" / "enable").write_text("1")

    def _open_node(self, name: str) -> int:
        path = os.path.join(self.o.dev_dir, name)
        try:
            return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise DeviceNotFound(f"iio: cannot open {path}: {exc}") from exc

    def _drain(self) -> bytes:
        assert self.fd is not None
        parts = [self._rest]
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break
                raise CommError(f"iio: read failed: {exc}") from exc
            if not chunk:
                break
            parts.append(chunk)
        data = b"".join(parts)
        whole = len(data) // self._scan_size * self._scan_size
        self._rest = data[whole:]
        return data[:whole]

    def _gain(self, ch: Channel) -> float:
        """g per count of one channel (a voltage channel through the sensor's sensitivity)."""
        per = STANDARD_GRAVITY if ch.kind == "accel" else (self.o.sensitivity_mv_per_g or 1.0)
        return float(ch.scale / per)

    def _common_scale(self) -> float | None:
        """g per count when every channel stores signed 16-bit counts with one scale and no offset:
        the blocks then also carry their counts (``Waveform.raw``), which is what the capture rings
        keep (half the memory of float32: the reference plant's 36-s ring of pump1-de, 1.4 -> 0.7 MB)
        and what a capture stores, as for the ADXL345 driver."""
        gains = {self._gain(ch) for ch in self.channels}
        fits = all(ch.type.signed and ch.type.storage_bits == 16 and not ch.offset for ch in self.channels)
        return gains.pop() if fits and len(gains) == 1 else None

    def _to_g(self, data: bytes) -> tuple[Any, Any]:
        """Scans -> (float32 samples in g, int16 counts or None): one strided view per channel (no
        copy of the scans), the integer decoding in the storage type (no int64), scale and offset
        folded into one multiply-add. (A 25.6 kHz 3-channel second: 7.8 -> about 1 ms against the
        generic int64 decoding.)"""
        n = len(data) // self._scan_size
        out = np.empty((n, len(self.channels)), dtype=np.float32)
        raw = np.empty((n, len(self.channels)), dtype=np.int16) if self._raw_scale is not None else None
        if n == 0:  # nothing new (a view at an offset into an empty buffer is refused)
            return out, raw
        for i, (ch, off) in enumerate(zip(self.channels, self._offsets, strict=True)):
            st = ch.type
            size = st.storage_bits // 8
            word = np.ndarray(
                (n,),
                dtype=f"{'>' if st.big_endian else '<'}u{size}",
                buffer=data,
                offset=off,
                strides=(self._scan_size,),
            )
            counts = decode_native(word, st)
            gain = self._gain(ch)
            col = out[:, i]
            np.multiply(counts, np.float32(gain), out=col, casting="unsafe")
            if ch.offset:
                col += np.float32(ch.offset * gain)
            if raw is not None:
                raw[:, i] = counts
        return out, raw

    def read(self) -> Waveform:
        """Whole scans available now, in g."""
        t0_ms = time.time_ns() // 1_000_000
        if self.model is not None:
            due = max(int((self.clock() - self._t0) * self.rate_hz) - self._made, 0)
            lost = max(due - int(self.o.buffer_s * self.rate_hz), 0)  # the kernel buffer overflowed
            self._made += due
            self.model.skip(lost)
            samples = self.model.generate(due - lost).astype(np.float32)
            return Waveform(samples, self.rate_hz, self.axes, t0_ms, unit="g", lost_samples=lost)
        elif self.fd is not None:
            samples, raw = self._to_g(self._drain())
        else:
            raise DriverError("iio: read before open")
        scale = self._raw_scale if raw is not None else 1.0
        return Waveform(samples, self.rate_hz, self.axes, t0_ms, unit="g", raw=raw, scale=scale or 1.0)

    def close(self) -> None:
        """Disable the buffer and close the node; safe twice."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.dev is not None:
            try:
                (self.dev / "buffer" / "enable").write_text("0")
            except OSError:
                pass
            self.dev = None

    def set_fault(self, fault: str, fault_g: float, growth_g_per_min: float = 0.0) -> None:
        """Switch the simulated machine's bearing fault (sim backend only)."""
        if self.model is None:
            raise DriverError("iio: set_fault needs backend = 'sim'")
        self.model.set_fault(FaultKind(fault), fault_g, growth_g_per_min)


def declared(o: IioOptions) -> list[ValueSpec]:
    """One waveform axis each, named like the driver names them ("*": known only from the device)."""
    if o.axes:
        axes = list(o.axes)
    elif o.channels:
        axes = [c.split("_")[-1] for c in o.channels]
    elif o.backend is Backend.SIM:
        axes = list(("x", "y", "z", "a", "b", "c", "d", "e")[: o.sim_axes])
    else:
        axes = ["*"]
    return [ValueSpec(a, DType.FLOAT32, "g", "acceleration (waveform axis)") for a in axes]


SPEC = DriverSpec(
    name="iio",
    factory=IioDriver,
    options=IioOptions,
    provides=frozenset({Capability.WAVEFORM}),
    description="Linux IIO buffered device (ADXL355/357, IEPE ADC front ends); backend 'sim' at any rate",
    values=declared,
)
