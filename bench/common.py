"""Shared helpers for the bench scripts: a TOML writer for config shapes, /proc sampling of a
process, percentiles and a description of the machine the figures were taken on."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the repository
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- TOML ---------------------------------------------------------------------------------------
def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def _value(v: Any) -> str:
    """One TOML value, written inline (nested tables become inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def toml_dumps(data: dict[str, Any]) -> str:
    """Write a parsed config back as TOML: top-level tables as [t], arrays of tables as [[t]],
    everything below inline. Checked by parsing the result again (ValueError if it differs)."""
    head: list[str] = []
    tail: list[str] = []
    for k, v in data.items():
        if isinstance(v, dict):
            tail += ["", f"[{_key(k)}]"] + [f"{_key(a)} = {_value(b)}" for a, b in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                tail += ["", f"[[{_key(k)}]]"] + [f"{_key(a)} = {_value(b)}" for a, b in item.items()]
        else:
            head.append(f"{_key(k)} = {_value(v)}")
    text = "\n".join(head + tail) + "\n"
    if tomllib.loads(text) != data:
        raise ValueError("the written TOML does not read back as the same data")
    return text


# -- /proc ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcSample:
    """One look at a process: CPU seconds so far (all threads), RSS, threads, open fds, and RSS split
    into anonymous memory (the process's own data) and mapped files (code of Python, numpy, OpenSSL...)."""

    cpu_s: float
    rss_kb: int
    threads: int
    fds: int
    rss_anon_kb: int = 0
    rss_file_kb: int = 0


def proc_sample(pid: int) -> ProcSample:
    """Read /proc/PID/stat, /proc/PID/status and /proc/PID/fd (raises OSError once it is gone)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is the state (3rd)
    cpu_s = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (14th, 15th)
    status: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            status[name] = rest.strip()

    def kb(key: str) -> int:
        return int(status.get(key, "0 kB").split()[0])

    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcSample(cpu_s, kb("VmRSS"), int(status.get("Threads", "0")), fds, kb("RssAnon"), kb("RssFile"))


# -- statistics -----------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- the machine ----------------------------------------------------------------------------------
def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def machine() -> dict[str, str]:
    """CPU model, cores, memory, OS, kernel, Python: enough to judge where figures came from."""
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": _lscpu_model(),
        "cores": str(os.cpu_count() or 0),
        "arch": platform.machine(),
        "mem_gb": f"{mem_kb / 1048576:.1f}",
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def pss_kb(pid: int) -> int:
    """Proportional set size (shared pages split among the processes mapping them), in kB."""
    return smaps_rollup_kb(pid).get("Pss", 0)


def uss_kb(rollup: dict[str, int]) -> int:
    """Unique set size: the pages only this process maps (what stopping it would give back), in kB."""
    return rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)


def smaps_rollup_kb(pid: int) -> dict[str, int]:
    """Every ``kB`` line of ``/proc/PID/smaps_rollup`` (Rss, Pss, Pss_Anon, Pss_File, Private_Dirty...)."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                out[name] = int(parts[0])
    return out


def thread_times(pid: int) -> dict[int, tuple[str, int]]:
    """Every thread of a process: tid -> (name, ns on a CPU so far) from ``task/*/schedstat``
    (exact run time, not 10-ms ticks). Threads that ended between listing and reading are left out."""
    out: dict[int, tuple[str, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[int(tid)] = (name, int(f.read().split()[0]))
        except OSError:
            continue
    return out


def thread_cpu_pct(
    before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], seconds: float
) -> dict[str, float]:
    """% of one core per thread name between two :func:`thread_times` looks (threads started in
    between count from 0; same-named threads are summed)."""
    out: dict[str, float] = {}
    for tid, (name, ns) in after.items():
        prev = before.get(tid, (name, 0))[1]
        out[name] = out.get(name, 0.0) + 100.0 * (ns - prev) / 1e9 / seconds
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
