"""The capture service behind the ``recorder`` plugin: ring buffers, triggers, the capture store.

Ring buffers hold the raw readings of the instances that some rule records, for the longest
``pre_s + post_s`` of those rules (a waveform as its int16 counts when the driver gives them, else
float32; values as the read maps, by reference). A rule fires on a matching event or value edge;
``post_s`` later the service cuts [t - pre_s, t + post_s] out of the rings and writes one
MessagePack file in ``{state_dir}/captures`` from a worker thread, then publishes ``capture_saved``.
A rule that fired waits ``holdoff_s`` before it can fire again (suppressed firings are counted),
and the store keeps at most ``max_captures`` files and ``max_mb`` (oldest evicted, counted).
Captures written in any 24 h stay within ``daily_mb`` (the SD card's share): a capture beyond it
is skipped, counted and announced by a ``capture_skipped`` event, never silently.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from edge_agent.drivers.contract import TemperatureReading, ThermalFrame, Values, Waveform
from edge_agent.drivers.dotted_keys import numeric_leaves
from edge_agent.plugins.contract import Severity, StateStore

log = logging.getLogger("agent.maintenance.recorder")
FORMAT = "edge-agent-capture/1"
EventFn = Callable[[str, str, str, Severity, dict[str, Any]], None]
DAY_S = 86400.0


class Ring:
    """Readings of one instance over the last ``keep_s`` seconds (fed from its I/O thread)."""

    def __init__(self, keep_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_s = keep_s
        self.clock = clock
        self.items: deque[tuple[float, int, Any]] = deque()  # (monotonic, ts_ms, payload)
        self.nbytes = 0
        self._lock = threading.Lock()

    def add(self, reading: Any) -> None:
        now = self.clock()
        payload, size = _payload(reading)
        ts = int(getattr(reading, "t0_ms", None) or getattr(reading, "ts_ms", None) or time.time_ns() // 1_000_000)
        with self._lock:
            self.items.append((now, ts, payload))
            self.nbytes += size
            while self.items and self.items[0][0] < now - self.keep_s:
                self.nbytes -= _payload_size(self.items.popleft()[2])

    def window(self, since: float, until: float) -> list[tuple[float, int, Any]]:
        with self._lock:
            return [it for it in self.items if since <= it[0] <= until]


FEATURE_CHUNK_ROWS = 256  # rows per chunk of FeatureRows: a dropped chunk is at most this many rows late


class _FeatureChunk:
    """Consecutive feature rows, column by column: per row a monotonic time, a ts_ms, a reference
    to its key tuple and where its numbers start in one shared array of doubles."""

    __slots__ = ("keys", "mono", "starts", "ts", "vals")

    def __init__(self) -> None:
        self.mono = array("d")
        self.ts = array("q")
        self.keys: list[tuple[Any, ...]] = []
        self.starts = array("I")
        self.vals = array("d")


class FeatureRows:
    """The published numbers of one instance over the last ``keep_s`` seconds, one row per data
    message, kept compactly: the keys once while they stay the same, the numbers as doubles, in
    chunks of column arrays. A row as a dict of floats cost ~4 kB for a vibration message (a key
    string and a float object per number); as a tuple with an array per row ~190 B beside its
    numbers; in a chunk 28 B (ten minutes of pump1-de and the tachometer: ~0.6 MB -> ~0.1 MB).

    ``add`` runs on the event loop, ``since`` in a capture's worker thread: a chunk's columns only
    grow, the time last, so a reader takes the rows whose time is there; chunks leave whole."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._chunks: deque[_FeatureChunk] = deque()
        self._keys: tuple[Any, ...] = ()

    def add(self, now: float, ts_ms: int, leaves: Mapping[Any, float]) -> None:
        keys = tuple(leaves)
        if keys != self._keys:  # a new shape; an unchanged one shares the tuple of the rows before
            self._keys = keys
        c = self._chunks[-1] if self._chunks else None
        if c is None or len(c.mono) >= FEATURE_CHUNK_ROWS:
            c = _FeatureChunk()
            self._chunks.append(c)
        c.starts.append(len(c.vals))
        c.vals.extend(leaves.values())
        c.keys.append(self._keys)
        c.ts.append(ts_ms)
        c.mono.append(now)  # last: the row is complete for a reader
        while self._chunks and self._chunks[0].mono[-1] < now - self.keep_s:
            self._chunks.popleft()

    @property
    def rows(self) -> list[tuple[float, int, tuple[Any, ...], array[float]]]:
        """The rows kept, as (monotonic, ts_ms, keys, numbers)."""
        return list(self._rows(-float("inf")))

    def _rows(self, t: float) -> Iterator[tuple[float, int, tuple[Any, ...], array[float]]]:
        chunks = list(self._chunks)
        if not chunks:
            return
        last = chunks[-1].mono
        since = max(t, last[len(last) - 1] - self.keep_s) if len(last) else t
        for c in chunks:
            mono, ts, keys, starts, vals = c.mono, c.ts, c.keys, c.starts, c.vals
            for i in range(len(mono)):
                if mono[i] >= since:
                    start = starts[i]
                    yield mono[i], ts[i], keys[i], vals[start : start + len(keys[i])]

    def since(self, t: float) -> list[tuple[float, int, dict[Any, float]]]:
        """The rows from ``t`` on (monotonic), as (monotonic, ts_ms, {key: number})."""
        return [(m, ts, dict(zip(keys, numbers, strict=True))) for m, ts, keys, numbers in self._rows(t)]


def _payload(reading: Any) -> tuple[Any, int]:
    if isinstance(reading, Waveform):
        data = reading.raw if reading.raw is not None else np.asarray(reading.samples, dtype=np.float32)
        wf = {
            "rate_hz": reading.rate_hz,
            "axes": reading.axes,
            "unit": reading.unit,
            "lost": reading.lost_samples,
            "scale": reading.scale if reading.raw is not None else 1.0,
            "data": data,
        }
        return wf, int(data.nbytes)
    if isinstance(reading, ThermalFrame) and reading.frame_c is not None:  # the frame itself, float32
        frame = np.ascontiguousarray(reading.frame_c, dtype="<f4")
        p = {"values": dict(reading.values), "quality": {k: str(q) for k, q in reading.quality.items()}}
        p |= {"frame_c": frame.tobytes(), "shape": list(frame.shape), "emissivity": reading.emissivity}
        return p, _payload_size(p)
    if isinstance(reading, Values):
        vals = {k: v for k, v in reading.values.items()}  # shallow: the driver makes a new map per read
        p = {"values": vals, "quality": {k: str(q) for k, q in reading.quality.items()}}
        if isinstance(reading, TemperatureReading):  # its values are degC (the plot's axis says so)
            p["unit"] = "degC"
        return p, 48 * len(vals)
    return {"repr": repr(reading)[:200]}, 200


def _payload_size(p: Any) -> int:
    if "data" in p:
        return int(p["data"].nbytes)
    if "values" in p:
        return 48 * len(p["values"]) + len(p.get("frame_c", b""))
    return 200


def _series(items: list[tuple[float, int, Any]], t_trigger: float) -> dict[str, Any]:
    """One instance's cut: a waveform as one int16/float32 block, values as a list of rows."""
    if not items:
        return {"kind": "none"}
    first = items[0][2]
    if "data" in first:
        blocks = [p for _, _, p in items if p["axes"] == first["axes"] and p["rate_hz"] == first["rate_hz"]]
        data = np.concatenate([np.asarray(p["data"]) for p in blocks])
        return {
            "kind": "waveform",
            "rate_hz": first["rate_hz"],
            "axes": list(first["axes"]),
            "unit": first["unit"],
            "dtype": "int16" if data.dtype == np.int16 else "float32",
            "scale": first["scale"],
            "n": int(data.shape[0]),
            "t0_ms": items[0][1],
            "trigger_offset_s": round(t_trigger - items[0][0] + len(blocks[0]["data"]) / first["rate_hz"], 3),
            "lost_samples": int(sum(p["lost"] for p in blocks)),
            "samples": np.ascontiguousarray(data.astype("<i2" if data.dtype == np.int16 else "<f4")).tobytes(),
        }
    rows = [{"t_s": round(t - t_trigger, 3), "ts_ms": ts, **p} for t, ts, p in items]
    return {"kind": "values", "rows": rows}


class OverBudget(Exception):
    """A packed capture that ``daily_mb`` has no room for (raised in the worker, never written)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes over the daily budget")
        self.size = size


def _recent_writes(directory: Path) -> deque[tuple[float, int]]:
    """The captures written in the last 24 h by file time, so a restart does not reset the budget."""
    now_wall, now = time.time(), time.monotonic()
    out: list[tuple[float, int]] = []
    for f in directory.glob("*.cap") if directory.is_dir() else []:
        try:
            st = f.stat()
        except OSError:
            continue
        age_s = now_wall - st.st_mtime
        if 0 <= age_s < DAY_S:
            out.append((now - age_s, st.st_size))
    return deque(sorted(out))


class Recorder:
    """Rules and rings of every recorder instance, and the capture store."""

    def __init__(self, directory: Path, event: EventFn, store: StateStore) -> None:
        self.dir = directory
        self.event, self.store = event, store
        self.rules: dict[str, Any] = {}  # owner -> RecorderOptions
        self.rings: dict[str, Ring] = {}
        # instance -> rows of its published numeric features: the cheap, long pre-trigger
        self.features: dict[str, FeatureRows] = {}
        self.latest: dict[str, dict[str, Any]] = {}  # instance -> latest values (merged)
        self.latest_q: dict[str, dict[str, str]] = {}
        self.last_fired: dict[tuple[str, str], float] = {}
        self.value_state: dict[tuple[str, str], bool] = {}
        counters = store.load("recorder", "counters") or {}
        self.saved, self.evicted = int(counters.get("saved", 0)), int(counters.get("evicted", 0))
        self.suppressed = int(counters.get("suppressed", 0))
        self.skipped = int(counters.get("skipped", 0))
        self.written = _recent_writes(directory)  # (monotonic, bytes) of the captures of the last 24 h
        self._budget_lock = threading.RLock()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- configuration (from the recorder plugin) ----------------------------------------------
    def configure(self, owner: str, options: Any) -> None:
        self.rules[owner] = options
        self._resize()

    def unconfigure(self, owner: str) -> None:
        self.rules.pop(owner, None)
        self._resize()

    def _resize(self) -> None:
        keep: dict[str, float] = {}
        for opts in self.rules.values():
            for r in opts.rules:
                src = r.value.instance if r.value is not None else r.instance
                for inst in r.record or ([src] if src else []):
                    keep[inst] = max(keep.get(inst, 0.0), r.pre_s + r.post_s + 1.0)
        for inst in list(self.rings):
            if inst not in keep:
                del self.rings[inst]
        feats: dict[str, float] = {}
        for opts in self.rules.values():
            for r in opts.rules:
                src = r.value.instance if r.value is not None else r.instance
                for inst in {*(r.record or []), *([src] if src else [])}:
                    feats[inst] = max(feats.get(inst, 0.0), r.features_pre_s + r.post_s + 1.0)
        for inst in list(self.features):
            if inst not in feats:
                del self.features[inst]
        for inst, keep_s in feats.items():
            self.features.setdefault(inst, FeatureRows(keep_s)).keep_s = keep_s
        for inst, keep_s in keep.items():
            ring = self.rings.get(inst)
            if ring is None:
                self.rings[inst] = Ring(keep_s)
            else:
                ring.keep_s = keep_s

    # -- the data path ---------------------------------------------------------------------------
    def feed(self, instance: str, reading: Any) -> None:
        """A reading of ``instance`` (called from its I/O thread): into its ring, if it has one."""
        ring = self.rings.get(instance)
        if ring is not None:
            ring.add(reading)

    def on_data(self, instance: str, values: Mapping[str, Any], quality: Mapping[str, str] | None) -> None:
        """Every published data message: the snapshot, and value triggers."""
        self.latest.setdefault(instance, {}).update(values)
        q = self.latest_q.setdefault(instance, {})
        for k in values:
            q.pop(k, None)
        if quality:
            q.update(quality)
        feats = self.features.get(instance)
        if feats is not None:
            feats.add(time.monotonic(), time.time_ns() // 1_000_000, numeric_leaves(values))
        for owner, opts in self.rules.items():
            for r in opts.rules:
                if r.value is not None and r.value.instance == instance:
                    self._value_edge(owner, r, values)

    def _value_edge(self, owner: str, r: Any, values: Mapping[str, Any]) -> None:
        v: Any = values
        for part in r.value.key.split("."):
            v = v.get(part) if isinstance(v, Mapping) else None
        if v is None:
            return
        t = r.value
        on = (v == t.equals) if t.equals is not None else (v > t.above) if t.above is not None else (v < t.below)
        was = self.value_state.get((owner, r.name), False)
        self.value_state[(owner, r.name)] = bool(on)
        if on and not was:
            self._fire(owner, r, t.instance, {"kind": "value", "key": t.key, "value": v})

    def on_event(self, instance: str, kind: str, fields: Mapping[str, Any]) -> None:
        """Every published event: event triggers."""
        if kind == "capture_saved":
            return
        for owner, opts in self.rules.items():
            for r in opts.rules:
                if r.event != kind or (r.instance and r.instance != instance):
                    continue
                if all(fields.get(k) == v for k, v in r.match.items()):
                    self._fire(owner, r, instance, {"kind": kind, **{k: v for k, v in fields.items() if k != "kind"}})

    def _fire(self, owner: str, r: Any, instance: str, trigger: dict[str, Any]) -> None:
        now = time.monotonic()
        last = self.last_fired.get((owner, r.name))
        if last is not None and now - last < r.holdoff_s:
            self.suppressed += 1
            self._save_counters()
            return
        self.last_fired[(owner, r.name)] = now
        if self._over_budget(0):
            self._skip(owner, r.name, instance, 0)
            return
        snapshot = {i: {"values": dict(v), "quality": dict(self.latest_q.get(i, {}))} for i, v in self.latest.items()}
        meta = {
            "format": FORMAT,
            "rule": r.name,
            "owner": owner,
            "instance": instance,
            "trigger": trigger,
            "ts_ms": time.time_ns() // 1_000_000,
            "pre_s": r.pre_s,
            "post_s": r.post_s,
            "features_pre_s": r.features_pre_s,
        }
        record = list(r.record or [instance])
        loop = asyncio.get_running_loop()
        loop.call_later(r.post_s, self._spawn, owner, meta, snapshot, record, now)

    def _spawn(self, owner: str, meta: dict[str, Any], snapshot: Any, record: list[str], t: float) -> None:
        task = asyncio.get_running_loop().create_task(self._save(owner, meta, snapshot, record, t), name="capture")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, owner: str, meta: dict[str, Any], snapshot: Any, record: list[str], t: float) -> None:
        cid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(meta["ts_ms"] / 1000)) + f"-{meta['rule']}"
        meta["id"] = cid
        rings = {inst: self.rings.get(inst) for inst in record}
        series: dict[str, Any] = {}
        try:  # cutting (concatenating MBs of samples), packing and writing stay off the event loop
            size, evicted = await asyncio.to_thread(self._cut_and_write, cid, meta, snapshot, rings, t, series)
        except (OSError, ValueError, TypeError) as exc:
            self.event(owner, "capture_failed", f"capture {cid}: {exc}", Severity.WARNING, {"id": cid})
            return
        except OverBudget as over:
            self._skip(owner, meta["rule"], meta["instance"], over.size)
            return
        self.saved += 1
        self.evicted += evicted
        self._save_counters()
        self._index(cid, meta)
        pre = {i: s.get("trigger_offset_s") for i, s in series.items() if s.get("kind") == "waveform"}
        self.event(
            owner,
            "capture_saved",
            f"capture {cid} saved ({size / 1024:.0f} kB, rule {meta['rule']})",
            Severity.INFO,
            {
                "id": cid,
                "rule": meta["rule"],
                "bytes": size,
                "instances": record,
                "pre_trigger_s": pre,
                "evicted": evicted,
            },
        )

    def _cut_and_write(
        self, cid: str, meta: dict[str, Any], snapshot: Any, rings: dict[str, Ring | None], t: float, series: Any
    ) -> tuple[int, int]:
        """(worker thread) cut [t - pre_s, t + post_s] out of the rings into ``series``, then write."""
        for inst, ring in rings.items():
            items = ring.window(t - meta["pre_s"], t + meta["post_s"] + 0.5) if ring else []
            series[inst] = _series(items, t)
        features = {}
        for inst in {*rings, meta["instance"]}:
            got = self.features.get(inst)
            rows = got.since(t - float(meta.get("features_pre_s", 0.0))) if got else []
            features[inst] = {"rows": [{"t_s": round(m - t, 3), "ts_ms": ts, "values": v} for m, ts, v in rows]}
        return self._write(cid, {"meta": meta, "snapshot": snapshot, "series": series, "features": features})

    def _write(self, cid: str, doc: dict[str, Any]) -> tuple[int, int]:
        """(worker thread) write one capture, then evict the oldest beyond the limits."""
        self.dir.mkdir(parents=True, exist_ok=True)
        data = msgpack.packb(doc, use_bin_type=True)
        with self._budget_lock:  # two rules may write at once: check and book in one step
            if self._over_budget(len(data)):
                raise OverBudget(len(data))
            self.written.append((time.monotonic(), len(data)))
        tmp = self.dir / f".{cid}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.dir / f"{cid}.cap")
        return len(data), self._evict(cid)

    def _limits(self) -> tuple[int, int]:
        opts = list(self.rules.values())
        if not opts:
            return 200, 100 * 1024 * 1024
        return min(o.max_captures for o in opts), int(min(o.max_mb for o in opts) * 1024 * 1024)

    def _evict(self, newest: str) -> int:
        """Delete the oldest captures past the limits, oldest by write order (the index's), not by
        name: a name holds the wall-clock time, and after a step back (issue 29) the newest capture
        would sort first and go first. Files the index does not know go before those it knows."""
        max_n, max_bytes = self._limits()
        rank = {cid: i for i, cid in enumerate(self.store.load("recorder", "index") or {})}
        rank[newest] = len(rank)  # written just now, indexed after this
        files = sorted(self.dir.glob("*.cap"), key=lambda f: (f.stem in rank, rank.get(f.stem, 0), f.name))
        total = sum(f.stat().st_size for f in files)
        n = 0
        while files and (len(files) > max_n or total > max_bytes):
            f = files.pop(0)
            total -= f.stat().st_size
            f.unlink(missing_ok=True)
            n += 1
        return n

    def _daily_bytes(self) -> int:
        opts = list(self.rules.values())
        return int(min(o.daily_mb for o in opts) * 1_000_000) if opts else 20_000_000

    def written_24h(self) -> int:
        """Bytes of captures written in the last 24 h (monotonic: a clock step changes nothing)."""
        now = time.monotonic()
        with self._budget_lock:
            while self.written and self.written[0][0] < now - DAY_S:
                self.written.popleft()
            return sum(size for _, size in self.written)

    def _over_budget(self, size: int) -> bool:
        """True if a capture of ``size`` bytes (0: any capture) would exceed ``daily_mb``."""
        used, budget = self.written_24h(), self._daily_bytes()
        return used >= budget or used + size > budget

    def _skip(self, owner: str, rule: str, instance: str, size: int) -> None:
        """A capture not written for the daily budget: counted, and an event says so."""
        self.skipped += 1
        self._save_counters()
        used, budget = self.written_24h(), self._daily_bytes()
        what = f" of {size / 1e6:.2f} MB" if size else ""
        self.event(
            owner,
            "capture_skipped",
            f"capture{what} by rule {rule} skipped: {used / 1e6:.1f} of daily_mb = {budget / 1e6:g} MB written"
            " in the last 24 h (the SD card's budget)",
            Severity.WARNING,
            {
                "rule": rule,
                "instance": instance,
                "reason": "daily_budget",
                "bytes": size,
                "written_24h_bytes": used,
                "daily_bytes": budget,
            },
        )

    def _save_counters(self) -> None:
        self.store.save(
            "recorder",
            "counters",
            {"saved": self.saved, "evicted": self.evicted, "suppressed": self.suppressed, "skipped": self.skipped},
        )

    def _index(self, cid: str, meta: Mapping[str, Any]) -> None:
        """What ``captures`` lists per capture without opening it: instance, trigger, time, durations."""
        index = dict(self.store.load("recorder", "index") or {})
        trig = meta.get("trigger") or {}
        what = " ".join(str(trig[k]) for k in ("feature", "level", "tone", "fault", "key") if k in trig)
        index[cid] = {
            "instance": meta.get("instance"),
            "rule": meta.get("rule"),
            "trigger": f"{trig.get('kind', '?')} {what}".strip(),
            "ts_ms": meta.get("ts_ms"),
            "raw_s": float(meta.get("pre_s", 0)) + float(meta.get("post_s", 0)),
            "features_s": float(meta.get("features_pre_s", 0)) + float(meta.get("post_s", 0)),
        }
        existing = {f.stem for f in self.dir.glob("*.cap")}
        self.store.save("recorder", "index", {k: v for k, v in index.items() if k in existing})

    # -- list, fetch, stats ----------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        """Newest first: id, instance, trigger, time, raw and feature seconds, size."""
        index = self.store.load("recorder", "index") or {}
        out = []
        for f in sorted(self.dir.glob("*.cap"), reverse=True):
            st = f.stat()
            out.append(
                {
                    "id": f.stem,
                    **dict(index.get(f.stem) or {}),
                    "bytes": st.st_size,
                    "mtime_ms": int(st.st_mtime * 1000),
                }
            )
        return out

    def get(self, cid: str) -> bytes:
        if not cid or len(cid) > 128 or "/" in cid or "\0" in cid or cid.startswith("."):
            raise ValueError(f"id: not a capture id: {cid[:64]!r}")  # never an OS error on a hostile id
        path = self.dir / f"{cid}.cap"
        if not path.exists():
            raise ValueError(f"no capture {cid!r} (list them with cmd/captures)")  # cid is at most 128 characters
        return path.read_bytes()

    def stats(self) -> dict[str, Any]:
        files = list(self.dir.glob("*.cap")) if self.dir.exists() else []
        return {
            "captures": len(files),
            "disk_bytes": sum(f.stat().st_size for f in files),
            "saved_total": self.saved,
            "evicted_total": self.evicted,
            "suppressed_total": self.suppressed,
            "skipped_total": self.skipped,
            "written_24h_bytes": self.written_24h(),
            "ring_bytes": sum(r.nbytes for r in self.rings.values()),
            "ring_instances": len(self.rings),
        }
