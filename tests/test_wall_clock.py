"""Intervals and schedules run on the monotonic clock; the wall clock only stamps (issue 29).

A Pi has no real-time clock: NTP steps its wall clock by minutes to days after boot, and an
interval measured on it (``time.time() - t0``, ``deadline = time.time() + ttl``) jumps with it:
heartbeats storm or stop, durations go negative, shelves and sessions end early or late. This
test reads every module of the daemon (agent/, drivers/, plugins/; not the off-device tools in
agent/ops and agent/devtools, nor the test kits) and flags arithmetic and comparisons on the wall
clock: ``+``/``-`` or a comparison whose operand calls ``time.time``, ``time.time_ns``,
``datetime.now``, ``now_ms`` or ``time_ms``, or uses a name assigned from such a call in the same
function. Each flagged line is either wrong (use ``time.monotonic()``) or a calendar or stamp
decision that must be made on the wall clock, listed below with why. A new flagged line fails
with the advice; the list is keyed by the line's text, not its number, so edits elsewhere in a
file do not disturb it. (What it cannot see: a wall-clock function passed as a value, such as
``clock=time.time``, and used later; those are reviewed by hand: history's buckets and the alarm
list's stamps are wall time on purpose.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCOPE = ("agent", "drivers", "plugins")
SKIP = ("agent/ops/", "agent/devtools/", "/testing/")
WHOLE_FILE = {"agent/clock_watch.py": "the watch compares the wall clock with the monotonic one to find steps"}
WALL_ATTRS = {("time", "time"), ("time", "time_ns"), ("datetime", "now"), ("datetime", "utcnow"), ("date", "today")}
WALL_FUNCS = {"now_ms", "time_ms"}

# (file, the flagged line's text) -> why the wall clock is right there
ALLOWED = {
    ("agent/alarms/service.py", 'since = now_ms() - int(args["since_s"] * 1000)'):
        "a query window over stored wall-clock stamps (the audit of the last N s)",
    ("agent/maintenance/calibration.py", "due = now + round(interval * DAY_MS)"):
        "a calibration's due date is a calendar date",
    ("agent/maintenance/calibration.py",
     'state = "overdue" if now >= due else "due_soon" if now >= due - rec["warn_days"] * DAY_MS else "ok"'):
        "the calendar due date, judged by the wall clock (the daily reminder is monotonic)",
    ("agent/maintenance/calibration.py", 'else f"due {_due_text(rec)} (in {_span(due - now)})"'):
        "text: how long until the calendar due date",
    ("agent/maintenance/capture_store.py", "age_s = now_wall - st.st_mtime"):
        "the daily capture budget across a restart: file times are wall times (at start only)",
    ("agent/maintenance/shift_reports.py",
     "if isinstance(alive, int) and now - alive > GAP_MS:  # the agent was down (or not running) since"):
        "the agent's down time across a restart: the monotonic clock does not survive a reboot",
    ("agent/remote/authority.py",
     "if not isinstance(expires, int) or isinstance(expires, bool) or expires < now:"):
        "a signed command's expiry is an absolute time set by ops",
    ("agent/remote/authority.py", "if expires > now + MAX_COMMAND_TTL_S:"):
        "a signed command's expiry is an absolute time set by ops",
    ("agent/remote/config_push.py", 'expires = doc.get("expires") or int(time.time()) + 7 * 86400'):
        "how long a push's nonce is remembered, against absolute expiries",
    ("agent/remote/config_push.py", "if expires is not None and expires < time.time():"):
        "a pushed document's expiry is an absolute time set by ops",
    ("agent/state_files.py", "if now - aside.stat().st_ctime <= within_s:  # a rename sets ctime"):
        "a file's ctime (wall) against now, within the same start",
    ("plugins/production/plugin.py",
     "wall = dt.datetime.fromtimestamp(self.ctx.clock.time_ms() / 1000 - elapsed / 2, self.tz)"):
        "the shift calendar is wall time (its guards against steps: docs/maintenance.md)",
}  # fmt: skip


def _is_wall_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Name):
        return f.id in WALL_FUNCS
    if not isinstance(f, ast.Attribute):
        return False
    base = f.value
    owner = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else None
    return (owner, f.attr) in WALL_ATTRS or f.attr in WALL_FUNCS


def _uses_wall(node: ast.AST, names: set[str]) -> bool:
    return any(_is_wall_call(n) or (isinstance(n, ast.Name) and n.id in names) for n in ast.walk(node))


def _wall_names(fn: ast.AST) -> set[str]:
    """Names a function assigns from a wall-clock call (``now = time.time()``, ``a, b = now_ms(), 0``)."""
    names: set[str] = set()
    for st in ast.walk(fn):
        if not isinstance(st, ast.Assign):
            continue
        for target in st.targets:
            if isinstance(target, ast.Name) and _uses_wall(st.value, set()):
                names.add(target.id)
            elif isinstance(target, ast.Tuple) and isinstance(st.value, ast.Tuple):
                pairs = zip(target.elts, st.value.elts, strict=False)
                names |= {t.id for t, v in pairs if isinstance(t, ast.Name) and _uses_wall(v, set())}
    return names


def _on_wall(n: ast.AST, names: set[str]) -> bool:
    """``+``/``-`` with a wall-clock operand, or a comparison (not ``is``) with one."""
    if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
        return _uses_wall(n.left, names) or _uses_wall(n.right, names)
    if isinstance(n, ast.Compare) and not all(isinstance(op, (ast.Is, ast.IsNot)) for op in n.ops):
        return any(_uses_wall(o, names) for o in (n.left, *n.comparators))
    return False


def flagged(source: str) -> list[int]:
    """Lines with ``+``/``-`` or a comparison on the wall clock."""
    lines: set[int] = set()
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names = _wall_names(fn)
            lines |= {n.lineno for n in ast.walk(fn) if _on_wall(n, names)}
    return sorted(lines)


def test_the_check_sees_intervals_on_the_wall_clock() -> None:
    wrong = """
import time
def heartbeat(last):
    now = time.time()
    if now - last > 10:
        return True
    deadline = time.time() + 5
    return now_ms() >= deadline
def fine(t0):
    stamp = time.time_ns() // 1_000_000
    return time.monotonic() - t0, stamp, stamp is None
"""
    assert flagged(wrong) == [5, 7, 8]


def test_the_daemon_measures_intervals_on_the_monotonic_clock() -> None:
    bad = []
    for top in SCOPE:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(s in f"/{rel}" for s in SKIP) or rel in WHOLE_FILE:
                continue
            text = path.read_text(encoding="utf-8")
            lines = text.splitlines()
            bad += [
                f"{rel}:{n}: {lines[n - 1].strip()}"
                for n in flagged(text)
                if (rel, lines[n - 1].strip()) not in ALLOWED
            ]
    assert not bad, (
        "arithmetic or a comparison on the wall clock, which NTP steps by minutes to days (issue 29):\n  "
        + "\n  ".join(bad)
        + "\nMeasure intervals, deadlines and cadences with time.monotonic(); if the line is a calendar or "
        "stamp decision that must follow the wall clock, add it to ALLOWED in tests/test_wall_clock.py with why."
    )
