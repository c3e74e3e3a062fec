"""``edge-agent alarms AGENT``, ``edge-agent ack AGENT ID --by NAME`` and ``edge-agent audit AGENT
[--since 1d]``: the alarm list, acknowledging, and who did what, as tables a person can read."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from edge_agent.agent.history.service import parse_since
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.connection import ClientError, resolve
from edge_agent.agent.ops.fleet import request

STATE_TEXT = {"active_unack": "ACTIVE", "active_ack": "active, acked", "cleared_unack": "CLEARED, not acked"}


def _when(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ask(args: argparse.Namespace, name: str, req: dict[str, Any]) -> dict[str, Any] | int:
    """The command's result, or the exit code (1 refused, 2 no answer)."""
    try:
        d = request(resolve(args), args.agent_id, name, req, args.timeout)
    except ClientError as exc:
        raise SystemExit(f"{name}: {exc}") from exc
    if d is None:
        print(f"{name}: no answer from {args.agent_id} within {args.timeout:g} s", file=sys.stderr)
        return 2
    if not d.get("ok"):
        print(f"{name}: {d.get('error')}", file=sys.stderr)
        return 1
    result: dict[str, Any] = d["result"]
    return result


def alarm_table(result: dict[str, Any]) -> str:
    names = [a["instance"] + " " + a["name"] for a in result["alarms"]]
    width = max([44, *map(len, names)])  # a long alarm name widens its column, never shifts the next
    lines = [f"{'state':<18} {'since (UTC)':<19} {'alarm':<{width}} acknowledged"]
    for a, name in zip(result["alarms"], names, strict=True):
        state = STATE_TEXT.get(a["state"], a["state"]) + (" [shelved]" if a.get("shelved") else "")
        ack = f"{a['ack_by']} {_when(a['ack_ms'])}" if a.get("ack_by") else ""
        lines.append(f"{state:<18} {_when(a['raised_ms']):<19} {name:<{width}} {ack}".rstrip())
        lines.append(f"{'':<18} id {a['id']}")
    if not result["alarms"]:
        lines.append("(no alarms)")
    return "\n".join(lines)


def cmd_alarms(args: argparse.Namespace) -> int:
    """The agent's alarm list."""
    result = _ask(args, "alarms", {})
    if isinstance(result, int):
        return result
    print(json.dumps(codec.to_jsonable(result), indent=1) if args.json else alarm_table(result))
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    """Acknowledge one alarm (or ``all``) as a named person."""
    result = _ask(args, "ack", {"by": args.by, "args": {"id": args.alarm_id, "by": args.by, "comment": args.comment}})
    if isinstance(result, int):
        return result
    print(f"ack: {len(result['acknowledged'])} alarm(s) acknowledged by {args.by}")
    return 0


def audit_table(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "(nothing recorded in this range)"
    head = ("when (UTC)", "who", "via", "what", "outcome")
    rows = [
        (
            _when(e.get("ts_ms")),
            str(e.get("by")),
            str(e.get("args", {}).get("via") or e.get("source", "")),
            f"{e.get('command', '?')} {e.get('instance') or ''}".strip(),
            str(e.get("outcome")),
        )
        for e in reversed(entries)  # oldest first, like a log; every row kept (answers.table cuts at 50)
    ]
    # columns as wide as their longest cell: a long name ("demo technician (badge 4711)") stays aligned
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (head, *rows))


def cmd_audit(args: argparse.Namespace) -> int:
    """Who did what on the agent, oldest first."""
    try:
        since_s = parse_since(args.since)
    except ValueError as exc:
        raise SystemExit(f"audit: {exc}") from exc
    result = _ask(args, "audit", {"args": {"since_s": since_s, "limit": args.limit}})
    if isinstance(result, int):
        return result
    entries = result["entries"]
    print(json.dumps(codec.to_jsonable(entries), indent=1) if args.json else audit_table(entries))
    return 0
