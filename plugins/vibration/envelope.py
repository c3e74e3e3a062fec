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
from edge_agent.plugins.vibration.features import Array, Spectrum


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
    band = max(k1 - k0 + 1, 0)
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


def _peak_and_floor(amp: Array, k: float, tol_bins: float, floor_bins: int) -> tuple[Array, Array]:
    """Per axis: the highest bin within +-tol of bin k, and the median of the bins around it."""
    lo, hi = max(math.floor(k - tol_bins), 2), math.ceil(k + tol_bins)
    axes = amp.shape[0]
    if hi >= amp.shape[1] - 1 or hi < lo:
        return np.zeros(axes), np.full(axes, np.inf)
    peak = amp[:, lo : hi + 1].max(axis=1)
    f_lo, f_hi = max(lo - floor_bins, 2), min(hi + floor_bins, amp.shape[1] - 1)
    around = np.concatenate((amp[:, f_lo:lo], amp[:, hi + 1 : f_hi + 1]), axis=1)
    floor = _row_median(around) if around.shape[1] else np.full(axes, np.inf)
    return peak, floor


def _row_median(a: Array) -> Array:
    """``np.median(a, axis=1)`` for the few dozen bins of a floor, without its generic machinery
    (np.median was a quarter of a 3.2 kHz window's analysis); same values (no NaN here)."""
    s = np.sort(a, axis=1)
    h = s.shape[1] // 2
    return s[:, h] if s.shape[1] % 2 else 0.5 * (s[:, h - 1] + s[:, h])


def evaluate_tone(
    env: EnvelopeSpectrum,
    f_hz: float,
    *,
    harmonics: int = 3,
    detect: tuple[int, ...] = (1,),
    tol_pct: float = 1.0,
    floor_bins: int = 20,
) -> list[ToneResult]:
    """Per axis: amplitude with harmonics and ratio (dB) over the local envelope-spectrum median floor."""
    axes = env.amp_g.shape[0]
    sq, best_db = np.zeros(axes), np.full(axes, -np.inf)
    for h in range(1, max(harmonics, *detect) + 1):
        k = h * f_hz / env.df_hz
        peak, floor = _peak_and_floor(env.amp_g, k, max(k * tol_pct / 100.0, 1.0), floor_bins)
        if h <= harmonics:
            sq += peak * peak
        if h in detect:
            with np.errstate(divide="ignore", invalid="ignore"):
                db = 20 * np.log10(peak / floor)
            best_db = np.maximum(best_db, np.where(np.isfinite(db), db, -np.inf))
    best_db = np.where(np.isfinite(best_db), best_db, 0.0)
    return [ToneResult(f_hz, float(math.sqrt(sq[a])), float(best_db[a])) for a in range(axes)]
