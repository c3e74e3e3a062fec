"""Sparkplug topic names of one edge node, and events as Boolean metrics to alarm on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_agent.agent.sparkplug.payload import NAMESPACE


class Topics:
    def __init__(self, group: str, node: str, host: str) -> None:
        base = f"{NAMESPACE}/{group}"
        self.nbirth, self.ndeath = f"{base}/NBIRTH/{node}", f"{base}/NDEATH/{node}"
        self.ndata, self.ncmd = f"{base}/NDATA/{node}", f"{base}/NCMD/{node}"
        self.dcmd = f"{base}/DCMD/{node}/+"
        self._device = f"{base}/{{}}/{node}/{{}}"
        self.state = f"{NAMESPACE}/STATE/{host}" if host else ""

    def device(self, kind: str, name: str) -> str:
        return self._device.format(kind, name)


def event_flags(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Boolean metrics for alarms and faults: ``Alarms/<channel>/<feature>/<level>`` follows an
    alarm's ``active``; ``Faults/<what>[/<channel>]`` is true from a ``*_fault`` to its ``*_ok``."""
    out: dict[str, Any] = {}
    channel = fields.get("channel")
    where = f"/{channel}" if isinstance(channel, str) and channel not in ("", "*") else ""
    if isinstance(fields.get("active"), bool) and "level" in fields:
        feature = str(fields.get("feature", kind)).replace(".", "/")
        out[f"Alarms{where}/{feature}/{fields['level']}"] = fields["active"]
    for suffix, state in (("_fault", True), ("_ok", False)):
        if kind.endswith(suffix) and kind != "tag_ok" and kind != "tag_fault":
            out[f"Faults/{kind[: -len(suffix)]}{where}"] = state
    return out
