"""Known-answer tests for the vibration feature math."""

from __future__ import annotations

import math

import numpy as np
import pytest
from edge_agent.plugins.vibration import features as F
from edge_agent.plugins.vibration.envelope import envelope_spectrum, evaluate_tone
from edge_agent.plugins.vibration.iso import ISO_10816_3_MM_S, Foundation, Zone, iso_zone, zone_limits

FS = 25600.0
T = np.arange(int(FS)) / FS


def rows(*cols: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.stack(cols))


def sine(f_hz: float, amp: float = 1.0) -> np.ndarray:
    return amp * np.sin(2 * np.pi * f_hz * T)


def test_sine_statistics() -> None:
    st = F.time_stats(rows(sine(100.0) + 0.5))  # DC is removed first
    assert st.rms_g[0] == pytest.approx(0.7071, abs=1e-4)
    assert st.peak_g[0] == pytest.approx(1.0, abs=1e-6)
    assert st.p2p_g[0] == pytest.approx(2.0, abs=1e-6)
    assert st.crest[0] == pytest.approx(1.414, abs=1e-3)
    assert st.kurtosis[0] == pytest.approx(1.5, abs=1e-6)
    assert st.skewness[0] == pytest.approx(0.0, abs=1e-9)


def test_gaussian_noise_kurtosis_is_three() -> None:
    x = np.random.default_rng(7).normal(0.0, 0.3, 10 * int(FS))
    st = F.time_stats(rows(x))
    assert st.kurtosis[0] == pytest.approx(3.0, abs=0.05)
    assert st.skewness[0] == pytest.approx(0.0, abs=0.02)
    assert st.rms_g[0] == pytest.approx(0.3, rel=0.01)


def test_skewness_sign_of_one_sided_impacts() -> None:
    x = np.zeros(1000)
    x[::100] = 1.0
    assert F.time_stats(rows(x)).skewness[0] > 2.0


def test_velocity_of_1g_100hz_sine_is_11_04_mm_s() -> None:
    sp = F.spectrum(rows(sine(100.0)), FS)
    v = F.velocity_rms_mm_s(sp.power(), sp)[0]
    assert round(v, 2) == 11.04
    assert v == pytest.approx(9806.65 / (2 * math.pi * 100) / math.sqrt(2), rel=1e-4)


@pytest.mark.parametrize("f_hz", [20.0, 159.155, 500.0, 999.0])
def test_velocity_follows_one_over_f(f_hz: float) -> None:
    sp = F.spectrum(rows(sine(f_hz, 0.2)), FS)
    expected = 0.2 * 9806.65 / (2 * math.pi * f_hz) / math.sqrt(2)
    assert F.velocity_rms_mm_s(sp.power(), sp)[0] == pytest.approx(expected, rel=2e-3)


def test_velocity_band_excludes_out_of_band_tones() -> None:
    sp = F.spectrum(rows(sine(3.0, 1.0) + sine(3000.0, 1.0)), FS)
    assert F.velocity_rms_mm_s(sp.power(), sp)[0] < 0.05


def test_velocity_at_3200_hz_rate() -> None:
    t = np.arange(3200) / 3200.0
    sp = F.spectrum(rows(np.sin(2 * np.pi * 100 * t)), 3200.0)
    assert round(F.velocity_rms_mm_s(sp.power(), sp)[0], 2) == 11.04


def test_peaks_amplitude_and_interpolated_frequency() -> None:
    sp = F.spectrum(rows(sine(120.4, 0.5) + sine(987.0, 0.2)), FS)
    (f1, a1), (f2, a2) = F.top_peaks(sp.amplitude_g()[0], sp.df_hz, 2)
    assert f1 == pytest.approx(120.4, abs=0.05) and a1 == pytest.approx(0.5, rel=0.01)
    assert f2 == pytest.approx(987.0, abs=0.05) and a2 == pytest.approx(0.2, rel=0.01)


def test_band_rms_and_order_amplitude() -> None:
    sp = F.spectrum(rows(sine(50.0, 1.0) + sine(400.0, 0.5)), FS)
    p = sp.power()
    assert F.band_rms_g(p[0], sp, 10, 100) == pytest.approx(1 / math.sqrt(2), rel=1e-3)
    assert F.band_rms_g(p[0], sp, 100, 1000) == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert F.tone_amplitude_g(p, sp, 50.3, 1.0)[0] == pytest.approx(1.0, rel=1e-3)


def test_speed_estimate_from_spectrum() -> None:
    x = sine(29.95, 0.05) + sine(59.9, 0.02) + np.random.default_rng(1).normal(0, 0.01, len(T))
    sp = F.spectrum(rows(x), FS)
    assert F.estimate_shaft_hz(sp.power(), sp, 5.0, 60.0) == pytest.approx(29.95, abs=0.05)


def test_envelope_of_am_signal() -> None:
    x = (1 + 0.5 * np.cos(2 * np.pi * 37 * T)) * np.sin(2 * np.pi * 5000 * T)
    env = envelope_spectrum(F.spectrum(rows(x), FS), 3000, 8000)
    assert env.amp_g[0, 37] == pytest.approx(0.5, rel=1e-3)
    (tone,) = evaluate_tone(env, 37.0, harmonics=2)
    assert tone.amp_g == pytest.approx(0.5, rel=1e-3) and tone.ratio_db > 60


def test_envelope_tone_below_floor_gives_low_ratio() -> None:
    x = np.random.default_rng(3).normal(0, 1, len(T))
    env = envelope_spectrum(F.spectrum(rows(x), FS), 2000, 8000)
    assert evaluate_tone(env, 107.36)[0].ratio_db < 12


@pytest.mark.parametrize(("group", "foundation"), list(ISO_10816_3_MM_S))
def test_iso_boundaries_both_sides(group: int, foundation: Foundation) -> None:
    limits = zone_limits(group, foundation)
    for boundary, lower, upper in zip(limits, "ABC", "BCD", strict=True):
        assert iso_zone(boundary, limits) is Zone(lower)
        assert iso_zone(math.nextafter(boundary, math.inf), limits) is Zone(upper)
        assert iso_zone(boundary + 0.01, limits) is Zone(upper)
    assert iso_zone(0.0, limits) is Zone.A


def test_iso_table_values() -> None:
    assert zone_limits(1, Foundation.RIGID) == (2.3, 4.5, 7.1)
    assert zone_limits(1, Foundation.FLEXIBLE) == (3.5, 7.1, 11.0)
    assert zone_limits(2, Foundation.RIGID) == (1.4, 2.8, 4.5)
    assert zone_limits(2, Foundation.FLEXIBLE) == (2.3, 4.5, 7.1)
    assert iso_zone(11.04, (1.0, 2.0, 3.0)) is Zone.D


def test_envelope_of_an_empty_band_is_zero() -> None:
    env = envelope_spectrum(F.spectrum(rows(sine(100.0)), FS), 20000, 30000)
    assert float(env.amp_g.max()) == 0.0


def test_floor_median_equals_numpy_median_for_odd_and_even_widths() -> None:
    import numpy as np
    from edge_agent.plugins.vibration.envelope import _row_median

    rng = np.random.default_rng(7)
    for width in (1, 2, 3, 20, 39, 40):
        a = rng.random((3, width))
        assert np.array_equal(_row_median(a), np.median(a, axis=1)), width
