"""Client side of the maintenance commands: ``edge-agent report`` and ``edge-agent capture
--list/--get`` (a saved capture fetched in chunks, written as a file, plotted with ``--plot``)."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops import report_render as render
from edge_agent.agent.ops.answers import table
from edge_agent.agent.ops.capture import _collect, _pump
from edge_agent.agent.ops.connection import ClientError, ClientSettings, Connection, resolve
from edge_agent.agent.ops.fleet import request


def cmd_report(args: argparse.Namespace) -> int:
    """``edge-agent report AGENT [--line L] [--shift NAME | --last] [--png FILE] [--json]``."""
    try:
        s = resolve(args)
        req = {"args": {"line": args.line, "shift": args.shift, "limit": 1}}
        d = request(s, args.agent_id, "report", req, args.timeout)
    except ClientError as exc:
        raise SystemExit(f"report: {exc}") from exc
    if d is None:
        print(f"report: no answer from {args.agent_id} within {args.timeout:g} s", file=sys.stderr)
        return 2
    if not d.get("ok"):
        print(f"report: {d.get('error')}", file=sys.stderr)
        return 1
    report = d["result"]["reports"][0]
    if args.json:
        print(json.dumps(codec.to_jsonable(report), indent=1))
    else:
        print(render.table(report))
    if args.png:
        from edge_agent.agent.ops import plots

        plots.report(report, Path(args.png))
        print(f"report: picture -> {args.png}")
    return 0


def fetch(s: ClientSettings, agent: str, cid: str, timeout_s: float) -> dict[str, Any] | list[dict[str, Any]]:
    """The chunks of ``cmd/capture_get`` (list), an error answer (dict) or {} (no answer)."""
    topic = f"{s.prefix}/{agent}/cmd/capture_get"
    req_id = uuid.uuid4().hex[:12]
    inbox: queue.Queue[Any] = queue.Queue()
    with Connection(s, [topic + "/result"], name="edge-capture-get") as conn:
        conn.publish(topic, msgpack.packb({"id": req_id, "args": {"id": cid}}))
        deadline = time.monotonic() + timeout_s
        threading.Thread(target=_pump, args=(conn, inbox, deadline), daemon=True).start()
        return _collect(inbox, req_id, deadline)


def list_captures(s: ClientSettings, agent: str, timeout_s: float) -> int:
    d = request(s, agent, "captures", {}, timeout_s)
    if d is None or not d.get("ok"):
        print(f"capture: {'no answer' if d is None else d.get('error')}", file=sys.stderr)
        return 2 if d is None else 1
    caps = d["result"]["captures"]
    st = d["result"]["stats"]
    print(
        f"{len(caps)} capture(s), {st['disk_bytes'] / 1e6:.1f} MB; evicted {st['evicted_total']}, "
        f"suppressed by hold-off {st['suppressed_total']}, skipped for daily_mb {st.get('skipped_total', 0)}"
    )
    rows = [
        {
            "id": c["id"],
            "instance": c.get("instance"),
            "trigger": c.get("trigger"),
            "time (UTC)": _utc(c.get("ts_ms") or c.get("mtime_ms")),
            "raw s": c.get("raw_s"),
            "features s": c.get("features_s"),
            "kB": round(c["bytes"] / 1024),
        }
        for c in caps
    ]
    print("\n".join("  " + line for line in table(rows)))
    return 0


def _utc(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def get_capture(
    s: ClientSettings, agent: str, cid: str, out: str | None, plot_path: str | None, timeout_s: float
) -> int:
    answer = fetch(s, agent, cid, timeout_s)
    if isinstance(answer, dict):
        print(f"capture: {answer.get('error', 'no answer') if answer else 'no answer'}", file=sys.stderr)
        return 1 if answer else 2
    data = b"".join(bytes(c["data"]) for c in answer)
    path = Path(out or f"{cid}.cap")
    path.write_bytes(data)
    doc = msgpack.unpackb(data, raw=False)
    print(describe(doc) + f"\ncapture: {len(data)} bytes -> {path}")
    if plot_path:
        from edge_agent.agent.ops import plots

        plots.recording(doc, Path(plot_path))
        print(f"capture: plot -> {plot_path}")
    return 0


def describe(doc: dict[str, Any]) -> str:
    m = doc["meta"]
    lines = [f"capture {m['id']}: rule {m['rule']}, trigger {m['trigger']}"]
    for inst, series in doc["series"].items():
        if series["kind"] == "waveform":
            pre = series["trigger_offset_s"]
            dur = series["n"] / series["rate_hz"]
            lines.append(
                f"  {inst}: {series['n']} samples x {len(series['axes'])} axes at {series['rate_hz']:g} Hz "
                f"({pre:.1f} s before the trigger, {dur - pre:.1f} s after)"
            )
        elif series["kind"] == "values":
            lines.append(f"  {inst}: {len(series['rows'])} readings")
        else:
            lines.append(f"  {inst}: no data in the ring (was it recorded?)")
    lines.append(f"  snapshot of {len(doc['snapshot'])} instance(s) at the trigger")
    return "\n".join(lines)
