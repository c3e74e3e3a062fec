"""``--profile``: py-spy samples the running agent after warm-up; the top functions, waits left out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def start_profiler(pid: int, duration_s: int, tmp: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording the agent for ``duration_s`` (None, with a note, if py-spy is not installed)."""
    exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if exe is None:
        print(
            "note: py-spy not found (pip install py-spy in .venv); no profile",
            file=sys.stderr,
        )
        return None
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(duration_s),
        "--rate",
        "250",
        "--nonblocking",
        "--format",
        "raw",
        "--output",
        str(tmp / "profile.txt"),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp / "py-spy.log", "wb"))


def finish_profiler(profiler: subprocess.Popen[bytes], tmp: Path) -> str:
    """Wait for py-spy and summarise what it recorded."""
    try:
        profiler.wait(60)
    except subprocess.TimeoutExpired:
        profiler.kill()
    path = tmp / "profile.txt"
    if not path.exists():
        return "py-spy wrote no profile: " + (tmp / "py-spy.log").read_text(errors="replace")[-500:]
    return summarize_profile(path.read_text(errors="replace"))


WAITS = {
    "Condition.wait",
    "Event.wait",
    "EpollSelector.select",
    "_worker",
    "SimpleQueue.get",
    "Thread.join",
}


def summarize_profile(raw: str, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's folded stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [f.split(" (", 1)[0] + " " + _short(f) for f in stack.split(";")]
        if frames[-1].split(" ", 1)[0] in WAITS:
            continue  # py-spy's idle detection misses short timed waits: a thread asleep is not CPU
        total += int(n)
        own[frames[-1]] += int(n)
        for fr in set(frames):
            incl[fr] += int(n)
    if not total:
        return "no samples"
    lines = [
        f"py-spy: {total} samples (250 Hz) of running threads (waits left out)",
        f"{'self %':>7} {'incl %':>7}  function",
    ]
    for fr, k in own.most_common(top):
        lines.append(f"{100 * k / total:7.1f} {100 * incl[fr] / total:7.1f}  {fr}")
    lines += [
        "",
        f"{'incl %':>7}  function (inclusive, our code and the libraries it calls)",
    ]
    for fr, k in incl.most_common(top + 15):
        lines.append(f"{100 * k / total:7.1f}  {fr}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    loc = frame.rsplit(" (", 1)[-1].rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in loc:
            loc = loc.split(marker, 1)[1]
    return f"({loc})"
