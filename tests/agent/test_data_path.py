"""docs/data-path.png is drawn from the code: every function a box names still exists, and the
figure is there (redraw it with ``python -m edge_agent.agent.devtools.data_path``)."""

from __future__ import annotations

import pytest
from edge_agent.agent.devtools.data_path import ARROWS, BOXES, OUT, resolve


@pytest.mark.parametrize("ref", sorted({r for b in BOXES for r in b.refs}))
def test_every_box_names_code_that_exists(ref: str) -> None:
    assert resolve(ref) is not None, f"{ref}: renamed or gone; fix agent/devtools/data_path.py and redraw"


def test_arrows_join_boxes_and_the_figure_is_committed() -> None:
    keys = {b.key for b in BOXES}
    assert all(a in keys and z in keys for a, z, *_ in ARROWS)
    assert OUT.is_file() and OUT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_stale_reference_is_caught() -> None:
    with pytest.raises(AttributeError):
        resolve("edge_agent.agent.messaging.publisher:Publisher.no_such_method")
