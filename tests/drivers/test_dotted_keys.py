"""The one flatten of the tree: nested value maps as dotted keys, as docs/messages.md names them."""

from __future__ import annotations

from edge_agent.drivers.dotted_keys import flatten, numeric_leaves


def test_nested_maps_become_dotted_keys_and_leaves_stay_as_they_are() -> None:
    assert flatten({"x": {"rms_g": 1.5, "peaks_hz": [24.5]}, "n": 1, "ok": None}) == {
        "x.rms_g": 1.5,
        "x.peaks_hz": [24.5],
        "n": 1,
        "ok": None,
    }


def test_a_key_that_is_not_a_string_is_kept_for_a_checker_to_name() -> None:
    assert flatten({7: {"b": 2}, "y": {"z": 1}}) == {7: {"b": 2}, "y.z": 1}  # not descended into, not "7.b"
    assert flatten({"x": {3: 1}}) == {3: 1}


def test_numeric_leaves_are_the_numbers_only() -> None:
    message = {"x": {"rms_g": 1, "zone": "B", "peaks_g": [1.0]}, "ok": True, "t_c": None}
    assert numeric_leaves(message) == {"x.rms_g": 1.0}
