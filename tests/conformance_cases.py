"""The options that run each built-in driver and plugin on its simulated backend, for the kit.

A built-in missing here fails tests/drivers/test_conformance.py: every built-in is checked.
"""

from __future__ import annotations

from typing import Any

_TC = [{"name": "bearing_de", "device": "/dev/spidev0.0"}, {"name": "motor", "device": "/dev/spidev0.1"}]

# name -> (options of the simulated backend, options whose open() must fail or None when open
# never fails by design)
DRIVERS: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "sim": ({"channels": 3}, {"fail_open": True}),
    "adxl345": ({"backend": "sim"}, {"backend": "hw", "device": "/dev/spidev99.9"}),
    # 100 Hz: the kit's two back-to-back reads find no sample due (an empty block, not an error)
    "iio": ({"backend": "sim", "rate_hz": 100}, {"backend": "hw", "device": "no-such-iio-device"}),
    "replay": ({"path": "REPLAY_CSV", "rate_hz": 100.0}, {"path": "/nonexistent/replay.csv", "rate_hz": 100.0}),
    "max31855": ({"backend": "sim", "channels": _TC}, {"backend": "hw", "channels": _TC}),
    "max31856": ({"backend": "sim", "channels": _TC}, {"backend": "hw", "channels": _TC}),
    "max31865": ({"backend": "sim", "channels": _TC}, {"backend": "hw", "channels": _TC}),
    "mlx90640": ({"backend": "sim", "refresh_hz": 64}, {"backend": "hw", "device": "/dev/i2c-99"}),
    "serial_line": ({"backend": "sim"}, {"backend": "hw", "port": "/dev/ttyNONEXISTENT"}),
    # a PLC that is down at open is retried by read (quality comm_error): open never fails
    "modbus": ({"backend": "sim", "layout": "reference"}, None),
    "gpio": (
        {"backend": "sim", "inputs": [{"name": "shaft", "pin": 5, "kind": "tachometer", "sim_hz": 20}]},
        {"backend": "hw", "pin_factory": "native", "inputs": [{"name": "shaft", "pin": 5}]},
    ),
}

# name -> (plugin options, driver type or None, driver options)
PLUGINS: dict[str, tuple[dict[str, Any], str | None, dict[str, Any]]] = {
    "system": ({}, None, {}),
    "values": ({"heartbeat_s": 0}, "sim", {"channels": 2}),
    "vibration": ({}, "iio", {"backend": "sim", "rate_hz": 3200}),
    "temperature": ({}, "max31855", {"backend": "sim", "channels": _TC}),
    "thermal": (
        {"regions": [{"name": "motor_de", "rect": [18, 9, 7, 7]}, {"name": "housing", "rect": [5, 8, 12, 10]}]},
        "mlx90640",
        {"backend": "sim", "refresh_hz": 64},
    ),
    "plc": ({}, "modbus", {"backend": "sim", "layout": "reference"}),
    "production": (
        {"total_count": {"instance": "gpio", "key": "part_count"}, "ideal_cycle_time_s": 2.0},
        None,
        {},
    ),
    "gpio": ({}, "gpio", {"backend": "sim", "inputs": [{"name": "parts", "pin": 6, "kind": "counter", "sim_hz": 5}]}),
    "maintenance": (
        {
            "assets": [
                {
                    "name": "pump1",
                    "run": {"instance": "gpio", "key": "shaft_rpm", "above": 100},
                    "parts": {"instance": "gpio", "key": "part_count"},
                    "plans": [{"id": "grease", "task": "Grease the bearings", "every_hours": 500, "every_parts": 9}],
                }
            ]
        },
        None,
        {},
    ),
    "recorder": ({"rules": [{"name": "bearing", "event": "bearing_fault", "match": {"active": True}}]}, None, {}),
}


def with_files(options: dict[str, Any], replay_csv: str) -> dict[str, Any]:
    """Put a real file path where a case names REPLAY_CSV."""
    return {k: (replay_csv if v == "REPLAY_CSV" else v) for k, v in options.items()}
