"""The serving side of a Linux IIO buffered device, for the plant simulator (``edge-agent plantsim``).

Lays out what the kernel shows for an accelerometer with a buffer (``iio:deviceN/name``,
``sampling_frequency``, ``in_accel_scale``, ``scan_elements/in_accel_x_{en,index,type}``,
``buffer/{length,enable}``) under a directory of ours, and a named pipe standing in for the
character device ``/dev/iio:deviceN``. Like the kernel it starts filling the buffer when
``buffer/enable`` turns 1 (with the channels enabled and the rate written at that moment), drops
new scans while the buffer (``buffer/length`` scans, pipe included) is full, and stops when
``enable`` turns 0. The agent's ``iio`` driver reads it with ``backend = "hw"``, exactly as on a Pi.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import shutil
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.iio.driver import STANDARD_GRAVITY, Channel, SimChip, parse_type, scan_layout
from edge_agent.drivers.simulation.vibration_model import FaultKind, ModelOptions, VibrationModel

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Python 3.10+ on Linux), spelled out for older stubs


@dataclass(frozen=True)
class ChipSpec:
    """What the kernel driver of a chip shows: name, channels, scan type, scale per LSB."""

    name: str
    kind: str  # accel (scale in m/s^2) or voltage (scale in mV)
    channels: tuple[str, ...]
    scan_type: str
    scale: float
    default_rate_hz: float


CHIPS = {
    SimChip.ADXL345: ChipSpec("adxl345", "accel", ("accel_x", "accel_y", "accel_z"), "le:s13/16>>0", 0.0383, 100.0),
    SimChip.ADXL355: ChipSpec(
        "adxl355", "accel", ("accel_x", "accel_y", "accel_z"), "le:s20/32>>4", 3.82464e-5, 4000.0
    ),
    SimChip.IEPE: ChipSpec(
        "iepe-adc", "voltage", ("voltage0", "voltage1", "voltage2"), "le:s24/32>>8", 5000 / 2**23, 25600.0
    ),
}
IEPE_MV_PER_G = 100.0  # the simulated sensors' sensitivity (set sensitivity_mv_per_g = 100)


def _write(path: Path, text: str) -> None:
    path.write_text(text + "\n")


class SimIioDevice:
    """One simulated IIO device: a sysfs-like directory, a FIFO as its character device, and a
    vibration model feeding it in real time (call :meth:`tick` every few tens of ms)."""

    def __init__(
        self,
        sysfs_dir: Path,
        node: Path,
        chip: SimChip,
        model: ModelOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dir, self.node, self.spec, self.model_options = sysfs_dir, node, CHIPS[chip], model
        self.clock = clock
        self.model: VibrationModel | None = None
        self.model_rate = 0.0
        self.fd: int | None = None
        self.enabled = False
        self.rate_hz = self.spec.default_rate_hz
        self.produced = self.lost = self.written = 0
        self._channels: list[Channel] = []
        self._picks: list[int] = []  # model axis of each enabled channel (-1: timestamp)
        self._offsets: list[int] = []
        self._scan_size = 0
        self._capacity = 0  # bytes the kernel buffer holds
        self._pending = bytearray()
        self._t0 = 0.0
        self._due = 0
        self._enable_mtime = 0

    # -- the tree -------------------------------------------------------------------------------
    def create(self) -> None:
        """Write the sysfs-like tree and make the FIFO (replacing stale ones of an earlier run)."""
        self.remove()
        se = self.dir / "scan_elements"
        se.mkdir(parents=True)
        (self.dir / "buffer").mkdir()
        _write(self.dir / "name", self.spec.name)
        _write(self.dir / "sampling_frequency", f"{self.spec.default_rate_hz:f}")
        _write(self.dir / f"in_{self.spec.kind}_scale", f"{self.spec.scale:.9f}")
        for i, ch in enumerate(self.spec.channels):
            _write(se / f"in_{ch}_en", "0")
            _write(se / f"in_{ch}_index", str(i))
            _write(se / f"in_{ch}_type", self.spec.scan_type)
        for suffix, text in (("en", "0"), ("index", str(len(self.spec.channels))), ("type", "le:s64/64>>0")):
            _write(se / f"in_timestamp_{suffix}", text)
        _write(self.dir / "buffer" / "length", "0")
        _write(self.dir / "buffer" / "enable", "0")
        self.node.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.node)

    def remove(self) -> None:
        """Delete the tree and the FIFO (and stop feeding)."""
        self._stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.node.exists() or self.node.is_symlink():
            self.node.unlink()

    # -- feeding --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Follow ``buffer/enable``; when enabled, generate the scans due by now and write them."""
        enable = self.dir / "buffer" / "enable"
        mtime = enable.stat().st_mtime_ns
        if mtime != self._enable_mtime:  # the agent wrote it: (re)read the configuration
            self._enable_mtime = mtime
            on = enable.read_text().strip() == "1"
            if on and not self.enabled:
                self._start()
            elif not on and self.enabled:
                self._stop()
        if self.enabled:
            self._produce()
            self._flush()

    def _start(self) -> None:
        se = self.dir / "scan_elements"
        names = [*self.spec.channels, "timestamp"]
        on = [n for n in names if (se / f"in_{n}_en").read_text().strip() == "1"]
        if not on:
            raise DriverError(f"iio sim {self.dir.name}: buffer enabled with no channel")
        self._channels = [
            Channel(
                n,
                int((se / f"in_{n}_index").read_text()),
                parse_type((se / f"in_{n}_type").read_text()),
                1.0,
                0.0,
                n.split("_")[0],
            )
            for n in on
        ]
        self._channels.sort(key=lambda c: c.index)
        self._picks = [self.spec.channels.index(c.name) if c.name != "timestamp" else -1 for c in self._channels]
        self._offsets, self._scan_size = scan_layout(self._channels)
        self.rate_hz = float((self.dir / "sampling_frequency").read_text())
        length = int((self.dir / "buffer" / "length").read_text() or 0)
        self._capacity = max(length, 2) * self._scan_size
        if self.model is None or self.model_rate != self.rate_hz:
            self.model = VibrationModel(self.model_options, self.rate_hz, axes=len(self.spec.channels))
            self.model_rate = self.rate_hz
        self._t0, self._due, self.enabled = self.clock(), 0, True
        self._pending.clear()

    def _stop(self) -> None:
        self.enabled = False
        self._pending.clear()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _produce(self) -> None:
        assert self.model is not None
        n = int((self.clock() - self._t0) * self.rate_hz) - self._due
        if n <= 0:
            return
        self._due += n
        self.produced += n
        samples_g = self.model.generate(n)
        fit = max(self._capacity - self._queued() - len(self._pending), 0) // self._scan_size
        if fit < n:  # the buffer is full: like the kernel's kfifo, the newest scans are lost
            self.lost += n - fit
            samples_g = samples_g[:fit]
        if len(samples_g):
            self._pending += self.pack(samples_g)

    def pack(self, samples_g: Any) -> bytes:
        """Scans of the enabled channels (index order, each aligned) from samples in g."""
        n = len(samples_g)
        buf = np.zeros((n, self._scan_size), dtype=np.uint8)
        per_g = STANDARD_GRAVITY / self.spec.scale if self.spec.kind == "accel" else IEPE_MV_PER_G / self.spec.scale
        for ch, pick, off in zip(self._channels, self._picks, self._offsets, strict=True):
            st = ch.type
            size = st.storage_bits // 8
            if pick < 0:
                counts = np.full(n, time.time_ns(), dtype=np.int64)
            else:
                top = (1 << (st.bits - 1)) - 1 if st.signed else (1 << st.bits) - 1
                counts = np.clip(np.rint(samples_g[:, pick] * per_g), -top - 1 if st.signed else 0, top).astype(
                    np.int64
                )
                counts = (counts & ((1 << st.bits) - 1)) << st.shift
            word = counts.astype(f"{'>' if st.big_endian else '<'}u{size}")
            buf[:, off : off + size] = word.view(np.uint8).reshape(n, size)
        return buf.tobytes()

    def _queued(self) -> int:
        """Bytes waiting in the pipe (FIONREAD works on either end)."""
        if self.fd is None:
            return 0
        out = array.array("i", [0])
        fcntl.ioctl(self.fd, termios.FIONREAD, out)
        return out[0]

    def _flush(self) -> None:
        if self.fd is None and not self._open_writer():
            return
        assert self.fd is not None
        try:
            n = os.write(self.fd, self._pending) if self._pending else 0
        except BlockingIOError:
            return
        except BrokenPipeError:  # the reader closed: keep buffering until it is back or disabled
            os.close(self.fd)
            self.fd = None
            return
        self.written += n
        del self._pending[:n]

    def _open_writer(self) -> bool:
        try:
            self.fd = os.open(self.node, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no reader yet
                return False
            raise
        try:  # room for the whole kernel buffer in the pipe where the system allows it
            fcntl.fcntl(self.fd, F_SETPIPE_SZ, min(self._capacity, _pipe_max()))
        except OSError:
            pass
        return True

    # -- control --------------------------------------------------------------------------------
    def set_fault(self, fault: str, fault_g: float, growth_g_per_min: float = 0.0) -> None:
        """Switch the simulated machine's bearing fault (now, or from the next enable)."""
        kind = FaultKind(fault)
        self.model_options.fault, self.model_options.fault_g = kind, fault_g
        self.model_options.fault_growth_g_per_min, self.model_options.fault_start_s = growth_g_per_min, 0.0
        if self.model is not None:
            self.model.set_fault(kind, fault_g, growth_g_per_min)

    def stats(self) -> dict[str, Any]:
        """Counters for the simulator's report: scans produced, lost to a full buffer, written."""
        return {
            "enabled": self.enabled,
            "reader": self.fd is not None,
            "rate_hz": self.rate_hz,
            "produced": self.produced,
            "lost": self.lost,
            "written_b": self.written,
        }


def _pipe_max() -> int:
    try:
        return int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        return 1 << 20
