"""ADXL345 3-axis accelerometer over SPI (spidev) or I2C (smbus2), with an emulated-chip sim backend.

Full resolution (3.9 mg/LSB), +-2..16 g, up to 3200 Hz, FIFO in stream mode drained by a driver
thread. ``backend = "sim"`` runs the same register code against :mod:`drivers.adxl345.emulator`
fed by the physical model in :mod:`drivers.vibration_model`. See docs/vibration.md.
"""

from __future__ import annotations

from edge_agent.drivers.adxl345.driver import Adxl345Driver
from edge_agent.drivers.adxl345.options import Adxl345Options, Backend, Bus, check_options
from edge_agent.drivers.contract import Capability, DriverSpec, DType, ValueSpec

SPEC = DriverSpec(
    name="adxl345",
    factory=Adxl345Driver,
    options=Adxl345Options,
    provides=frozenset({Capability.WAVEFORM}),
    description="ADXL345 accelerometer (SPI/I2C, FIFO stream, up to 3200 Hz); backend 'sim' emulates the chip",
    check=check_options,
    values=lambda o: [ValueSpec(a, DType.FLOAT32, "g", f"acceleration, {a} axis (waveform)") for a in "xyz"],
    device_access=lambda o: {str(o.bus)} if o.backend == "hw" else set(),
)

__all__ = ["SPEC", "Adxl345Driver", "Adxl345Options", "Backend", "Bus"]
