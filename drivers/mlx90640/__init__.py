"""Melexis MLX90640 32x24 thermal array over I2C (0x33), with an emulated chip serving a scene.

The calibration is restored from the EEPROM and every frame computed as the datasheet specifies
(:mod:`.calibration`, :mod:`.compute`); ``backend = "sim"`` runs the same register code against
:mod:`.emulator`. See docs/thermal.md.
"""

from __future__ import annotations

from edge_agent.drivers.contract import Capability, DriverSpec, DType, ValueSpec
from edge_agent.drivers.mlx90640.driver import Mlx90640Driver
from edge_agent.drivers.mlx90640.options import Backend, Mlx90640Options, check_options

F32 = DType.FLOAT32

SPEC = DriverSpec(
    name="mlx90640",
    factory=Mlx90640Driver,
    options=Mlx90640Options,
    provides=frozenset({Capability.THERMAL_IMAGE}),
    description="MLX90640 32x24 thermal array (I2C, 0.5-64 Hz subpages); backend 'sim' emulates the chip and a scene",
    check=check_options,
    values=lambda o: [
        ValueSpec("ta_c", F32, "degC", "the sensor's own temperature"),
        ValueSpec("vdd_v", F32, "V", "supply voltage"),
        ValueSpec("max_c", F32, "degC", "hottest pixel"),
        ValueSpec("mean_c", F32, "degC", "mean of the frame"),
        ValueSpec("min_c", F32, "degC", "coldest pixel"),
    ],
    device_access=lambda o: {"i2c"} if o.backend is Backend.HW else set(),
    example={"backend": "sim"},
)

__all__ = ["SPEC", "Backend", "Mlx90640Driver", "Mlx90640Options"]
