"""Envelope analysis and bearing tone evaluation: pure numpy, no I/O.

The envelope is the magnitude of the analytic signal of the band-passed window. It is computed from
the window's existing rfft: the band's bins are moved to baseband and inverse-transformed with a
short complex FFT (the magnitude of an analytic signal does not change with a frequency shift), so
the cost is set by the band width, not the sample rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from edge_agent.plugins.vibration.features import Array, Spectrum, Workspace


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


def envelope_spectrum(
    sp: Spectrum, lo_hz: float, hi_hz: float, max_env_hz: float = 1000.0, work: Workspace | None = None
) -> EnvelopeSpectrum:
    """Envelope spectrum of the band [lo_hz, hi_hz] per axis, up to at least ``max_env_hz``;
    ``work``: arrays reused from window to window (see features.Workspace)."""
    work = work or Workspace()
    k0 = max(sp.bin(lo_hz), 1)
    k1 = min(sp.bin(hi_hz), sp.X.shape[1] - 1)
    band = max(k1 - k0 + 1, 0)
    m = _fast_len(max(band, math.ceil(2 * max_env_hz / sp.df_hz) + 2))
    axes = sp.X.shape[0]
    z = work.array("band", (axes, m), np.complex128)
    z[:, :band] = sp.X[:, k0 : k1 + 1]
    z[:, band:] = 0.0
    # |analytic(w x)| of the band, resampled to m points: ifft scale 1/m, analytic x2, undo 1/n
    analytic = np.fft.ifft(z, axis=1, out=z)  # in place: the same values, one array less
    env = np.abs(analytic, out=work.array("envelope", (axes, m)))
    env *= 2.0 * m / sp.n
    # env already carries the Hann window, so its rfft needs only the amplitude correction
    env_x = np.fft.rfft(env, axis=1, out=work.array("envelope_X", (axes, m // 2 + 1), np.complex128))
    amp = np.abs(env_x) * (4.0 / m)
    return EnvelopeSpectrum(amp, sp.df_hz)


@dataclass(frozen=True, slots=True)
class ToneResult:
    """One bearing tone on one axis: summed harmonic amplitude and fundamental ratio over floor."""

    hz: float
    amp_g: float  # sqrt of the sum of squared harmonic peak amplitudes
    ratio_db: float  # best of the detection harmonics, over the local noise floor


def _window(k: float, tol_bins: float, floor_bins: int, bins: int) -> tuple[int, int, int, int] | None:
    """Bins [lo, hi] searched for the peak around bin k, and [f_lo, f_hi] whose rest is its floor;
    None when the window reaches the spectrum's end (or is empty)."""
    lo, hi = max(math.floor(k - tol_bins), 2), math.ceil(k + tol_bins)
    if hi >= bins - 1 or hi < lo:
        return None
    return lo, hi, max(lo - floor_bins, 2), min(hi + floor_bins, bins - 1)


def _peaks_and_floors(amp: Array, windows: list[tuple[int, int, int, int] | None]) -> tuple[Array, Array]:
    """Per window (axes x windows): the highest bin within [lo, hi], and the median of the bins of
    [f_lo, f_hi] outside it; 0 and inf for a window that is None. Every window in one gather (the
    search windows padded with their first bin, which leaves a max unchanged), the floors sorted
    once per floor size: one call per window cost more than the math at 3.2 kHz."""
    axes, n = amp.shape[0], len(windows)
    peak, floor = np.zeros((axes, n)), np.full((axes, n), np.inf)
    ok = [(j, w) for j, w in enumerate(windows) if w is not None]
    if not ok:
        return peak, floor
    width = max(hi - lo + 1 for _, (lo, hi, _, _) in ok)
    idx = np.array([[*range(lo, hi + 1)] + [lo] * (width - (hi - lo + 1)) for _, (lo, hi, _, _) in ok])
    peak[:, [j for j, _ in ok]] = amp[:, idx].max(axis=2)
    by_size: dict[int, list[tuple[int, list[int]]]] = {}
    for j, (lo, hi, f_lo, f_hi) in ok:
        around = [*range(f_lo, lo), *range(hi + 1, f_hi + 1)]
        by_size.setdefault(len(around), []).append((j, around))
    for size, group in by_size.items():
        if size:
            cols = [j for j, _ in group]
            floor[:, cols] = _row_median(amp[:, np.array([a for _, a in group])])
    return peak, floor


def _row_median(a: Array) -> Array:
    """``np.median(a, axis=-1)`` for the few dozen bins of a floor, without its generic machinery
    (np.median was a quarter of a 3.2 kHz window's analysis); same values (no NaN here)."""
    s = np.sort(a, axis=-1)
    h = s.shape[-1] // 2
    return s[..., h] if s.shape[-1] % 2 else 0.5 * (s[..., h - 1] + s[..., h])


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
    amp, db = tone_table(env, [(f_hz, detect)], harmonics=harmonics, tol_pct=tol_pct, floor_bins=floor_bins)
    return [ToneResult(f_hz, float(amp[a, 0]), float(db[a, 0])) for a in range(amp.shape[0])]


def tone_table(
    env: EnvelopeSpectrum,
    tones: Sequence[tuple[float, tuple[int, ...]]],
    *,
    harmonics: int = 3,
    tol_pct: float = 1.0,
    floor_bins: int = 20,
) -> tuple[Array, Array]:
    """:func:`evaluate_tone` of several tones ``(f_hz, detect harmonics)`` at once: (amplitude g,
    ratio dB), axes x tones, from one gather of every harmonic's window."""
    axes, bins = env.amp_g.shape
    n_h = max([harmonics, *(h for _, detect in tones for h in detect)])
    windows: list[tuple[int, int, int, int] | None] = []
    for f_hz, _ in tones:  # column t * n_h + h - 1: harmonic h of tone t
        for h in range(1, n_h + 1):
            k = h * f_hz / env.df_hz
            windows.append(_window(k, max(k * tol_pct / 100.0, 1.0), floor_bins, bins))
    peaks, floors = _peaks_and_floors(env.amp_g, windows)
    peaks = peaks.reshape(axes, len(tones), n_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 20 * np.log10(peaks / floors.reshape(axes, len(tones), n_h))
    db = np.where(np.isfinite(db), db, -np.inf)
    sq = np.zeros((axes, len(tones)))
    for h in range(harmonics):  # harmonic by harmonic, the order the sum always had
        sq += peaks[:, :, h] * peaks[:, :, h]
    detected = np.array([[h + 1 in detect for h in range(n_h)] for _, detect in tones])
    best_db = np.where(detected, db, -np.inf).max(axis=2)
    return np.sqrt(sq), np.where(np.isfinite(best_db), best_db, 0.0)
