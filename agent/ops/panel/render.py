"""``python -m edge_agent.agent.ops.panel.render CAPTURE.cap OUT.png``: a saved capture's first
waveform as waveform, spectrum and envelope spectrum with the bearing tones marked
(agent/ops/plots.py). A child process of the panel: matplotlib and numpy never load into the
panel itself, which stays within its memory budget."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgpack


def bearing_hz(doc: dict[str, Any], instance: str) -> dict[str, float]:
    """The bearing tones of the instance at the trigger (its snapshot's ``bearing.<tone>.hz``)."""
    values = (doc.get("snapshot", {}).get(instance) or {}).get("values") or {}
    bearing = values.get("bearing")
    tones: dict[str, Any] = bearing if isinstance(bearing, dict) else {}
    out = {}
    for tone, info in tones.items():
        hz = info.get("hz") if isinstance(info, dict) else None
        if isinstance(hz, (int, float)) and hz > 0:
            out[tone] = float(hz)
    return out


def main(argv: list[str]) -> int:
    from edge_agent.agent.ops import plots

    src, out = Path(argv[0]), Path(argv[1])
    doc = msgpack.unpackb(src.read_bytes(), raw=False)
    waves = [(i, s) for i, s in doc.get("series", {}).items() if s.get("kind") == "waveform"]
    if not waves:
        plots.recording(doc, out)  # values only (a temperature trigger): the recorded series
        return 0
    instance, s = waves[0]
    meta = {"rate_hz": s["rate_hz"], "axes": s["axes"], "bearing_hz": bearing_hz(doc, instance)}
    plots.capture(out, meta, plots.waveform(s))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
