"""``python -m edge_agent.agent.ops.panel.render CAPTURE.cap OUT.png [ZONE]``: a saved capture drawn by
agent/ops/plots.py (``recording``: per waveform the spectrum and envelope spectrum with the
bearing tones marked, the triggering feature's trend, the recorded values), its time in the
plant's zone (ZONE, default UTC). A child process of
the panel: matplotlib and numpy never load into the panel itself, which stays within its memory
budget."""

from __future__ import annotations

import sys
from pathlib import Path

import msgpack


def main(argv: list[str]) -> int:
    from edge_agent.agent.ops import plots

    src, out = Path(argv[0]), Path(argv[1])
    zone = argv[2] if len(argv) > 2 else "UTC"
    plots.recording(msgpack.unpackb(src.read_bytes(), raw=False), out, time_zone=zone)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
