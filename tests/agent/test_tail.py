"""edge-agent tail prints what came: NaN and infinities as themselves, distinct from null."""

from __future__ import annotations

import json

from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.tail import decode_line


def test_tail_shows_nan_and_infinities_as_themselves_not_null() -> None:
    """Issue 24, item 6: NaN, +inf and -inf print as NaN/Infinity/-Infinity, distinct from null."""
    payload = codec.encode({"a": float("nan"), "b": float("inf"), "c": float("-inf"), "d": None}, ts_ms=1, seq=1)
    line = json.dumps(decode_line("edge/x/data/i", payload, False), separators=(",", ":"))
    assert '"d":{"a":NaN,"b":Infinity,"c":-Infinity,"d":null}' in line
