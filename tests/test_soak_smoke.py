"""The soak bench (``python -m bench.soak``) keeps working: a 40-s run of its scenario, scaled down
(faults, outages through the relay, clock steps under libfaketime, commands, a push, a SIGTERM and
restart), writes its two result files and loses no message. It checks what the bench reports, never
how fast; the judgement of events and commands needs the hour (docs/performance.md, "Soak")."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")  # as bench/soak/faketime.py


@pytest.mark.slow
@pytest.mark.skipif(not LIBFAKETIME.exists() or shutil.which("gcc") is None, reason="needs faketime and gcc")
def test_soak_bench_smoke_run(tmp_path: Path) -> None:
    stem = tmp_path / "smoke"
    cmd = [sys.executable, "-m", "bench.soak", "--seconds", "40", "--warmup", "5", "--out", str(stem)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert Path(f"{stem}-timeline.csv").exists(), run.stdout[-3000:] + run.stderr[-3000:]
    with open(f"{stem}.csv", newline="") as f:
        figures = {row["metric"]: row["value"] for row in csv.DictReader(f)}
    assert figures["seq.gaps"] == "0" and figures["seq.dups"] == "0", run.stdout[-3000:]
    assert int(figures["msgs.total"]) > 0 and figures["msgs.undecodable"] == "0"
    assert int(figures["events.agent/clock_step/warning"]) >= 1, "the clock steps reach the agent"
    assert figures["agent.stop"] == "0", "SIGTERM stops the agent cleanly"
