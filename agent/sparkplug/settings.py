"""The ``[sparkplug]`` config section (no protobuf import: config validation stays light)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

# Sparkplug 3.0: group, edge node and device ids are UTF-8 and must not hold / + # (topic levels).
ID_RE = re.compile(r"^[^/+#\s]{1,64}$")


class SparkplugSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = False
    group_id: str = "edge"
    edge_node_id: str = ""  # default: the agent id
    primary_host_id: str = ""  # "": publish births at once; else wait for spBv1.0/STATE/<id> online
    native: bool = True  # keep the native data/event topics beside Sparkplug
    store_forward: bool = True  # while the host (or broker) is away: store, replay as historical
    store_max_records: Annotated[int, msgspec.Meta(ge=100, le=10_000_000)] = 100_000
    health_interval_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 10.0  # NDATA of node health metrics


def check(s: dict[str, Any], errors: list[str]) -> None:
    """Ids must be valid topic levels."""
    for key in ("group_id", "edge_node_id", "primary_host_id"):
        value = s.get(key)
        if isinstance(value, str) and value and not ID_RE.match(value):
            errors.append(
                f"sparkplug.{key}: {value!r} is not a valid Sparkplug id (1-64 characters, no / + # or spaces)"
            )
