"""Known answers for the NIST ITS-90 thermocouple functions and Callendar-Van Dusen."""

import math

import numpy as np
import pytest
from edge_agent.plugins.temperature import its90, rtd
from edge_agent.plugins.temperature.its90 import OutOfRangeError, ThermocoupleType

TC = ThermocoupleType

# NIST ITS-90 reference tables (Monograph 175), EMF in mV at degC, reference junction 0 degC.
NIST_TABLE_MV: dict[str, list[tuple[float, float]]] = {
    "B": [(100, 0.033), (200, 0.178), (300, 0.431), (400, 0.787), (500, 1.242), (600, 1.792),
          (700, 2.431), (800, 3.154), (900, 3.957), (1000, 4.834), (1100, 5.780), (1200, 6.786),
          (1300, 7.848), (1400, 8.956), (1500, 10.099), (1600, 11.263), (1700, 12.433),
          (1800, 13.591), (1820, 13.820)],
    "E": [(-270, -9.835), (-200, -8.825), (-100, -5.237), (0, 0.0), (100, 6.319), (200, 13.421),
          (300, 21.036), (400, 28.946), (500, 37.005), (600, 45.093), (700, 53.112), (800, 61.017),
          (900, 68.787), (1000, 76.373)],
    "J": [(-210, -8.095), (-100, -4.633), (0, 0.0), (100, 5.269), (200, 10.779), (300, 16.327),
          (400, 21.848), (500, 27.393), (600, 33.102), (700, 39.132), (760, 42.919), (800, 45.494),
          (900, 51.877), (1000, 57.953), (1100, 63.792), (1200, 69.553)],
    "K": [(-270, -6.458), (-200, -5.891), (-100, -3.554), (0, 0.0), (100, 4.096), (200, 8.138),
          (300, 12.209), (400, 16.397), (500, 20.644), (600, 24.905), (700, 29.129), (800, 33.275),
          (900, 37.326), (1000, 41.276), (1100, 45.119), (1200, 48.838), (1300, 52.410),
          (1372, 54.886)],
    "N": [(-270, -4.345), (-200, -3.990), (-100, -2.407), (0, 0.0), (100, 2.774), (200, 5.913),
          (300, 9.341), (400, 12.974), (500, 16.748), (600, 20.613), (700, 24.527), (800, 28.455),
          (900, 32.371), (1000, 36.256), (1100, 40.087), (1200, 43.846), (1300, 47.513)],
    "R": [(-50, -0.226), (0, 0.0), (100, 0.647), (200, 1.469), (300, 2.401), (400, 3.408),
          (500, 4.471), (600, 5.583), (700, 6.743), (800, 7.950), (900, 9.205), (1000, 10.506),
          (1100, 11.850), (1200, 13.228), (1300, 14.629), (1400, 16.040), (1500, 17.451),
          (1600, 18.849), (1700, 20.222), (1768.1, 21.103)],
    "S": [(-50, -0.236), (0, 0.0), (100, 0.646), (200, 1.441), (300, 2.323), (400, 3.259),
          (500, 4.233), (600, 5.239), (700, 6.275), (800, 7.345), (900, 8.449), (1000, 9.587),
          (1100, 10.757), (1200, 11.951), (1300, 13.159), (1400, 14.373), (1500, 15.582),
          (1600, 16.777), (1700, 17.947), (1768.1, 18.693)],
    "T": [(-270, -6.258), (-200, -5.603), (-100, -3.379), (0, 0.0), (100, 4.279), (200, 9.288),
          (300, 14.862), (400, 20.872)],
}  # fmt: skip

TABLE_POINTS = [(tc, t, e) for tc, rows in NIST_TABLE_MV.items() for t, e in rows]


@pytest.mark.parametrize(
    ("tc", "t_c", "e_mv"),
    [(TC.K, 100, 4.096), (TC.K, 500, 20.644), (TC.K, 1000, 41.276), (TC.J, 100, 5.269), (TC.T, 100, 4.279)],
)
def test_issue_known_answers(tc, t_c, e_mv):
    assert round(its90.emf_mv(tc, t_c), 3) == e_mv


@pytest.mark.parametrize(("tc", "t_c", "e_mv"), TABLE_POINTS)
def test_reference_function_matches_nist_table(tc, t_c, e_mv):
    assert its90.emf_mv(TC(tc), t_c) == pytest.approx(e_mv, abs=0.0006)


# NIST gives no inverse below -200 degC (E, K, N, T), -210 (J) or 250 degC (B).
INVERSE_POINTS = [(tc, t, e) for tc, t, e in TABLE_POINTS if t >= {"B": 250, "J": -210}.get(tc, -200)]


@pytest.mark.parametrize(("tc", "t_c", "e_mv"), INVERSE_POINTS)
def test_inverse_of_table_points_within_nist_error(tc, t_c, e_mv):
    e = its90.emf_mv(TC(tc), t_c)
    assert its90.temperature_c(TC(tc), e) == pytest.approx(t_c, abs=its90.INVERSE_ERROR_C[TC(tc)])


def test_inverse_refuses_below_its_range():
    for tc, t_c in ((TC.K, -250.0), (TC.T, -250.0), (TC.B, 200.0)):
        with pytest.raises(OutOfRangeError):
            its90.temperature_c(tc, its90.emf_mv(tc, t_c))


@pytest.mark.parametrize("tc", list(TC))
def test_inverse_sweep_whole_range_within_nist_error(tc):
    lo_e, hi_e = its90.emf_range_mv(tc)
    lo_t, hi_t = its90.temperature_range_c(tc)
    worst = 0.0
    for t in np.arange(lo_t, hi_t, 1.0):
        e = its90.emf_mv(tc, float(t))
        if lo_e <= e <= hi_e:
            worst = max(worst, abs(its90.temperature_c(tc, e) - t))
            assert its90.temperature_c(tc, e, refine=True) == pytest.approx(t, abs=1e-4)
    assert worst <= its90.INVERSE_ERROR_C[tc]


def test_type_k_exponential_term_is_applied_above_zero():
    a0, a1, a2 = its90.K_EXP
    poly_only = sum(c * a2**i for i, c in enumerate(its90.FORWARD[TC.K][1].coeffs))
    assert its90.emf_mv(TC.K, a2) - poly_only == pytest.approx(a0, rel=1e-9)  # exp(0) at t = a2
    assert a1 < 0
    assert its90.emf_mv(TC.K, 0.0) == 0.0


def test_cold_junction_compensation_issue_example():
    assert round(its90.compensated_c(TC.K, 3.096, 25.0), 1) == 100.0
    assert its90.compensated_c(TC.K, 3.096, 25.0, refine=True) == pytest.approx(100.0, abs=0.01)


def test_cold_junction_below_zero():
    # -10 degC cold junction, hot junction at 200 degC: measured = E(200) - E(-10)
    measured = its90.emf_mv(TC.J, 200.0) - its90.emf_mv(TC.J, -10.0)
    assert its90.compensated_c(TC.J, measured, -10.0) == pytest.approx(200.0, abs=0.05)


@pytest.mark.parametrize(
    ("tc", "t_c"), [(TC.K, 1372.5), (TC.K, -270.5), (TC.T, 401.0), (TC.B, -1.0), (TC.R, -51.0), (TC.J, math.nan)]
)
def test_temperature_out_of_range_is_an_error(tc, t_c):
    with pytest.raises(OutOfRangeError):
        its90.emf_mv(tc, t_c)


@pytest.mark.parametrize(("tc", "e_mv"), [(TC.K, 54.9), (TC.K, -5.9), (TC.B, 0.2), (TC.T, 21.0), (TC.S, -0.3)])
def test_emf_out_of_range_is_an_error_not_an_extrapolation(tc, e_mv):
    with pytest.raises(ValueError, match="outside"):
        its90.temperature_c(tc, e_mv)


def test_max31855_linear_reading_corrected_to_nist():
    # The chip reports cj + (E(t) - E(cj)) / 41.276 uV/degC; the correction recovers t.
    for t in (-200.0, -100.0, 50.0, 200.0, 500.0, 800.0, 1200.0, 1350.0):
        chip = 25.0 + (its90.emf_mv(TC.K, t) - its90.emf_mv(TC.K, 25.0)) / 0.041276
        assert its90.linear_chip_corrected_c(TC.K, chip, 25.0, 41.276) == pytest.approx(t, abs=0.06)
    chip_200 = 25.0 + (its90.emf_mv(TC.K, 200.0) - its90.emf_mv(TC.K, 25.0)) / 0.041276
    assert chip_200 == pytest.approx(197.94, abs=0.01)  # the chip's own error there: -2.06 degC


# IEC 60751 Pt100 table, ohm.
PT100_TABLE = [(-200, 18.52), (-100, 60.26), (0, 100.00), (100, 138.51), (200, 175.86), (300, 212.05),
               (400, 247.09), (500, 280.98), (600, 313.71), (700, 345.28), (800, 375.70), (850, 390.48)]  # fmt: skip


def test_pt100_known_answer():
    assert rtd.resistance_ohm(100.0) == pytest.approx(138.5055, abs=1e-4)
    assert rtd.temperature_c(138.5055) == pytest.approx(100.0, abs=1e-6)
    assert rtd.resistance_ohm(100.0, r0_ohm=1000.0) == pytest.approx(1385.055, abs=1e-3)


@pytest.mark.parametrize(("t_c", "r_ohm"), PT100_TABLE)
def test_pt100_iec_table(t_c, r_ohm):
    assert rtd.resistance_ohm(t_c) == pytest.approx(r_ohm, abs=0.005)
    assert rtd.temperature_c(r_ohm) == pytest.approx(t_c, abs=0.02)


def test_cvd_inverse_exact_both_sides_of_zero():
    for t in np.arange(-200.0, 850.0, 0.7):
        assert rtd.temperature_c(rtd.resistance_ohm(float(t), 1000.0), 1000.0) == pytest.approx(t, abs=1e-6)


def test_cvd_c_term_only_below_zero():
    k = rtd.IEC_60751
    expected = 100.0 * (1 + k.a * -100 + k.b * 1e4 + k.c * (-200.0) * -1e6)
    assert rtd.resistance_ohm(-100.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("r_ohm", [10.0, 400.0, math.nan])
def test_rtd_out_of_range(r_ohm):
    with pytest.raises(OutOfRangeError):
        rtd.temperature_c(r_ohm)
