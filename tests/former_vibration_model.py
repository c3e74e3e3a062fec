"""The vibration model's formulas before the cheaper rewrite (two sines per axis, a convolution on
every block): the oracle of tests/drivers/test_vibration_model.py and the baseline of
bench/adxl345_drain.py."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from edge_agent.drivers.simulation.vibration_model import _GAIN_1X, _GAIN_2X, _GAIN_IMPACT, _PHASE, VibrationModel


class FormerModel(VibrationModel):
    """The formulas before the rewrite: two sines per axis, a convolution on every block."""

    def generate(self, n: int) -> Any:
        t = (self.n_done + np.arange(n)) / self.rate_hz
        out = self._shaft(t) + self.rng.normal(0.0, self.o.noise_g, (n, self.axes))
        out += self._impacts(t)
        self.n_done += n
        return out

    def _shaft(self, t: Any) -> Any:
        w = 2 * math.pi * self.shaft_hz
        cols = []
        for a in range(self.axes):
            g1, g2, ph = _GAIN_1X[a % 3], _GAIN_2X[a % 3], _PHASE[a % 3]
            cols.append(self.o.unbalance_g * g1 * np.sin(w * t + ph) + self.o.misalignment_g * g2 * np.sin(2 * w * t))
        return np.stack(cols, axis=1)

    def _impacts(self, t: Any) -> Any:
        n = len(t)
        train = np.zeros(n)
        for k, idx, amp in self._impact_list(float(t[0]), n):
            train[idx] += amp * self._modulation(k, idx + self.n_done)
        block = np.convolve(train, self._h)
        carry = self._tail
        gains = np.asarray([_GAIN_IMPACT[a % 3] for a in range(self.axes)])
        self._tail = block[n:, None] * gains
        out = block[:n, None] * gains
        m = min(len(carry), n)
        out[:m] += carry[:m]
        if len(carry) > n:
            self._tail[: len(carry) - n] += carry[n:]
        return out
