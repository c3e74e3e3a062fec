"""``edge-agent history AGENT INSTANCE KEY --since 7d [--csv FILE | --png FILE]``: an agent's
on-device history of one value (``cmd/history``), as a table, CSV or a trend picture."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from edge_agent.agent.clock import span_text
from edge_agent.agent.ops.connection import ClientError, resolve
from edge_agent.agent.ops.fleet import request


def _when(t_s: float) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.6g}"


def table(answer: dict[str, Any], key: str) -> str:
    """One line per bucket: time (UTC), min, mean, max, last, samples, share good."""
    s = answer["series"][key]
    unit = f" [{s['unit']}]" if s.get("unit") else ""
    lines = [f"{answer['instance']} {key}{unit}, per {answer['resolution']} (UTC)"]
    lines.append(f"{'time':<16} {'min':>10} {'mean':>10} {'max':>10} {'last':>10} {'n':>6} {'good':>6}")
    # where the rows resume: after the gap of a step forward, past the re-lived time of a step back
    steps = sorted(answer.get("clock_steps") or [], key=_resumes_s)  # older agents send none
    for t, lo, mean, hi, last, n, good in s["points"]:
        while steps and _resumes_s(steps[0]) <= t:
            lines.append(_step_line(steps.pop(0)))
        lines.append(
            f"{_when(t):<16} {_fmt(lo):>10} {_fmt(mean):>10} {_fmt(hi):>10} {_fmt(last):>10} {n:>6} {good:>6.0%}"
        )
    lines += [_step_line(c) for c in steps]
    if not s["points"]:
        lines.append("(no history in this range)")
    return "\n".join(lines)


def _resumes_s(step: dict[str, Any]) -> float:
    return max(step["from_ms"], step["to_ms"]) / 1000


def _step_line(step: dict[str, Any]) -> str:
    """A clock step between two rows: the trend has a gap (forward) or re-lived time (back) there."""
    way = "forward" if step["step_s"] > 0 else "back"
    return (
        f"-- the agent's clock stepped {way} by {span_text(abs(step['step_s']))} "
        f"({_when(step['from_ms'] / 1000)} -> {_when(step['to_ms'] / 1000)}) --"
    )


def write_csv(answer: dict[str, Any], key: str, path: Path) -> None:
    """time_utc, t_s, then the answer's columns."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time_utc", *answer["columns"]])
        for row in answer["series"][key]["points"]:
            w.writerow([_when(row[0]), *row])


def cmd_history(args: argparse.Namespace) -> int:
    """Ask the agent, then print, write CSV or draw; exit 0 ok, 1 refused, 2 no answer."""
    req = {"instance": args.instance, "args": {"keys": [args.key], "since": args.since, "resolution": args.resolution}}
    try:
        d = request(resolve(args), args.agent_id, "history", req, args.timeout)
    except ClientError as exc:
        raise SystemExit(f"history: {exc}") from exc
    if d is None:
        print(f"history: no answer from {args.agent_id} within {args.timeout:g} s", file=sys.stderr)
        return 2
    if not d.get("ok"):
        print(f"history: {d.get('error')}", file=sys.stderr)
        return 1
    answer = d["result"]
    if args.csv:
        write_csv(answer, args.key, Path(args.csv))
        print(f"history: {len(answer['series'][args.key]['points'])} rows -> {args.csv}")
    if args.png:
        from edge_agent.agent.ops import plots

        plots.trend(answer, Path(args.png))
        print(f"history: picture -> {args.png}")
    if not args.csv and not args.png:
        print(table(answer, args.key))
    return 0
