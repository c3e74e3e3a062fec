"""Health of the edge box itself, read from /proc and /sys (Linux); absent items are omitted."""

from __future__ import annotations

import os
import resource
import shutil
import time
from pathlib import Path
from typing import Any

THERMAL = Path("/sys/class/thermal")


def cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [float(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return sum(values) - idle, sum(values)


def cpu_temp_c() -> float | None:
    """The first thermal zone's temperature (the SoC on a Pi), or None."""
    for zone in sorted(THERMAL.glob("thermal_zone*/temp")):
        try:
            return int(zone.read_text().strip()) / 1000.0
        except (OSError, ValueError):
            continue
    return None


def memory() -> dict[str, float]:
    """Total and available memory in MB from /proc/meminfo."""
    info: dict[str, float] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                info[key] = float(rest.split()[0]) / 1024.0
    except OSError:
        return {}
    return info


def process_rss_mb() -> float:
    """This process's resident set size in MB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def process_cpu_s() -> float:
    """User + system CPU seconds used by this process so far."""
    t = os.times()
    return t.user + t.system


def disk_free(path: str) -> tuple[float, float] | None:
    """(free MB, free %) of the file system holding ``path``."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free / 1e6, 100.0 * usage.free / usage.total


def snapshot(path: str) -> dict[str, Any]:
    """Everything above in one dict, with a monotonic timestamp for rate computations."""
    return {
        "mono": time.monotonic(),
        "cpu": cpu_times(),
        "load_1m": os.getloadavg()[0],
        "temp_c": cpu_temp_c(),
        "mem": memory(),
        "rss_mb": process_rss_mb(),
        "proc_cpu_s": process_cpu_s(),
        "disk": disk_free(path),
    }
