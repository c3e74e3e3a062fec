"""Command answers for people: what ``edge-agent cmd`` prints (``--json`` keeps the raw answer).

A refusal is one line; a list of records is a table; a record is ``key: value`` lines with numbers
rounded to what they mean; bytes are named with how to save them. A few answers a technician
reads often (calibrate, status, ping) have a summary of their own. Also: ``--arg`` values, where
a list or object is JSON (``--arg points='[[40,40.8],[100,100.8]]'``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

MAX_ROWS = 50  # a longer table is cut, saying how many rows it had
MAX_CELL = 48  # characters of one table cell


def parse_args(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs: a value starting with ``[`` or ``{`` is JSON (a list, an object), ``KEY:=JSON``
    any JSON value (``--arg enabled:=true``); everything else is text (the agent reads numbers in text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--arg {pair!r}: expected KEY=VALUE")
        as_json = key.endswith(":")
        key = key.rstrip(":")
        if as_json or value.lstrip()[:1] in ("[", "{"):
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--arg {key}: not valid JSON ({exc.msg} at character {exc.pos}): {value!r}") from None
        else:
            out[key] = value
    return out


def refusal(agent: str, command: str, error: Any) -> str:
    """One line for a refused command."""
    return f"{agent}: {command} refused: {' '.join(str(error).split())}"


def number(v: float) -> str:
    """A number as people read it: integers whole, others to 4 significant digits (no float noise)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def cell(v: Any) -> str:
    """One value in a table or a ``key: value`` line."""
    if v is None:
        return "-"
    if isinstance(v, bool | int | float):
        return number(v)
    if isinstance(v, bytes | bytearray):
        return f"<{len(v)} bytes>"
    if isinstance(v, Mapping):
        text = ", ".join(f"{k}={cell(x)}" for k, x in v.items())
    elif isinstance(v, list | tuple):
        text = ", ".join(cell(x) for x in v)
    else:
        text = " ".join(str(v).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> list[str]:
    """Rows of records as an aligned text table (columns in first-seen order unless given)."""
    if not rows:
        return ["(none)"]
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows[:MAX_ROWS]:
            seen.update(dict.fromkeys(k for k, v in r.items() if not isinstance(v, bytes | bytearray)))
        columns = list(seen)
    shown = [[cell(r.get(c)) for c in columns] for r in rows[:MAX_ROWS]]
    widths = [max(len(c), *(len(s[i]) for s in shown)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(s.ljust(w) for s, w in zip(row, widths, strict=True)).rstrip() for row in shown]
    if len(rows) > MAX_ROWS:
        lines.append(f"... {len(rows) - MAX_ROWS} more rows (--json for all)")
    return lines


def _is_records(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def _is_keyed_records(v: Any) -> bool:
    return isinstance(v, Mapping) and len(v) > 1 and all(isinstance(x, Mapping) and x for x in v.values())


def generic(result: Any) -> list[str]:
    """Any answer: scalars as ``key: value``, lists of records and records by name as tables."""
    if _is_records(result):
        return table(result)
    if not isinstance(result, Mapping):
        return [cell(result) if not isinstance(result, str) else result]
    lines: list[str] = []
    later: list[str] = []
    for key, v in result.items():
        if isinstance(v, bytes | bytearray):
            lines.append(f"{key}: {len(v)} bytes (save with --save {key}=FILE)")
        elif _is_records(v):
            later += ["", f"{key}:", *("  " + row for row in table(v))]
        elif _is_keyed_records(v):
            rows = [{"name": k, **x} for k, x in v.items()]
            later += ["", f"{key}:", *("  " + row for row in table(rows))]
        else:
            lines.append(f"{key}: {cell(v)}")
    return lines + later if lines else later[1:]


def _indented(title: str, lines: list[str]) -> list[str]:
    return ["", title, *("  " + line for line in lines)]


def _history(history: Sequence[Any]) -> list[str]:
    """Past calibration records and checks, newest first, as a table."""
    rows = []
    for h in history:
        rec = h.get("record", h) if isinstance(h, Mapping) else None
        if isinstance(rec, Mapping):
            check = rec.get("check")
            rows.append(
                {
                    "when": rec.get("when") or (check or {}).get("when"),
                    "by": rec.get("by") or (check or {}).get("by"),
                    "what": "check" if check else "cleared" if rec.get("cleared") else "calibration",
                    "as found": rec.get("as_found_error"),
                    "as left": (check or {}).get("error", rec.get("as_left_error")),
                }
            )
    return _indented("history:", table(rows)) if rows else []


def _applied(rec: Mapping[str, Any]) -> list[str]:
    """A calibration record: who and when, the correction, as found and as left with units."""
    from edge_agent.agent.maintenance.calibration import fmt_error

    unit = str(rec.get("unit", ""))
    coeff = rec.get("coefficients") or {}
    checks = rec.get("as_left") or []
    left = fmt_error(rec.get("as_left_error"), unit) + ("" if checks else " (send action=check against a reference)")
    lines = [
        f"{rec.get('instance')}/{rec.get('channel')} calibrated by {rec.get('by')} at {rec.get('when')}",
        f"  correction: {coeff.get('mode')}, gain {number(coeff.get('gain', 1.0))}, "
        f"offset {number(coeff.get('offset', 0.0))} {unit}".rstrip(),
        f"  as found: {fmt_error(rec.get('as_found_error'), unit)} (reading minus reference, worst point)",
        f"  as left:  {left}",
        f"  next due: {rec.get('next_due')}",
    ]
    points = [
        {
            "reading": r.get("reading"),
            "reference": r.get("reference"),
            "as found": fmt_error(r.get("as_found_error"), unit),
        }
        for r in rec.get("references") or []
    ]
    checked = [
        {"reference": c.get("reference"), "reading": c.get("reading"), "as left": fmt_error(c.get("error"), unit)}
        for c in checks
    ]
    return lines + _indented("points:", table(points)) + (_indented("checks:", table(checked)) if checked else [])


def _calibrate(result: Mapping[str, Any]) -> list[str]:
    """A calibration answer as a technician reads it: points, signed errors with units, checks."""
    from edge_agent.agent.maintenance.calibration import fmt_error

    unit = str(result.get("unit", ""))
    if "active" in result:  # show
        rec = result.get("active")
        lines = _applied(rec) if isinstance(rec, Mapping) else ["no active calibration"]
        if result.get("pending"):
            lines.append("pending points (reading, reference): " + cell(result["pending"]))
        return lines + _history(result.get("history") or [])
    if "references" in result:  # apply
        return _applied(result)
    if "error" in result and "reference" in result:  # check
        reading = number(result.get("reading", math.nan))
        at = f"{number(result['reference'])} {unit}".rstrip()
        return [f"{result.get('channel')}: as left {fmt_error(result.get('error'), unit)} at {at} (reading {reading})"]
    if "points" in result:  # point
        line = (
            f"{result.get('channel')}: point {len(result['points'])}: reading {number(result.get('reading', math.nan))}"
            f" against reference {number(result.get('reference', math.nan))}"
        )
        return [line] + ([f"  warning: {result['warning']}"] if result.get("warning") else [])
    return generic(result)


def _status(result: Mapping[str, Any]) -> list[str]:
    stats = result.get("stats") or {}
    config = result.get("config") or {}
    broker = "connected" if stats.get("connected") else "NOT connected"
    lines = [
        f"up {_uptime(stats)}, broker {broker}, queue {stats.get('queue_depth', '-')}, "
        f"sent {stats.get('sent', '-')}, reconnects {stats.get('reconnects', '-')}",
        f"config version {config.get('version')} (desired {config.get('desired_version')})",
    ]
    rows = [{"instance": k, **v} for k, v in (stats.get("instances") or {}).items() if isinstance(v, Mapping)]
    return [*lines, "", *table(rows)] if rows else lines


def _ping(result: Mapping[str, Any]) -> list[str]:
    return [f"pong (up {_uptime(result)})"]


def _uptime(d: Mapping[str, Any]) -> str:
    s = float(d.get("uptime_s") or 0.0)
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s:.0f} s"


SUMMARIES: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "calibrate": _calibrate,
    "status": _status,
    "ping": _ping,
}


def summary(agent: str, command: str, answer: Mapping[str, Any]) -> str:
    """What a person reads for an answer: one line for a refusal, else the command's summary."""
    if not answer.get("ok"):
        return refusal(agent, command, answer.get("error"))
    result = answer.get("result")
    special = SUMMARIES.get(command)
    try:
        lines = special(result) if special is not None and isinstance(result, Mapping) else generic(result)
    except (TypeError, ValueError, KeyError, AttributeError):  # an answer of another shape: still readable
        lines = generic(result)
    return "\n".join(lines) if lines else f"{agent}: {command}: done"
