"""The technician's duties on the device: calibration, maintenance counters and plans,
alarm-triggered captures and shift reports (docs/maintenance.md), wired into the runtime as a
driver tap and a publisher hook.
May import: agent.messaging, agent.extensions, the contracts. Never runtime/, ops/ or devtools/."""
