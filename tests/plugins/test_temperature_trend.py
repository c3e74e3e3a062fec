"""Known answers for the temperature trend functions."""

import math

import numpy as np
import pytest
from edge_agent.plugins.common import trend


def test_slope_of_a_clean_ramp():
    t = np.arange(0.0, 60.0, 1.0)
    assert trend.rate_per_min(t, 40.0 + 0.1 * t) == pytest.approx(6.0, abs=1e-9)


def test_slope_least_squares_ignores_symmetric_noise():
    t = np.arange(0.0, 61.0, 1.0)
    noise = np.where(np.arange(t.size) % 2 == 0, 0.3, -0.3)
    assert trend.rate_per_min(t, 20.0 + 0.05 * t + noise) == pytest.approx(3.0, abs=0.05)


def test_slope_degenerate_inputs():
    assert math.isnan(trend.slope_per_s([1.0], [2.0]))
    assert math.isnan(trend.slope_per_s([5.0, 5.0], [1.0, 2.0]))


def test_time_to_threshold():
    assert trend.time_to_threshold_s(60.0, 6.0, 80.0) == pytest.approx(200.0)
    assert trend.time_to_threshold_s(60.0, -6.0, 80.0) is None  # moving away
    assert trend.time_to_threshold_s(60.0, 0.0, 80.0) is None
    assert trend.time_to_threshold_s(30.0, -2.0, 10.0) == pytest.approx(600.0)  # falling to a low limit
    assert trend.time_to_threshold_s(80.0, 6.0, 80.0) == 0.0
    assert trend.time_to_threshold_s(math.nan, 6.0, 80.0) is None


def test_stuck():
    assert trend.is_stuck([25.0, 25.0, 25.0], 0.0)
    assert not trend.is_stuck([25.0, 25.0, 25.25], 0.0)
    assert trend.is_stuck([25.0, 25.1, 24.95], 0.2)
    assert not trend.is_stuck([25.0], 0.0)


def test_median_removes_a_single_spike():
    assert trend.median([20.0, 500.0, 20.5]) == 20.5
    assert math.isnan(trend.median([]))


def test_jump():
    assert trend.is_jump(20.0, 80.0, 50.0)
    assert not trend.is_jump(20.0, 60.0, 50.0)
    assert not trend.is_jump(None, 80.0, 50.0)
    assert not trend.is_jump(20.0, 900.0, 0.0)


def test_coarse_seconds():
    assert [trend.coarse_seconds(s) for s in (3.0, 118.0, 121.0, 599.0, 601.0, 3599.0)] == [5, 120, 120, 600, 600, 3600]
