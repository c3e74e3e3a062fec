"""The agent as a child process that the soak stops and starts again, sampled from /proc."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, proc_sample
from bench.plant.agent_process import agent_command


@dataclass(frozen=True)
class Tick:
    """One look at the agent (every second): CPU s, RSS, bytes written to storage, threads, fds."""

    t: float
    pid: int
    cpu_s: float
    rss_kb: int
    write_bytes: int
    threads: int
    fds: int


@dataclass(frozen=True)
class MemLook:
    """RSS, PSS and USS from smaps_rollup (every 10 s: the kernel walks the page tables for it)."""

    t: float
    pid: int
    rss_kb: int
    pss_kb: int
    uss_kb: int


class Agent:
    """``edge-agent run -c CONFIG`` that can be stopped with SIGTERM and started again."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.command = agent_command(config)
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []
        self.faked: list[bool] = []  # per start: under libfaketime
        self.stops: list[tuple[float, float, int | None]] = []  # SIGTERM sent, exited, exit code

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        self.starts.append(time.time())
        self.faked.append("LD_PRELOAD" in self.env and "faketime" in self.env["LD_PRELOAD"])

    def stop(self) -> None:
        """SIGTERM, then wait (30 s at most, then SIGKILL) and note the exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        sent = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.stops.append((sent, time.time(), code))

    def tick(self) -> Tick:
        """One look (raises OSError once the process is gone)."""
        s = proc_sample(self.pid)
        return Tick(time.time(), self.pid, s.cpu_s, s.rss_kb, _write_bytes(self.pid), s.threads, s.fds)

    def mem(self) -> MemLook:
        rollup = _rollup(self.pid)
        uss = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
        return MemLook(time.time(), self.pid, rollup.get("Rss", 0), rollup.get("Pss", 0), uss)


def _write_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def _rollup(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[key] = int(rest.split()[0])
    return out
