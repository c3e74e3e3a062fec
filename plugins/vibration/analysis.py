"""One window in, one compact nested message out: composes the pure feature functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from edge_agent.plugins.vibration import features as F
from edge_agent.plugins.vibration.bearing import Orders, Tone
from edge_agent.plugins.vibration.diagnosis import Diagnosis, Fault, diagnose, quiet, symptoms
from edge_agent.plugins.vibration.envelope import envelope_spectrum, tone_table
from edge_agent.plugins.vibration.iso import iso_zone

# Which harmonics of a tone decide its ratio: a ball defect hits both races, so 2xBSF counts.
DETECT_HARMONICS: dict[Tone, tuple[int, ...]] = {
    Tone.BPFO: (1,),
    Tone.BPFI: (1,),
    Tone.BSF: (1, 2),
    Tone.FTF: (1,),
}


@dataclass(frozen=True)
class FeatureConfig:
    """Everything the math needs, resolved from the plugin options and the sample rate."""

    axes: tuple[str, ...]
    iso_limits_mm_s: tuple[float, float, float]
    velocity_band_hz: tuple[float, float] = (10.0, 1000.0)
    peaks: int = 3
    bands_hz: tuple[tuple[float, float], ...] = ()
    speed_range_hz: tuple[float, float] = (5.0, 60.0)  # where the spectrum estimate looks
    orders: Orders | None = None
    envelope_band_hz: tuple[float, float] = (2000.0, 8000.0)
    tone_harmonics: int = 3
    tone_tolerance_pct: float = 1.0
    diagnosis_gate_mm_s: float | None = None  # None: no machine diagnosis
    axial_axis: str | None = None


@dataclass
class Analysis:
    message: dict[str, Any]
    shaft_hz: float | None
    tone_ratio_db: dict[Tone, float] = field(default_factory=dict)
    diagnoses: dict[Fault, Diagnosis] = field(default_factory=dict)


def _f(v: Any) -> float:
    return float(v)


def _axis_message(
    i: int, st: F.TimeStats, vel: Any, amp: Any, sp: F.Spectrum, cfg: FeatureConfig, bands: list[Any]
) -> dict[str, Any]:
    m: dict[str, Any] = {
        "rms_g": _f(st.rms_g[i]),
        "peak_g": _f(st.peak_g[i]),
        "p2p_g": _f(st.p2p_g[i]),
        "crest": _f(st.crest[i]),
        "kurtosis": _f(st.kurtosis[i]),
        "skewness": _f(st.skewness[i]),
        "velocity_rms_mm_s": _f(vel[i]),
    }
    if cfg.peaks:
        peaks = F.top_peaks(amp[i], sp.df_hz, cfg.peaks)
        m["peaks_hz"] = [p[0] for p in peaks]
        m["peaks_g"] = [p[1] for p in peaks]
    if cfg.bands_hz:
        m["bands_g"] = [_f(b[i]) for b in bands]
    return m


def _orders(power: Any, sp: F.Spectrum, shaft_hz: float, cfg: FeatureConfig) -> list[Any]:
    tol = max(shaft_hz * cfg.tone_tolerance_pct / 100.0, sp.df_hz)
    return [F.tone_amplitude_g(power, sp, h * shaft_hz, h * tol) for h in (1, 2, 3)]


def _bearing(sp: F.Spectrum, shaft_hz: float, cfg: FeatureConfig, a: Analysis, work: F.Workspace) -> dict[str, Any]:
    assert cfg.orders is not None
    top = max(cfg.orders.hz(shaft_hz)[t] * max(cfg.tone_harmonics, 2) for t in Tone)
    env = envelope_spectrum(sp, *cfg.envelope_band_hz, max_env_hz=top * 1.2 + 20 * sp.df_hz, work=work)
    hz = cfg.orders.hz(shaft_hz)
    amp_g, ratio_db = tone_table(
        env, [(f_hz, DETECT_HARMONICS[t]) for t, f_hz in hz.items()],
        harmonics=cfg.tone_harmonics, tol_pct=cfg.tone_tolerance_pct,
    )  # fmt: skip
    best = ratio_db.argmax(axis=0)  # per tone the axis where it stands out most (the first of equals)
    out: dict[str, Any] = {}
    for i, (tone, f_hz) in enumerate(hz.items()):
        a.tone_ratio_db[tone] = float(ratio_db[best[i], i])
        out[tone.value] = {"hz": f_hz, "amp_g": float(amp_g[best[i], i]), "ratio_db": float(ratio_db[best[i], i])}
    return out


def analyse(
    x: Any,
    rate_hz: float,
    cfg: FeatureConfig,
    shaft_hz: float | None = None,
    *,
    estimate_speed: bool = False,
    work: F.Workspace | None = None,
) -> Analysis:
    """All features of one contiguous window ``x`` (n, axes) in g; speed estimated when asked and
    unknown; ``work``: the instance's arrays, reused (the Analysis keeps none of them)."""
    work = work or F.Workspace()
    x = np.asarray(x)
    xc = work.array("samples", (x.shape[1], x.shape[0]))
    np.copyto(xc, x.T)  # float64, axes x samples
    xc -= xc.mean(axis=1, keepdims=True)
    st = F.centred_stats(xc, work.array("windowed", xc.shape))  # x^2 there until the spectrum needs it
    sp = F.centred_spectrum(xc, rate_hz, work)
    power, amp = sp.power_and_amplitude(work)
    vel = F.velocity_rms_mm_s(power, sp, *cfg.velocity_band_hz)
    bands = [F.band_rms_g(power, sp, lo, hi) for lo, hi in cfg.bands_hz]  # every axis at once
    msg: dict[str, Any] = {name: _axis_message(i, st, vel, amp, sp, cfg, bands) for i, name in enumerate(cfg.axes)}
    vmax = float(vel.max())
    msg["velocity_rms_mm_s"] = vmax
    msg["iso_zone"] = iso_zone(vmax, cfg.iso_limits_mm_s).value
    if shaft_hz is None and estimate_speed:
        shaft_hz = F.estimate_shaft_hz(power, sp, *cfg.speed_range_hz)
    a = Analysis(msg, shaft_hz)
    if shaft_hz is None:
        return a
    msg["rpm"] = shaft_hz * 60.0
    orders = _orders(power, sp, shaft_hz, cfg)  # every axis at once
    for i, name in enumerate(cfg.axes):
        for h, v in zip((1, 2, 3), orders, strict=True):
            msg[name][f"{h}x_g"] = _f(v[i])
    if cfg.orders is not None:
        msg["bearing"] = _bearing(sp, shaft_hz, cfg, a, work)
    if cfg.diagnosis_gate_mm_s is not None:
        a.diagnoses = quiet(vmax, shaft_hz, cfg.diagnosis_gate_mm_s, cfg.velocity_band_hz) or diagnose(
            symptoms(power, sp, shaft_hz, cfg.axes, cfg.axial_axis, vel), cfg.diagnosis_gate_mm_s
        )
        msg["diagnosis"] = {
            f.value: {"confidence": d.confidence, "evidence": d.evidence} for f, d in a.diagnoses.items()
        }
    return a
