"""On-device history: bytes written per day at the reference plant, file size, query times.

    .venv/bin/python bench/history.py [--days 1] [--dir DIR]

Simulates the reference plant's numeric values (559 keys in 12 instances; the PLC's tags by
exception as published, and the worst case: every key varying in every minute) at full speed:
one commit per minute as the agent does (``History.flush``: write, hour roll-up, expiry), and
counts the bytes this process wrote (``/proc/self/io``: ``wchar`` = bytes handed to write(),
``write_bytes`` = bytes that reached the block device; the DIR must be on a real disk, not
tmpfs). Then 30 days of one temperature and one PLC instance, and the time of a 30-day query of
one value at minute and at hour resolution (the ``cmd/history`` path without MQTT).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from edge_agent.agent.history.service import History  # noqa: E402
from edge_agent.agent.history.settings import HistorySection  # noqa: E402
from edge_agent.agent.history.store import HOUR, MINUTE, Agg, HistoryStore  # noqa: E402

# numeric declared values per instance of examples/reference-plant.toml (bool/str/lists excluded)
PLANT = {
    "system": 15, "pump1-de": 26, "pump1-nde": 26, "fan2": 46, "thermo-a": 10, "thermo-b": 9,
    "plc1": 379, "gpio": 2, "line1": 27, "meter1": 3, "maintenance": 9, "recorder": 7,
}  # fmt: skip
SAMPLES_PER_MIN = {"system": 6, "line1": 6, "meter1": 12, "maintenance": 12, "recorder": 6}  # else 1 Hz


def io() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        k, v = line.split(":")
        out[k] = int(v)
    return out


def minute_rows(
    t_s: int, rng: random.Random, only: tuple[str, ...] = (), rbe: bool = False
) -> list[tuple[str, int, dict[str, Agg]]]:
    """One minute of every instance, random values (they do not compress). ``rbe``: the PLC's tags
    as published by exception (2 % of the tags change per second: ~70 % of them once or twice a
    minute, each minute a single value); else every key with a varying sample (the worst case)."""
    rows = []
    for inst, nkeys in PLANT.items():
        if only and inst not in only:
            continue
        n = SAMPLES_PER_MIN.get(inst, 60)
        aggs = {}
        for k in range(nkeys):
            lo = 20.0 + k + rng.random()
            if rbe and inst == "plc1":
                if rng.random() < 0.7:
                    aggs[f"k{k}"] = Agg(1, 1, 1, lo, lo, lo, lo)
                continue
            aggs[f"k{k}"] = Agg(n, n, n, lo, (lo + 0.5) * n, lo + 1.0, lo + rng.random())
        rows.append((inst, t_s, aggs))
    return rows


def write_days(directory: Path, days: float, journal: str, rbe: bool, commit_min: int = 1) -> None:
    """Minutes of the plant as the agent commits them, then bytes written per day."""
    clock = [1_780_000_000.0 // 86400 * 86400]
    h = History(directory, HistorySection(), lambda name: None, lambda: clock[0])
    h.store.close()
    h.store = HistoryStore(directory / "history.sqlite", journal)
    rng = random.Random(1)
    minutes = int(days * 1440)
    rows = [minute_rows(0, rng, rbe=rbe) for _ in range(20)]  # making rows costs more than writing them
    before, t0 = io(), time.process_time()
    for m in range(minutes):
        h._pending += [(i, int(clock[0]), a) for i, _t, a in rows[m % 20]]
        clock[0] += 60
        if (m + 1) % commit_min == 0:
            h.flush()
    cpu = time.process_time() - t0
    asyncio.run(h.close())  # counted: WAL's checkpoint copies every page a second time
    after = io()
    size = sum(p.stat().st_size for p in directory.glob("history.sqlite*"))
    per_day = 1440 / minutes
    what = "PLC by exception" if rbe else "every key varying every minute (worst case)"
    print(f"journal {journal}, commit every {commit_min} min, {what}: {days:g} simulated day(s), {h.rows_written} rows")
    print(f"  wchar (write() calls)        {(after['wchar'] - before['wchar']) * per_day / 1e6:8.1f} MB/day")
    print(
        f"  write_bytes (block device)   {(after['write_bytes'] - before['write_bytes']) * per_day / 1e6:8.1f} MB/day"
    )
    print(f"  files after the run          {size / 1e6:8.1f} MB")
    print(f"  CPU per minute (write, roll-up, expiry) {1000 * cpu / minutes:6.2f} ms")


def query_bench(directory: Path) -> None:
    """30 days of thermo-a and plc1, then one value over 30 days per minute and per hour."""
    h = History(directory, HistorySection(), lambda name: None)
    rng = random.Random(2)
    now = int(time.time()) // 60 * 60
    start = now - 30 * 86400
    rows = [minute_rows(0, rng, only=("thermo-a", "plc1")) for _ in range(10)]
    batch: list[tuple[str, int, dict[str, Agg]]] = []
    for i, t in enumerate(range(start, now, 60)):
        batch += [(inst, t, a) for inst, _t, a in rows[i % 10]]
        if len(batch) > 20_000:
            h.store.write(batch, {}, MINUTE)
            batch = []
    h.store.write(batch, {}, MINUTE)
    for iid, hour_s in h.store.hours_to_roll(now // 3600 * 3600):
        h.store.roll_hour(iid, hour_s)
    size = sum(p.stat().st_size for p in directory.glob("history.sqlite*"))
    print(f"30 days of thermo-a and plc1: {size / 1e6:.0f} MB")
    for inst in ("thermo-a", "plc1"):
        for res in (MINUTE, HOUR):
            t0 = time.perf_counter()
            pts = h.query(inst, "k3", now - 30 * 86400, now, res)
            ms = 1000 * (time.perf_counter() - t0)
            print(
                f"30-day query of one value of {inst} ({PLANT[inst]} keys) per {res}: {len(pts)} points in {ms:.0f} ms"
            )
    asyncio.run(h.close())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--journal", nargs="+", default=["WAL"], help="SQLite journal modes to compare")
    ap.add_argument("--commit-min", type=int, nargs="+", default=[1], help="minutes per commit to compare")
    ap.add_argument("--no-query", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="only the query figures")
    ap.add_argument("--dir", help="where to write (default: a temporary directory under /var/tmp)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir or "/var/tmp") as d:
        (Path(d) / "q").mkdir()
        for journal in [] if args.no_write else args.journal:
            for rbe in (True, False):
                for commit_min in args.commit_min:
                    where = Path(d) / f"{journal}-{rbe}-{commit_min}"
                    where.mkdir()
                    write_days(where, args.days, journal, rbe, commit_min)
        if not args.no_query:
            query_bench(Path(d) / "q")


if __name__ == "__main__":
    main()
