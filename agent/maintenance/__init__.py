"""The technician's duties on the device: calibration, maintenance counters and plans,
alarm-triggered captures and shift reports (docs/maintenance.md), registered at bootstrap as a
driver wrapper (the tap), a publish hook and a service (agent/extensions.py).
May import: agent.messaging, agent.extensions, the contracts. Never runtime/, ops/ or devtools/."""
