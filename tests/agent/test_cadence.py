"""The shared tick grid (agent/cadence.py): jobs of one period wake the loop together."""

from __future__ import annotations

import pytest
from edge_agent.agent.cadence import grid_origin, next_grid_s


@pytest.mark.parametrize("now", [100.0, 100.2, 100.49, 100.5, 100.51, 100.99])
def test_grid_origin_keeps_the_next_tick_half_to_one_and_a_half_periods_away(now: float) -> None:
    origin = grid_origin(now, 1.0)
    assert origin == round(origin)  # on the whole second
    assert 0.5 <= origin + 1.0 - now <= 1.5


@pytest.mark.parametrize("now", [100.0, 100.39, 100.4, 100.95])
def test_grid_origin_with_a_phase(now: float) -> None:
    origin = grid_origin(now, 1.0, 0.4)
    assert round(origin - 0.4, 9) == round(origin - 0.4)
    assert 0.5 <= origin + 1.0 - now <= 1.5


def test_jobs_started_apart_share_their_ticks() -> None:
    """Two instances started 0.3 s apart tick on the same grid points after their first poll."""
    a, b = grid_origin(100.1, 1.0), grid_origin(100.4, 1.0)
    assert {a + k for k in range(1, 4)} == {b + k for k in range(1, 4)}
    assert next_grid_s(100.1, 0.2) == pytest.approx(100.2)
    assert next_grid_s(100.0, 1.0) == 101.0
