"""serial_line driver over a real pty pair with an instrument emulator thread, and its sim backend."""

import os
import select
import threading
import time
import tty

import msgspec
import pytest
from edge_agent.drivers.contract import Capability, check_driver_spec
from edge_agent.drivers.errors import CommError, DeviceNotFound, DeviceTimeout, SensorFault
from edge_agent.drivers.serial_line import driver as serial_line
from edge_agent.drivers.serial_line.driver import InstrumentEmulator, SerialLineDriver, SerialLineOptions


class PtyInstrument:
    """Serves an InstrumentEmulator on the master side of a pty; the driver opens the slave."""

    def __init__(self, emulator: InstrumentEmulator, *, stream_every_s: float = 0.0) -> None:
        self.emulator = emulator
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.stream_every_s = stream_every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pty-instrument", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self.master)
        os.close(self._slave)

    def _send(self, chunks):
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(0.05)  # a partial line: the rest arrives in a later read
            os.write(self.master, chunk)

    def _run(self):
        buf = b""
        next_stream = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.01)
            if ready:
                buf += os.read(self.master, 256)
                *lines, buf = serial_line._EOL.split(buf)
                for line in lines:
                    if line:
                        self._send(self.emulator.answer(line))
            if self.stream_every_s and time.monotonic() >= next_stream:
                self._send(self.emulator.answer(b""))
                next_stream = time.monotonic() + self.stream_every_s


def _driver(path, **options):
    o = msgspec.convert({"port": path, "baudrate": 19200, **options}, SerialLineOptions)
    drv = SerialLineDriver(o)
    drv.open()
    return drv


def _emulator(template="+{t:.2f}\r\n", request="#01", values=None):
    return InstrumentEmulator(template, lambda: dict(values or {"t": 61.25}), request)


@pytest.mark.slow
def test_request_response_over_pty():
    emu = _emulator()
    with PtyInstrument(emu) as inst:
        drv = _driver(inst.path, request="#01\r", response_regex=r"^(?P<t>[-+]?\d+\.\d+)$")
        try:
            reading = drv.read()
            assert reading.channels["t"].temperature_c == 61.25
            assert reading.values == {"t": 61.25}
            assert emu.requests == 1
        finally:
            drv.close()
            drv.close()


@pytest.mark.slow
def test_garbage_lines_are_skipped():
    emu = _emulator()
    emu.mode = "garbage"
    with PtyInstrument(emu) as inst:
        drv = _driver(inst.path, request="#01\r", response_regex=r"^(?P<t>[-+]?\d+\.\d+)$")
        try:
            assert drv.read().channels["t"].temperature_c == 61.25
            assert drv.garbage_lines == 1
        finally:
            drv.close()


@pytest.mark.slow
def test_partial_line_is_reassembled():
    emu = _emulator()
    emu.mode = "partial"
    with PtyInstrument(emu) as inst:
        drv = _driver(inst.path, request="#01\r", response_regex=r"^(?P<t>[-+]?\d+\.\d+)$")
        try:
            assert drv.read().channels["t"].temperature_c == 61.25
        finally:
            drv.close()


@pytest.mark.slow
def test_silent_instrument_times_out_then_recovers():
    emu = _emulator()
    emu.mode = "silent"
    with PtyInstrument(emu) as inst:
        drv = _driver(inst.path, request="#01\r", timeout_s=0.3)
        try:
            with pytest.raises(DeviceTimeout, match="no matching line"):
                drv.read()
            emu.mode = "ok"
            assert drv.read().channels["t"].temperature_c == 61.25
        finally:
            drv.close()


@pytest.mark.slow
def test_wrong_address_gets_no_answer():
    emu = _emulator(request="#02")
    with PtyInstrument(emu) as inst:
        drv = _driver(inst.path, request="#01\r", timeout_s=0.2)
        try:
            with pytest.raises(DeviceTimeout):
                drv.read()
        finally:
            drv.close()


@pytest.mark.slow
def test_streaming_instrument_two_channels_in_fahrenheit():
    emu = _emulator("T1=+{t1:.1f}F T2=+{t2:.1f}F\n", request="", values={"t1": 212.0, "t2": 32.0})
    with PtyInstrument(emu, stream_every_s=0.05) as inst:
        regex = r"T1=(?P<t1>[-+]?[\d.]+)F T2=(?P<t2>[-+]?[\d.]+)F"
        drv = _driver(inst.path, response_regex=regex, unit="F")
        try:
            reading = drv.read()
            assert reading.channels["t1"].temperature_c == pytest.approx(100.0)
            assert reading.channels["t2"].temperature_c == pytest.approx(0.0)
        finally:
            drv.close()


@pytest.mark.slow
def test_transmitter_scale_offset_and_kelvin():
    # A transmitter sending tenths of a kelvin: 3731 -> 373.1 K -> 99.95 degC
    emu = _emulator("{t:.0f}\r", values={"t": 3731})
    with PtyInstrument(emu) as inst:
        drv = _driver(inst.path, request="#01\r", response_regex=r"(?P<t>\d+)", unit="K", scale=0.1)
        try:
            assert drv.read().channels["t"].temperature_c == pytest.approx(99.95)
        finally:
            drv.close()


def test_missing_port_is_device_not_found():
    drv = SerialLineDriver(msgspec.convert({"port": "/dev/nonexistent-tty"}, SerialLineOptions))
    with pytest.raises(DeviceNotFound):
        drv.open()
    drv.close()


def test_sim_backend_answers_from_the_thermal_model():
    now = [0.0]
    o = msgspec.convert(
        {"backend": "sim", "request": "#01\r", "sim": {"profile": "bearing", "start_c": 40, "ramp_c_per_min": 6,
                                                       "noise_c": 0}},
        SerialLineOptions,
    )  # fmt: skip
    drv = SerialLineDriver(o, clock=lambda: now[0])
    drv.open()
    assert drv.read().channels["t"].temperature_c == 40.0
    now[0] = 50.0
    assert drv.read().channels["t"].temperature_c == 45.0
    drv.close()


def test_sim_fault_is_a_timeout():
    o = msgspec.convert({"backend": "sim", "sim": {"fault": "open_circuit"}}, SerialLineOptions)
    drv = SerialLineDriver(o)
    drv.open()
    with pytest.raises(DeviceTimeout):
        drv.read()


def test_spec_and_checks():
    spec = check_driver_spec(serial_line.SPEC, "serial_line")
    assert {Capability.TEMPERATURE, Capability.VALUES} <= spec.provides
    check = spec.check

    def errors(**kw):
        return check(msgspec.convert(kw, SerialLineOptions))

    assert errors() == []
    assert "invalid regular expression" in errors(response_regex="(")[0]
    assert "named group" in errors(response_regex=r"\d+")[0]
    assert "sim_response" in errors(backend="sim", response_regex=r"(?P<x>\d+)")[0]


@pytest.mark.slow
def test_port_error_becomes_comm_error():
    emu = _emulator()
    with PtyInstrument(emu) as inst:
        drv = _driver(inst.path, request="#01\r")
        os.close(drv.port.fd)  # the adapter disappears under the driver
        with pytest.raises(CommError):
            drv.read()
        drv.port.fd = None
        drv.close()


@pytest.mark.slow
def test_a_matched_line_that_is_not_a_number_is_a_sensor_fault():
    """The instrument answered ("----": sensor open/over range): a sensor fault, not a comm error."""
    with PtyInstrument(_emulator(template="{t}\r\n", values={"t": "----"})) as inst:
        drv = _driver(inst.path, request="#01\r", response_regex=r"^(?P<t>\S+)$")
        with pytest.raises(SensorFault, match="sent 't' = '----', not a number") as info:
            drv.read()
        assert info.value.quality == "bad"
        drv.close()
