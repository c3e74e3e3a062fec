"""Raw waveform capture for ``cmd/capture``: collect contiguous blocks, pack them little-endian."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from edge_agent.drivers.contract import Waveform


class Capture:
    """One pending capture: collects ``n`` contiguous samples from the blocks the plugin reads."""

    def __init__(self, seconds: float, loop: asyncio.AbstractEventLoop) -> None:
        self.seconds = seconds
        self.future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.blocks: list[Waveform] = []
        self.have = 0

    def feed(self, wf: Waveform) -> None:
        """Add one block; a block with lost samples restarts the capture (it must be contiguous)."""
        if self.future.done():
            return
        if wf.lost_samples:
            self.blocks, self.have = [], 0
            return
        self.blocks.append(wf)
        self.have += len(wf.samples)
        need = round(self.seconds * wf.rate_hz)
        if self.have >= need:
            self.future.set_result(pack(self.blocks, need))


def pack(blocks: list[Waveform], n: int) -> dict[str, Any]:
    """Concatenate blocks into the capture answer; int16 when every block has raw counts."""
    first = blocks[0]
    raw = all(b.raw is not None for b in blocks)
    if raw:
        data = np.concatenate([np.asarray(b.raw, dtype="<i2") for b in blocks])[:n]
        dtype, scale = "int16", float(first.scale)
    else:
        data = np.concatenate([np.asarray(b.samples, dtype="<f4") for b in blocks])[:n]
        dtype, scale = "float32", 1.0
    return {
        "rate_hz": float(first.rate_hz),
        "axes": list(first.axes),
        "unit": first.unit,
        "dtype": dtype,
        "scale": scale,
        "n": int(data.shape[0]),
        "t0_ms": int(first.t0_ms),
        "samples": np.ascontiguousarray(data).tobytes(),
    }
