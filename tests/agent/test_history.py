"""On-device history: aggregates, the packed rows, hours, retention, a SIGKILL, cmd/history."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.history.service import History, auto_resolution, parse_since
from edge_agent.agent.history.settings import HistorySection
from edge_agent.agent.history.store import (
    HOUR,
    MINUTE,
    Agg,
    HistoryStore,
    PackedAggs,
    pack,
    unpack_all,
    unpack_one,
)
from edge_agent.agent.ops.history import table
from edge_agent.drivers.contract import DType, ValueSpec

T0 = 1_780_000_000 // 3600 * 3600  # an hour boundary


def agg(*values: float | None, bad: int = 0) -> Agg:
    a = Agg()
    for i, v in enumerate(values):
        a.add(v, i >= bad)
    return a


def test_aggregate_of_good_bad_and_missing_samples() -> None:
    a = agg(None, 3.0, 1.0, 2.0, bad=1)
    assert (a.n, a.good, a.v, a.lo, a.hi, a.last, a.mean) == (4, 3, 3, 1.0, 3.0, 2.0, 2.0)
    b = agg(10.0)
    a.merge(b)
    assert (a.n, a.v, a.hi, a.last, a.mean) == (5, 4, 10.0, 10.0, 4.0)
    assert math.isnan(Agg().mean)


def test_a_row_keeps_only_present_keys_and_reads_one_key_without_the_others() -> None:
    layout = [f"k{i}" for i in range(20)]
    aggs = {"k3": agg(1.0, 2.0), "k17": agg(5.0), "k19": agg(None)}
    blob = pack(layout, aggs, MINUTE)
    assert len(blob) == 2 * 3 + 22 + 2 * 10  # two bitmaps, one full record, two constant ones
    assert unpack_one(blob, 20, 4, MINUTE) is None
    k3, k17, k19 = (unpack_one(blob, 20, i, MINUTE) for i in (3, 17, 19))
    assert k3 is not None and (k3.n, k3.lo, k3.mean, k3.hi, k3.last) == (2, 1.0, 1.5, 2.0, 2.0)
    assert k17 is not None and (k17.n, k17.last, k17.mean) == (1, 5.0, 5.0)
    assert k19 is not None and (k19.n, k19.v) == (1, 0) and math.isnan(k19.last)
    assert sorted(unpack_all(blob, layout, MINUTE)) == ["k17", "k19", "k3"]


def test_a_value_beyond_float32_is_stored_as_infinity_not_lost_with_its_row() -> None:
    """One PLC value of 1e39 made pack() raise OverflowError: the commit lost every instance's minute."""
    aggs = {"huge": agg(1e39, 2.0), "neg": agg(-1e39), "ok": agg(1.5, 2.5)}
    layout = sorted(aggs)
    blob = pack(layout, aggs, MINUTE)
    huge, neg, ok = (unpack_one(blob, 3, i, MINUTE) for i in range(3))
    assert huge is not None and huge.hi == math.inf and huge.lo == 2.0 and huge.last == 2.0
    assert neg is not None and neg.lo == -math.inf
    assert ok is not None and (ok.lo, ok.hi) == (1.5, 2.5)


def test_a_packed_bucket_reads_back_every_aggregate_exactly() -> None:
    aggs = {"a": agg(None, 3.0, 1.0, 2.0, bad=1), "b": agg(None), "c": agg(0.1, 1e30, -2.5), "d": Agg()}
    aggs["e"] = agg(*([7.25] * 70_000))  # a count past a minute row's 16 bits stays exact in memory
    packed = PackedAggs.of(aggs)
    assert list(packed) == list(aggs) and len(packed) == 5 and "c" in packed and "x" not in packed
    for key, a in aggs.items():
        b = packed[key]
        assert (b.n, b.good, b.v, b.total) == (a.n, a.good, a.v, a.total)
        assert repr((b.lo, b.hi, b.last)) == repr((a.lo, a.hi, a.last))  # NaN (no number) kept as NaN
    with pytest.raises(KeyError):
        packed["x"]
    assert pack(sorted(aggs), packed, MINUTE) == pack(sorted(aggs), aggs, MINUTE)  # the same row on disk
    # an instance's minutes share their key order; another order or key set gets its own
    assert PackedAggs.of(aggs, packed.order).order is packed.order
    assert PackedAggs.of(dict(reversed(aggs.items())), packed.order).order is not packed.order


def test_store_query_layouts_grow_and_hours_roll_up(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite")
    s.write([("pump", T0 + 60 * m, {"a": agg(float(m))}) for m in range(30)], {"pump": {"a": "mm/s"}})
    # a new key later: a new layout; the old rows keep theirs
    s.write([("pump", T0 + 60 * m, {"a": agg(float(m)), "b": agg(1.0)}) for m in range(30, 60)], {})
    pts = s.query("pump", "a", T0, T0 + 3600)
    assert [p.t_s for p in pts] == [T0 + 60 * m for m in range(60)] and pts[59].last == 59.0
    assert len(s.query("pump", "b", T0, T0 + 3600)) == 30
    assert s.query("pump", "nope", T0, T0 + 3600) == [] and s.query("nobody", "a", 0, T0 * 2) == []
    assert s.keys() == {"pump": {"a": "mm/s", "b": ""}}
    assert s.hours_to_roll(T0 + 3600) == [(1, T0)]
    s.roll_hour(1, T0)
    assert s.hours_to_roll(T0 + 3600) == []
    (hour,) = s.query("pump", "a", T0, T0 + 3600, HOUR)
    assert (hour.n, hour.min, hour.max, hour.mean, hour.last) == (60, 0.0, 59.0, 29.5, 59.0)
    s.close()


def test_expiry_by_age_and_by_size(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite")
    layout_keys = {f"tag{i}": agg(float(i)) for i in range(200)}
    days = 5
    for d in range(days):
        s.write([("plc", T0 + d * 86400 + 60 * m, layout_keys) for m in range(0, 1440, 10)], {})
    full = s.size_bytes()
    s.expire(T0 + days * 86400, minute_days=3, hour_days=730, max_bytes=10**9)
    assert s.query("plc", "tag1", 0, T0 * 2)[0].t_s >= T0 + 2 * 86400
    s.expire(T0 + days * 86400, minute_days=30, hour_days=730, max_bytes=full // 3)
    assert s.size_bytes() <= full // 3
    assert s.query("plc", "tag1", 0, T0 * 2)  # the newest day is kept
    s.close()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_service_trends_declared_numbers_with_quality(tmp_path: Path) -> None:
    specs = (
        ValueSpec("motor.temp_c", DType.FLOAT32, "degC"),
        ValueSpec("running", DType.BOOL),
        ValueSpec("peaks", DType.FLOAT32, length=5),
        ValueSpec("state", DType.STR),
    )
    clock = Clock(T0 + 5)
    h = History(tmp_path, HistorySection(), lambda name: specs if name == "thermo" else None, clock)
    for i in range(10):
        q = {"motor.temp_c": "out_of_range"} if i == 9 else None
        msg = {"motor": {"temp_c": 20.0 + i}, "running": True, "peaks": [1.0], "state": "ok", "other": 1}
        h.data("thermo", msg, q, (T0 + i) * 1000)
    h.data("free", {"x": 1, "flag": False, "s": "no"}, None, (T0 + 1) * 1000)  # declares nothing: numbers
    assert h.catalog() == {"thermo": {"motor.temp_c": "degC"}, "free": {"x": ""}}
    (live,) = h.query("thermo", "motor.temp_c", T0, T0 + 60, MINUTE)  # the open minute answers too
    assert (live.n, live.good_share, live.last) == (10, 0.9, 29.0)
    clock.t = T0 + 61
    h.close_minutes(clock.t)
    (closed,) = h.query("thermo", "motor.temp_c", T0, T0 + 60, MINUTE)  # closed, packed, not yet written
    assert closed == live
    h.flush()
    assert h.store.query("thermo", "motor.temp_c", T0, T0 + 60)[0].max == 29.0
    answer = asyncio.run(h.command("history", {"instance": "thermo", "keys": ["motor.temp_c"], "since": "1h"}))
    assert answer["resolution"] == "minute" and answer["series"]["motor.temp_c"]["unit"] == "degC"
    assert answer["series"]["motor.temp_c"]["points"][0][:5] == [T0, 20.0, 24.5, 29.0, 29.0]
    for bad, why in (({}, "needs an instance"), ({"instance": "thermo", "since": "soon"}, "not a duration"),
                     ({"instance": "thermo", "resolution": "second"}, "resolution")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            asyncio.run(h.command("history", bad))
    asyncio.run(h.close())


def test_durations_and_resolutions() -> None:
    assert parse_since("7d") == 7 * 86400 and parse_since("90m") == 5400 and parse_since("30") == 30
    assert auto_resolution(86400) == MINUTE and auto_resolution(7 * 86400) == HOUR


_WRITER = """
import sys, time
from pathlib import Path
from edge_agent.agent.history.store import Agg, HistoryStore
s = HistoryStore(Path(sys.argv[1]))
t = int(sys.argv[2])
m = 0
while True:
    a = Agg(); a.add(float(m), True)
    s.write([("pump", t + 60 * m, {"v": a, **{f"k{i}": a for i in range(300)}})], {})
    print(m, flush=True)
    m += 1
"""


@pytest.mark.slow
@pytest.mark.slow  # a subprocess
def test_a_sigkill_while_writing_keeps_every_committed_minute(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(T0)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        committed = [int(proc.stdout.readline()) for _ in range(200)][-1]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    s = HistoryStore(db)  # a transaction cut short left a hot journal: rolled back on open
    pts = s.query("pump", "v", T0, T0 + 10**7)
    assert len(pts) >= committed + 1 and [p.last for p in pts] == [float(i) for i in range(len(pts))]
    assert s.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "persist"
    s.close()


def test_a_commit_interval_is_one_transaction_minutes_hours_and_expiry(tmp_path: Path) -> None:
    """Each transaction costs the journal and its syncs: minutes, roll-ups and expiry share one."""
    s = HistoryStore(tmp_path / "h.sqlite")
    s.write([("old", T0 - 10 * 86400, {"a": agg(1.0)})], {})
    minutes = [(inst, T0 + 60 * m, {"a": agg(float(m))}) for m in range(120) for inst in ("p", "q")]
    before = s.commits
    assert s.commit(minutes, {}, roll_before_s=T0 + 7200, expire_at=(T0 + 7200, 3.0, 730.0)) == 240
    assert s.commits == before + 1
    hours = s.query("p", "a", T0, T0 + 7200, HOUR)
    assert [(p.t_s, p.n, p.min, p.max) for p in hours] == [(T0, 60, 0.0, 59.0), (T0 + 3600, 60, 60.0, 119.0)]
    assert s.query("old", "a", 0, T0 + 7200) == [], "past minute_days: deleted in the same transaction"
    s.close()


def test_cmd_history_against_a_running_agent(tmp_path: Path, broker: Any) -> None:
    from support import RemoteAgent, cmd, scaled

    agent = RemoteAgent(tmp_path, broker, extra="[history]\ncommit_interval_s = 1\n")
    try:
        agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/data/steady")) >= 10, 20, "data")
        answer = cmd(agent, "history", {"id": 1, "instance": "steady", "args": {"since": "10m"}})
        assert answer["ok"], answer
        (key,) = answer["result"]["series"]
        points = answer["result"]["series"][key]["points"]
        # samples of the current minute, and of the one before when the query came just after a
        # minute boundary (failed once at load 8: the new minute had fewer than 5 yet)
        assert points and sum(p[5] for p in points[-2:]) >= 5
        base = [sys.executable, "-m", "edge_agent.agent", "history", "t1", "steady", key, "--url", broker.url]
        shown = subprocess.run([*base, "--since", "10m"], capture_output=True, text=True, timeout=scaled(60))
        assert shown.returncode == 0 and f"steady {key}, per minute" in shown.stdout, shown.stderr
        out = tmp_path / "v.csv"
        png = tmp_path / "v.png"
        done = subprocess.run(
            [*base, "--csv", str(out), "--png", str(png)], capture_output=True, text=True, timeout=scaled(60)
        )
        assert done.returncode == 0, done.stderr
        assert out.read_text().splitlines()[0] == "time_utc,t_s,min,mean,max,last,n,good_share"
        assert png.read_bytes()[:4] == b"\x89PNG"
        (Path("/tmp") / "panel-trend.png").write_bytes(png.read_bytes())
        unknown = subprocess.run([*base[:-3], "nope", "--url", broker.url], capture_output=True, text=True)
        assert unknown.returncode == 0 and "no history in this range" in unknown.stdout
        time.sleep(1.5)  # one commit
        assert (tmp_path / "state" / "history.sqlite").exists()
    finally:
        agent.close()


def test_clock_steps_leave_a_visible_gap_and_never_count_twice(tmp_path: Path) -> None:
    """A step forward leaves a gap (and a marker); a step back neither merges samples into minutes
    already seen nor overwrites rows: samples before the newest closed minute are dropped until the
    clock has caught up (issue 29)."""
    clock = Clock(T0)
    h = History(tmp_path, HistorySection(), lambda name: None, clock)

    def feed(start_s: int, seconds: int, value: float) -> None:
        for i in range(seconds):
            clock.t = start_s + i
            h.data("m", {"x": value}, None, (start_s + i) * 1000)

    def step(step_s: float, from_s: int) -> None:
        fields = {"step_s": step_s, "from_ms": from_s * 1000, "to_ms": (from_s + int(step_s)) * 1000}
        h.event("agent", "clock_step", "", "warning", fields)

    feed(T0, 120, 1.0)  # two minutes at 1.0
    step(-3600.0, T0 + 120)
    feed(T0 - 3480, 3660, 2.0)  # an hour of the re-lived clock, then past where it was
    step(10800.0, T0 + 180)
    feed(T0 + 10980, 60, 3.0)
    h.close_minutes(math.inf)
    h.flush()
    pts = h.store.query("m", "x", 0, T0 + 86400)
    times = [p.t_s for p in pts]
    assert times == sorted(times) and len(times) == len(set(times)), "ordered, one row per minute"
    assert [(p.t_s, p.n, p.mean) for p in pts[:2]] == [(T0, 60, 1.0), (T0 + 60, 60, 1.0)], "not overwritten"
    assert all(p.n <= 60 for p in pts), "no minute holds samples of two clocks"
    assert h.dropped == 3480 + 120, "the hour re-lived before the newest minute is dropped, and counted"
    assert [p.t_s for p in pts if p.mean == 3.0] == [T0 + 10980 - 10980 % 60], "data after the forward step"
    ask = {"instance": "m", "keys": ["x"], "from_ms": 0, "until_ms": (T0 + 86400) * 1000, "resolution": "minute"}
    answer = asyncio.run(h.command("history", ask))
    assert [s["step_s"] for s in answer["clock_steps"]] == [-3600.0, 10800.0], "the reader sees both steps"
    text = table(answer, "x")
    assert "stepped back by 1 h 0 min" in text and "stepped forward by 3 h 0 min" in text, text
    lines = text.splitlines()
    gap = next(i for i, line in enumerate(lines) if "forward" in line)
    assert lines[gap - 1].split()[2] == "2" and lines[gap + 1].split()[2] == "3", f"the marker marks the gap: {text}"
    asyncio.run(h.close())
    again = History(tmp_path, HistorySection(), lambda name: None, Clock(T0))  # a restart with the clock behind
    again.data("m", {"x": 9.0}, None, T0 * 1000)
    assert again.dropped == 1, "a restart with the clock behind writes no older minute either"
    asyncio.run(again.close())


def test_a_clock_found_years_ahead_does_not_stop_history(tmp_path: Path) -> None:
    """A clock set years ahead by mistake, then corrected: history resumes at once (holding it
    until the wrong date came round would stop it for years), and hours roll up again."""
    ahead = T0 + 3 * 365 * 86400
    clock = Clock(ahead)
    h = History(tmp_path, HistorySection(), lambda name: None, clock)
    for i in range(7200):
        clock.t = ahead + i
        h.data("m", {"x": 1.0}, None, (ahead + i) * 1000)
    h.close_minutes(clock.t)
    h.flush()  # the wrong clock's first hour is rolled up: an hour row years ahead
    assert len(h.store.query("m", "x", ahead, ahead + 7200, HOUR)) == 1
    h.event(
        "agent", "clock_step", "", "warning", {"step_s": float(T0 - ahead), "from_ms": ahead * 1000, "to_ms": T0 * 1000}
    )
    h.close_minutes(math.inf)
    h.flush()
    asyncio.run(h.close())
    h = History(tmp_path, HistorySection(), lambda name: None, clock)  # restarted, the store's newest row years ahead
    for i in range(3 * 3600):
        clock.t = T0 + i
        h.data("m", {"x": 2.0}, None, (T0 + i) * 1000)
        if i % 600 == 0:
            h.close_minutes(clock.t)
            h.flush()
    assert h.dropped == 0
    assert [p.mean for p in h.store.query("m", "x", T0, T0 + 3 * 3600, HOUR)] == [2.0, 2.0], "hours roll up"
    asyncio.run(h.close())


def test_rows_expire_by_age_only_by_a_synchronised_clock(tmp_path: Path) -> None:
    """A clock set years ahead by mistake, not synchronised, deletes nothing by age at its commits."""
    clock, trusted = Clock(T0), [False]
    h = History(tmp_path, HistorySection(), lambda name: None, clock, clock_trusted=lambda: trusted[0])
    h.data("m", {"x": 1.0}, None, T0 * 1000)
    h.close_minutes(math.inf)
    clock.t = T0 + 3 * 365 * 86400
    h.flush()
    assert len(h.store.query("m", "x", T0, T0 + 60)) == 1, "kept while the clock is not synchronised"
    trusted[0] = True
    h.flush()
    assert h.store.query("m", "x", T0, T0 + 60) == [], "expired by a synchronised clock"
    asyncio.run(h.close())


def test_a_trend_picture_draws_no_line_across_a_clock_step() -> None:
    from edge_agent.agent.ops.plots import _broken

    rows = [[60, 1, 1, 1, 1, 1, 1.0], [120, 1, 1, 1, 1, 1, 1.0], [10_920, 2, 2, 2, 2, 1, 1.0]]
    out = _broken(rows, [10_900.0])
    assert [r[0] for r in out] == [60, 120, 10_900.0, 10_920] and math.isnan(out[2][2])


def test_rows_are_stored_compressed_and_rows_of_earlier_versions_still_read(tmp_path: Path) -> None:
    """The card's writes follow the bytes: a row is kept zlib-compressed (negative layout id) when
    that saves a tenth; an uncompressed row (an earlier version's, or one that does not shrink) reads as before."""
    s = HistoryStore(tmp_path / "h.sqlite")
    s.write([("plc", T0 + 60 * m, {f"k{i}": agg(20.0 + i, 20.5 + i) for i in range(300)}) for m in range(3)], {})
    (lid, size), *_ = s.db.execute("SELECT layout, length(data) FROM minute").fetchall()
    assert lid < 0 and size < 300 * 22 * 0.9
    s.db.execute("UPDATE minute SET layout = -layout, data = ? WHERE t = ?", (pack_plain(s), T0))  # as before
    pts = s.query("plc", "k7", T0, T0 + 180)
    assert [(p.min, p.max) for p in pts] == [(27.0, 27.5)] * 3
    s.close()


def pack_plain(s: HistoryStore) -> bytes:
    layout = s._layouts[s._inst["plc"]][1]
    return pack(layout, {f"k{i}": agg(20.0 + i, 20.5 + i) for i in range(300)}, MINUTE)
