"""Replay a recorded waveform from ``.wav``, ``.npy`` or ``.csv`` at its rate, looping or once."""

from edge_agent.drivers.replay.driver import SPEC

__all__ = ["SPEC"]
