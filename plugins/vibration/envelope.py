"""Envelope analysis and bearing tone evaluation: pure numpy, no I/O.

The envelope is the magnitude of the analytic signal of the band-passed window. It is computed from
the window's existing rfft: the band's bins are moved to baseband and inverse-transformed with a
short complex FFT (the magnitude of an analytic signal does not change with a frequency shift), so
the cost is set by the band width, not the sample rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from plugins.vibration.features import Array, Spectrum


@dataclass(frozen=True, slots=True)
class EnvelopeSpectrum:
    """Envelope amplitude spectrum (g, peak), axes x bins, with the same bin width as the window."""

    amp_g: Array
    df_hz: float


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT sizes)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def envelope_spectrum(sp: Spectrum, lo_hz: float, hi_hz: float, max_env_hz: float = 1000.0) -> EnvelopeSpectrum:
    """Envelope spectrum of the band [lo_hz, hi_hz] per axis, up to at least ``max_env_hz``."""
    k0 = max(sp.bin(lo_hz), 1)
    k1 = min(sp.bin(hi_hz), sp.X.shape[1] - 1)
    band = k1 - k0 + 1
    m = _fast_len(max(band, math.ceil(2 * max_env_hz / sp.df_hz) + 2))
    z: npt.NDArray[np.complex128] = np.zeros((sp.X.shape[0], m), dtype=np.complex128)
    z[:, :band] = sp.X[:, k0 : k1 + 1]
    # |analytic(w x)| of the band, resampled to m points: ifft scale 1/m, analytic x2, undo 1/n
    env = np.abs(np.fft.ifft(z, axis=1)) * (2.0 * m / sp.n)
    # env already carries the Hann window, so its rfft needs only the amplitude correction
    amp = np.abs(np.fft.rfft(env, axis=1)) * (4.0 / m)
    return EnvelopeSpectrum(amp, sp.df_hz)


@dataclass(frozen=True, slots=True)
class ToneResult:
    """One bearing tone on one axis: summed harmonic amplitude and fundamental ratio over floor."""

    hz: float
    amp_g: float  # sqrt of the sum of squared harmonic peak amplitudes
    ratio_db: float  # best of the detection harmonics, over the local noise floor


def _peak_and_floor(col: Array, k: float, tol_bins: float, floor_bins: int) -> tuple[float, float]:
    lo, hi = max(math.floor(k - tol_bins), 2), math.ceil(k + tol_bins)
    if hi >= len(col) - 1 or hi < lo:
        return 0.0, math.inf
    peak = float(col[lo : hi + 1].max())
    f_lo, f_hi = max(lo - floor_bins, 2), min(hi + floor_bins, len(col) - 1)
    around = np.concatenate((col[f_lo:lo], col[hi + 1 : f_hi + 1]))
    floor = float(np.median(around)) if len(around) else math.inf
    return peak, floor


def evaluate_tone(
    env: EnvelopeSpectrum,
    axis: int,
    f_hz: float,
    *,
    harmonics: int = 3,
    detect: tuple[int, ...] = (1,),
    tol_pct: float = 1.0,
    floor_bins: int = 20,
) -> ToneResult:
    """Amplitude with harmonics and ratio (dB) over the local envelope-spectrum median floor."""
    col = env.amp_g[axis]
    sq, best_db = 0.0, -math.inf
    for h in range(1, max(harmonics, *detect) + 1):
        k = h * f_hz / env.df_hz
        tol = max(k * tol_pct / 100.0, 1.0)
        peak, floor = _peak_and_floor(col, k, tol, floor_bins)
        if h <= harmonics:
            sq += peak * peak
        if h in detect and floor > 0 and peak > 0:
            best_db = max(best_db, 20 * math.log10(peak / floor))
    return ToneResult(f_hz, math.sqrt(sq), best_db if math.isfinite(best_db) else 0.0)
