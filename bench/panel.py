"""The panel's footprint: RSS and CPU of the panel process idle and with one tablet watching live.

    .venv/bin/python bench/panel.py [--seconds 60]

Starts a broker, the small plant of the panel tests (tests/panel_plant.py: a temperature instance
at 1 Hz, maintenance, recorder) and the panel; measures the panel process only (/proc: utime +
stime over the window, VmRSS at the end): first with nobody looking, then with headless Chromium
on the instance page (live values and the trend, updated by Server-Sent Events), at 1280x800.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge_agent.agent.devtools.local_broker import LocalBroker  # noqa: E402
from panel_plant import PanelPlant  # noqa: E402

from bench.common import proc_sample  # noqa: E402


def window(pid: int, seconds: float) -> tuple[float, float]:
    """(CPU % of one core over the window, RSS MB at its end)."""
    c0, t0 = proc_sample(pid).cpu_s, time.monotonic()
    time.sleep(seconds)
    end = proc_sample(pid)
    return 100 * (end.cpu_s - c0) / (time.monotonic() - t0), end.rss_kb / 1024


def tablet(url: str) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    o = Options()
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800"):
        o.add_argument(arg)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=o)
    d.get(url + "/#/a/line1/i/thermo-a")
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    broker = LocalBroker().start()
    with tempfile.TemporaryDirectory() as d:
        plant = PanelPlant(Path(d), broker)
        browser = None
        try:
            time.sleep(5)  # settle: imports done, retained state read
            pid = plant.panel.pid
            idle_cpu, idle_rss = window(pid, args.seconds)
            browser = tablet(plant.url)
            time.sleep(5)
            live_cpu, live_rss = window(pid, args.seconds)
            print(f"load average {os.getloadavg()[0]:.2f}, windows of {args.seconds:g} s")
            idle = f"CPU {idle_cpu:5.2f} % of one core, RSS {idle_rss:5.1f} MB"
            print(f"panel idle:             {idle} (target <= 0.5 %, <= 45 MB)")
            print(f"panel, one tablet live: CPU {live_cpu:5.2f} % of one core, RSS {live_rss:5.1f} MB (target <= 3 %)")
        finally:
            if browser is not None:
                browser.quit()  # type: ignore[attr-defined]
            plant.close()
            broker.close()


if __name__ == "__main__":
    main()
