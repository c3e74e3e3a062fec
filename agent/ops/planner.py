"""``edge-agent maintenance AGENT [--due | --plans | --history]``: what a planner asks an agent."""

from __future__ import annotations

import argparse
import json
import sys

from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.answers import refusal, table
from edge_agent.agent.ops.connection import ClientError, resolve
from edge_agent.agent.ops.fleet import request

COLUMNS = {
    "due": ["status", "asset", "plan", "task", "used_pct", "equipment", "functional_location", "due_since", "instance"],
    "plans": None,  # every column the plans have (their *_left differ per basis)
    "history": ["done", "asset", "plan", "by", "was", "work_order", "notes"],
}


def cmd_maintenance(args: argparse.Namespace) -> int:
    """Ask the agent's ``maintenance`` command and print its list as a table (or JSON)."""
    view = "history" if args.history else "plans" if args.plans else "due"
    try:
        s = resolve(args)
        d = request(s, args.agent_id, "maintenance", {"args": {"view": view, "limit": args.limit}}, args.timeout)
    except ClientError as exc:
        raise SystemExit(f"maintenance: {exc}") from exc
    if d is None:
        print(f"maintenance: no answer from {args.agent_id} within {args.timeout:g} s", file=sys.stderr)
        return 2
    if not d.get("ok"):
        print(refusal(args.agent_id, "maintenance", d.get("error")), file=sys.stderr)
        return 1
    rows = d["result"][view]
    if args.json:
        print(json.dumps(codec.to_jsonable(rows), indent=1))
        return 0
    title = {"due": "due or overdue now", "plans": "plans", "history": "sign-offs, newest first"}[view]
    print(f"{args.agent_id}: {title}")
    print("\n".join(table(rows, COLUMNS[view]) if rows else ["(nothing due)" if view == "due" else "(none)"]))
    return 0
