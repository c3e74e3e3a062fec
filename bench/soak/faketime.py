"""The agent's wall clock under libfaketime (Debian's ``faketime``): stepped through a control file
while its monotonic clock runs on.

libfaketime 0.9.10 with ``DONT_FAKE_MONOTONIC=1`` makes ``clock_nanosleep`` fail with EINVAL, and
Python 3.11's ``time.sleep`` is ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``: every
``time.sleep`` in the agent (the MLX90640 driver, threads of libraries) would raise ``OSError``
only under the bench. A 6-line shim preloaded before libfaketime passes ``clock_nanosleep``
straight to the kernel (the monotonic clock is not faked, so that is exact).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")

SHIM_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req, struct timespec *rem) {
    return syscall(SYS_clock_nanosleep, clock, flags, req, rem) == 0 ? 0 : errno;
}
"""


class FakeClock:
    """The control file and the environment that puts an agent on it (offset 0 at first)."""

    def __init__(self, workdir: Path) -> None:
        if not LIBFAKETIME.exists() or shutil.which("gcc") is None:
            raise SystemExit(
                f"soak: the clock step needs {LIBFAKETIME} (apt-get install faketime) and gcc; or --no-clock"
            )
        self.file = workdir / "faketime"
        self.offset_s = 0.0
        self.set_offset(0.0)
        src = workdir / "sleep_shim.c"
        src.write_text(SHIM_C)
        self.shim = workdir / "sleep_shim.so"
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(self.shim), str(src)], check=True)

    def env(self) -> dict[str, str]:
        """LD_PRELOAD and libfaketime's settings; the file is read again at most once a second
        (FAKETIME_NO_CACHE costs 5.6 us per time() call here, the 1-s cache 0.17 us, 0.14 without)."""
        return {
            "LD_PRELOAD": f"{self.shim} {LIBFAKETIME}",
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_CACHE_DURATION": "1",
            "DONT_FAKE_MONOTONIC": "1",
        }

    def set_offset(self, offset_s: float) -> None:
        """Put the agent's wall clock ``offset_s`` from the real one (a step of the difference)."""
        self.offset_s = offset_s
        self.file.write_text(f"{offset_s:+.0f}\n")
