"""IIO buffered-device driver against a fake sysfs tree and a named pipe as /dev/iio:deviceN."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from edge_agent.drivers.contract import check_driver_spec
from edge_agent.drivers.errors import DeviceNotFound, DriverError
from edge_agent.drivers.iio.driver import SPEC, IioDriver, IioOptions, decode, parse_type, scan_layout
from edge_agent.drivers.iio.driver import Channel as IioChannel

SCALE_M_S2 = 0.0000382464  # ADXL355 +-2 g: 3.9 ug/LSB in m/s^2


def test_spec_is_valid() -> None:
    check_driver_spec(SPEC, "edge_agent.drivers.iio.driver:SPEC")


def test_parse_type() -> None:
    st = parse_type("le:s20/32>>4")
    assert (st.big_endian, st.signed, st.bits, st.storage_bits, st.shift, st.repeat) == (False, True, 20, 32, 4, 1)
    assert parse_type("be:u12/16>>4").big_endian and parse_type("le:s16/16X2>>0").nbytes == 4
    for bad in ("le:s20/24>>0", "xx:s16/16>>0", "le:s40/32>>0"):
        with pytest.raises(DriverError):
            parse_type(bad)


def test_decode_shift_mask_sign() -> None:
    st = parse_type("le:s20/32>>4")
    words = np.array([(-1 & 0xFFFFF) << 4 | 0xF, 5 << 4, (1 << 19) << 4, ((1 << 19) - 1) << 4], dtype=np.uint32)
    assert decode(words, st).tolist() == [-1, 5, -(1 << 19), (1 << 19) - 1]
    assert decode(np.array([0xFFF0], dtype=np.uint16), parse_type("be:u12/16>>4")).tolist() == [4095]


def test_scan_layout_aligns_each_element() -> None:
    chans = [
        IioChannel("voltage0", 0, parse_type("le:s16/16>>0"), 1.0, 0.0, "voltage"),
        IioChannel("voltage1", 1, parse_type("le:s32/32>>0"), 1.0, 0.0, "voltage"),
        IioChannel("voltage2", 2, parse_type("le:s16/16>>0"), 1.0, 0.0, "voltage"),
    ]
    assert scan_layout(chans) == ([0, 4, 8], 12)


def fake_device(
    root: Path, dev_dir: Path, *, name: str = "adxl355", kind: str = "accel", scan_type: str = "le:s20/32>>4"
) -> Path:
    dev = root / "iio:device3"
    (dev / "scan_elements").mkdir(parents=True)
    (dev / "buffer").mkdir()
    (dev / "name").write_text(name + "\n")
    (dev / "sampling_frequency").write_text("4000.000000\n")
    (dev / f"in_{kind}_scale").write_text(f"{SCALE_M_S2}\n")
    for i, ax in enumerate("xyz"):
        ch = f"in_{kind}_{ax}"
        (dev / "scan_elements" / f"{ch}_en").write_text("0\n")
        (dev / "scan_elements" / f"{ch}_index").write_text(f"{i}\n")
        (dev / "scan_elements" / f"{ch}_type").write_text(f"{scan_type}\n")
    if kind == "accel" and scan_type.endswith("/32>>4"):
        (dev / "in_accel_z_offset").write_text("100\n")
    for f in ("in_timestamp_en", "in_timestamp_index", "in_timestamp_type"):
        (dev / "scan_elements" / f).write_text({"en": "1", "ex": "3", "pe": "le:s64/64>>0"}[f[-2:]] + "\n")
    (dev / "buffer" / "enable").write_text("0\n")
    (dev / "buffer" / "length").write_text("0\n")
    dev_dir.mkdir(exist_ok=True)
    os.mkfifo(dev_dir / "iio:device3")
    return dev


def scans(counts: np.ndarray) -> bytes:
    return b"".join(struct.pack("<3i", *((int(c) & 0xFFFFF) << 4 for c in row)) for row in counts)


def make(tmp_path: Path, **opts: Any) -> tuple[IioDriver, Path]:
    kind, scan_type = opts.pop("kind", "accel"), opts.pop("scan_type", "le:s20/32>>4")
    dev = fake_device(tmp_path / "sys", tmp_path / "dev", kind=kind, scan_type=scan_type)
    o = {"device": "adxl355", "sysfs_root": str(tmp_path / "sys"), "dev_dir": str(tmp_path / "dev"), **opts}
    return IioDriver(msgspec.convert(o, IioOptions)), dev


def test_reads_scans_from_the_pipe(tmp_path: Path) -> None:
    drv, dev = make(tmp_path, rate_hz=8000, buffer_s=1.0)
    drv.open()
    writer = os.open(tmp_path / "dev" / "iio:device3", os.O_WRONLY)
    try:
        assert (dev / "scan_elements" / "in_accel_x_en").read_text() == "1"
        assert (dev / "scan_elements" / "in_timestamp_en").read_text() == "0"
        assert (dev / "sampling_frequency").read_text() == "8000"
        assert (dev / "buffer" / "length").read_text() == "8000"
        assert (dev / "buffer" / "enable").read_text() == "1"
        counts = np.array([[256410, -256410, 0], [1, -1, 2], [-524288, 524287, 7]])
        data = scans(counts)
        os.write(writer, data[:20])  # a partial scan stays for the next read
        first = drv.read()
        os.write(writer, data[20:])
        second = drv.read()
    finally:
        os.close(writer)
        drv.close()
    assert len(first.samples) == 1 and len(second.samples) == 2
    g = np.concatenate([first.samples, second.samples])
    expected = counts * SCALE_M_S2 / 9.80665
    expected[:, 2] = (counts[:, 2] + 100) * SCALE_M_S2 / 9.80665  # z has an offset
    assert np.allclose(g, expected, rtol=1e-6, atol=1e-9)
    assert g[0, 0] == pytest.approx(1.0, rel=1e-3)
    assert second.axes == ("x", "y", "z") and second.rate_hz == 8000.0 and second.unit == "g"
    assert (dev / "buffer" / "enable").read_text() == "0"


def test_16_bit_counts_come_with_the_samples_for_captures(tmp_path: Path) -> None:
    """An ADXL345-style device (signed 16-bit storage, one scale, no offset): each block carries its
    int16 counts and the scale (what the capture rings keep: half of float32); a 20-in-32-bit
    device with an offset (above) carries none."""
    drv, _ = make(tmp_path, rate_hz=3200, scan_type="le:s13/16>>0")
    drv.open()
    writer = os.open(tmp_path / "dev" / "iio:device3", os.O_WRONLY)
    try:
        counts = np.array([[256, -256, 4095], [1, -1, -4096]])
        os.write(writer, b"".join(struct.pack("<3h", *(int(c) for c in row)) for row in counts))
        wf = drv.read()
    finally:
        os.close(writer)
        drv.close()
    assert wf.raw is not None and wf.raw.dtype == np.int16 and np.array_equal(wf.raw, counts)
    assert wf.scale == pytest.approx(SCALE_M_S2 / 9.80665)
    assert np.allclose(wf.raw * wf.scale, wf.samples, rtol=1e-6)
    wide, _ = make(tmp_path / "wide", rate_hz=3200)
    wide.open()
    try:
        assert wide.read().raw is None
    finally:
        wide.close()


def test_rate_from_device_and_channel_subset(tmp_path: Path) -> None:
    drv, dev = make(tmp_path, channels=["accel_z"], axes=["axial"])
    drv.open()
    drv.close()
    assert drv.rate_hz == 4000.0 and drv.axes == ("axial",)
    assert (dev / "scan_elements" / "in_accel_x_en").read_text() == "0"


def test_voltage_channels_need_a_sensitivity(tmp_path: Path) -> None:
    drv, _ = make(tmp_path, kind="voltage")
    with pytest.raises(DriverError, match="sensitivity_mv_per_g"):
        drv.open()


def test_missing_device(tmp_path: Path) -> None:
    (tmp_path / "sys").mkdir()
    o = msgspec.convert({"device": "nope", "sysfs_root": str(tmp_path / "sys")}, IioOptions)
    with pytest.raises(DeviceNotFound):
        IioDriver(o).open()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sim_backend_at_25600_hz() -> None:
    clock = Clock()
    o = msgspec.convert({"backend": "sim", "rate_hz": 25600, "buffer_s": 2.0}, IioOptions)
    drv = IioDriver(o, clock=clock)
    drv.open()
    clock.now = 1.0
    wf = drv.read()
    assert wf.samples.shape == (25600, 3) and wf.lost_samples == 0 and wf.rate_hz == 25600.0
    clock.now = 6.0  # nobody read for 5 s: the 2 s buffer overflowed
    wf = drv.read()
    assert len(wf.samples) == 51200 and wf.lost_samples == 76800
    drv.set_fault("outer", 0.2)
    assert drv.model is not None and drv.model.fault == "outer"


@pytest.mark.parametrize(
    "text",
    [
        "le:s13/16>>0",
        "le:s20/32>>4",
        "le:s24/32>>8",
        "be:s12/16>>4",
        "be:u12/16>>4",
        "le:u16/16>>0",
        "le:s64/64>>0",
        "le:s8/8>>0",
    ],
)
def test_decode_native_equals_the_generic_decoding(text: str) -> None:
    """The fast path (storage-sized integers) gives the same counts as the int64 reference."""
    from edge_agent.drivers.iio.driver import decode_native

    st = parse_type(text)
    rng = np.random.default_rng(7)
    dtype = f"{'>' if st.big_endian else '<'}u{st.storage_bits // 8}"
    words = rng.integers(0, 2**st.storage_bits - 1, size=2000, dtype=np.uint64, endpoint=True).astype(dtype)
    assert decode_native(words, st).tolist() == decode(words, st).tolist()
