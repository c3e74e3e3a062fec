"""Start-to-first-publish, idle RSS and CPU of the agent on examples/minimal.toml.

Run by hand: .venv/bin/python -m bench.minimal [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge_agent.agent.devtools.local_broker import LocalBroker  # noqa: E402
from support import Subscriber  # noqa: E402

from bench.common import proc_sample  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalBroker() as broker:
        cfg = Path(tmp) / "minimal.toml"
        cfg.write_text(
            (ROOT / "examples" / "minimal.toml").read_text().replace("/tmp/edge-agent-minimal", f"{tmp}/state")
        )
        sub = Subscriber(broker.url, ["edge/+/data/#"])
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/edge-agent"), "run", "-c", str(cfg)],
            env={**os.environ, "EDGE_AGENT_MQTT_URL": broker.url},
            stderr=subprocess.DEVNULL,
        )
        try:
            first = sub.wait_for(lambda: sub.messages, 30, "first data message")[0]
            first_s = first.at - t0
            time.sleep(2)
            samples_cpu, samples_rss = [], []
            last_cpu, last_t = proc_sample(proc.pid).cpu_s, time.monotonic()
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                time.sleep(1)
                sample, t = proc_sample(proc.pid), time.monotonic()
                c = sample.cpu_s
                samples_cpu.append(100 * (c - last_cpu) / (t - last_t))
                samples_rss.append(sample.rss_kb / 1024)
                last_cpu, last_t = c, t
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
            t_stop = time.monotonic()
            proc.terminate()
            rc = proc.wait(10)
            stop_s = time.monotonic() - t_stop
        finally:
            if proc.poll() is None:
                proc.kill()
            sub.close()
    print(f"start to first publish : {first_s * 1000:.0f} ms (process start -> first data message at the broker)")
    print(
        f"idle CPU               : mean {statistics.mean(samples_cpu):.2f} % of a core, "
        f"max {max(samples_cpu):.2f} % over {len(samples_cpu)} 1-s samples"
    )
    print(f"RSS                    : {samples_rss[0]:.1f} MB -> {samples_rss[-1]:.1f} MB")
    print(f"threads                : {threads}")
    print(f"clean stop             : {stop_s * 1000:.0f} ms, exit code {rc}")


if __name__ == "__main__":
    main()
