"""The technician's duties on the device: calibration, maintenance counters and plans,
alarm-triggered captures and shift reports (docs/maintenance.md)."""
