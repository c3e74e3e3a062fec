"""The soak's figures against the targets of issue 29: CPU, memory and its growth, bytes written per
day by phase, seq numbers, what an outage delivered afterwards, IIO scans, and every event judged
against the scenario."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass

from bench.common import percentile
from bench.plant.process_figures import Metric
from bench.soak.agent import MemLook, Tick
from bench.soak.observer import Arrival, Event
from bench.soak.run import Soak
from bench.soak.scenario import BASELINE, EXPECTED, HOUR_S, TC_EXPECTED, TC_FAULTS, grace_s

DAY_S = 86400.0
DRAIN_S = 60.0  # after an outage: the backlog goes out and the spool empties (its own phase)


@dataclass(frozen=True)
class Pair:
    """Two consecutive looks at the same agent process."""

    a: Tick
    b: Tick

    @property
    def dt(self) -> float:
        return self.b.t - self.a.t


def pairs(soak: Soak, faked: bool = False) -> list[Pair]:
    """Consecutive looks of one process, after the warm-up of that process, of the agents that ran
    under libfaketime (``faked``) or of those that did not."""
    starts = soak.agent.starts if soak.agent else [soak.t0]
    out = []
    for a, b in itertools.pairwise(soak.ticks):
        started = starts[_run_at(soak, a.t)]
        if a.pid == b.pid and a.t >= started + soak.warmup_s and b.t > a.t and faked_at(soak, a.t) == faked:
            out.append(Pair(a, b))
    return out


def _run_at(soak: Soak, t: float) -> int:
    """Which start of the agent (0, 1, ...) was running at ``t``."""
    starts = soak.agent.starts if soak.agent else [soak.t0]
    return max((n for n, s in enumerate(starts) if s <= t), default=0)


def phase(soak: Soak, t: float) -> str:
    """outage (the agent cannot reach the broker), drain (the minute after), or steady."""
    for d0, d1 in soak.outages:
        if d0 <= t < d1:
            return "outage"
        if d1 <= t < d1 + DRAIN_S:
            return "drain"
    return "steady"


def cpu_figures(soak: Soak, ps: list[Pair], faked: list[Pair]) -> list[Metric]:
    """The agents without libfaketime by phase; the one under it apart (the preload's own cost)."""
    out: list[Metric] = []
    if faked:
        pcts = [100.0 * (x.b.cpu_s - x.a.cpu_s) / x.dt for x in faked]
        secs = sum(x.dt for x in faked)
        out += [
            ("cpu.faketime.mean_pct", 100.0 * sum(x.b.cpu_s - x.a.cpu_s for x in faked) / secs, "% under libfaketime"),
            ("cpu.faketime.p95_pct", percentile(pcts, 95), "% of one core under libfaketime, 1-s samples"),
        ]
    for name, sel in (
        ("", ps),
        *((f".{p}", [x for x in ps if phase(soak, x.a.t) == p]) for p in ("steady", "outage", "drain")),
    ):
        pcts = [100.0 * (x.b.cpu_s - x.a.cpu_s) / x.dt for x in sel]
        secs = sum(x.dt for x in sel)
        mean = 100.0 * sum(x.b.cpu_s - x.a.cpu_s for x in sel) / secs if secs else math.nan
        goal = " (goal <= 2.0)" if not name else ""
        out += [
            (f"cpu{name}.mean_pct", mean, f"% of one core, {secs:.0f} s after warm-up{goal}"),
            (
                f"cpu{name}.p95_pct",
                percentile(pcts, 95),
                "% of one core, 1-s samples" + (" (goal <= 4)" if not name else ""),
            ),
        ]
    out.append(
        ("cpu.max_pct", max((100.0 * (x.b.cpu_s - x.a.cpu_s) / x.dt for x in ps), default=math.nan), "% of one core")
    )
    return out


def disk_figures(soak: Soak, ps: list[Pair]) -> list[Metric]:
    """write_bytes of /proc/PID/io per phase, scaled to a day; each outage on its own."""
    out: list[Metric] = []
    for name in ("steady", "outage", "drain", "all"):
        sel = [x for x in ps if name == "all" or phase(soak, x.a.t) == name]
        secs = sum(x.dt for x in sel)
        written = sum(x.b.write_bytes - x.a.write_bytes for x in sel)
        goal = " (goal <= 50 at steady state)" if name == "steady" else ""
        out += [
            (f"disk.{name}.mb_per_day", written / secs * DAY_S / 1e6 if secs else math.nan, f"MB/day{goal}"),
            (f"disk.{name}.seconds", secs, "s measured in this phase"),
        ]
    for i, (d0, d1) in enumerate(soak.outages, 1):
        sel = [x for x in ps if d0 <= x.a.t < d1]
        secs = sum(x.dt for x in sel)
        written = sum(x.b.write_bytes - x.a.write_bytes for x in sel)
        out.append(
            (
                f"disk.outage{i}.mb_per_day",
                written / secs * DAY_S / 1e6 if secs else math.nan,
                f"MB/day, {d1 - d0:.0f}-s outage",
            )
        )
    return out


def memory_figures(soak: Soak) -> list[Metric]:
    """Per agent process: RSS, PSS and USS after warm-up and at the end, growth and slope."""
    out: list[Metric] = []
    starts = soak.agent.starts if soak.agent else [soak.t0]
    for i, start in enumerate(starts, 1):
        ticks = [t for t in soak.ticks if t.t >= start + soak.warmup_s and t.pid == _pid_at(soak, start)]
        mems = [m for m in soak.mem if m.t >= start + soak.warmup_s and m.pid == _pid_at(soak, start)]
        if len(ticks) < 2:
            continue
        warm, end = ticks[0], ticks[-1]
        out += [
            (f"mem.run{i}.rss_warm_mb", warm.rss_kb / 1024, f"MB {soak.warmup_s:.0f} s after start"),
            (f"mem.run{i}.rss_end_mb", end.rss_kb / 1024, f"MB after {end.t - start:.0f} s"),
            (f"mem.run{i}.rss_max_mb", max(t.rss_kb for t in ticks) / 1024, "MB"),
            (
                f"mem.run{i}.rss_growth_pct",
                100.0 * (end.rss_kb - warm.rss_kb) / warm.rss_kb,
                "% warm -> end (goal < 2)",
            ),
            (
                f"mem.run{i}.rss_slope_mb_per_h",
                _slope([(t.t, t.rss_kb / 1024) for t in ticks]),
                "MB/h, least squares over the second half",
            ),
        ]
        out += _pss_uss(i, mems)
        out += [
            (f"mem.run{i}.threads_end", end.threads, f"(at warm-up {warm.threads})"),
            (f"mem.run{i}.fds_end", end.fds, f"(at warm-up {warm.fds})"),
        ]
    return out


def _pss_uss(i: int, mems: list[MemLook]) -> list[Metric]:
    if len(mems) < 2:
        return []
    a, b = mems[0], mems[-1]
    return [
        (f"mem.run{i}.pss_warm_mb", a.pss_kb / 1024, "MB"),
        (f"mem.run{i}.pss_end_mb", b.pss_kb / 1024, "MB"),
        (f"mem.run{i}.pss_growth_pct", 100.0 * (b.pss_kb - a.pss_kb) / a.pss_kb, "%"),
        (f"mem.run{i}.uss_warm_mb", a.uss_kb / 1024, "MB"),
        (f"mem.run{i}.uss_end_mb", b.uss_kb / 1024, "MB"),
        (f"mem.run{i}.uss_growth_pct", 100.0 * (b.uss_kb - a.uss_kb) / a.uss_kb, "%"),
        (f"mem.run{i}.uss_slope_mb_per_h", _slope([(m.t, m.uss_kb / 1024) for m in mems]), "MB/h, second half"),
    ]


def _pid_at(soak: Soak, start: float) -> int:
    return next((t.pid for t in soak.ticks if t.t >= start), -1)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (per hour) of the second half: a leak keeps climbing, a filled arena does not."""
    half = points[len(points) // 2 :]
    if len(half) < 12:
        return math.nan
    tm = sum(t for t, _ in half) / len(half)
    vm = sum(v for _, v in half) / len(half)
    var = sum((t - tm) ** 2 for t, _ in half)
    return 3600.0 * sum((t - tm) * (v - vm) for t, v in half) / var if var else math.nan


def real_time(soak: Soak, ts_ms: int, arrival: float) -> float:
    """The real time of an agent stamp, given the clock offsets the soak set: of the readings that
    fall inside the time their offset was in force, the latest one not after the message arrived
    (a stepped-back clock makes one stamp readable two ways; the arrival decides)."""
    ends = [t for t, _ in soak.offsets[1:]] + [math.inf]
    cands = [ts_ms / 1000.0 - off for (t_from, off), t_to in zip(soak.offsets, ends, strict=True)]
    inside = [
        c for c, (t_from, _), t_to in zip(cands, soak.offsets, ends, strict=True) if t_from - 2.0 <= c < t_to + 2.0
    ]
    before = [c for c in inside if c <= arrival + 1.0]
    if before:
        return max(before)
    return min(cands or [ts_ms / 1000.0], key=lambda c: abs(c - arrival))


@dataclass(frozen=True)
class Gap:
    topic: str
    first: int
    last: int
    before: Arrival
    after: Arrival


def seq_problems(soak: Soak) -> tuple[list[Gap], Counter[str], int]:
    """Missing numbers (with their neighbours), repeats per topic, and arrivals out of order."""
    gaps: list[Gap] = []
    dups: Counter[str] = Counter()
    late = 0
    for topic, arr in soak.msgs.arrivals.items():
        late += sum(1 for a, b in itertools.pairwise(arr) if b.seq < a.seq)
        by_seq = sorted(arr, key=lambda x: (x.seq, x.t))
        for a, b in itertools.pairwise(by_seq):
            if b.seq == a.seq:
                dups[topic] += 1
            elif b.seq > a.seq + 1:
                gaps.append(Gap(topic, a.seq + 1, b.seq - 1, a, b))
    return gaps, dups, late


def seq_figures(soak: Soak) -> list[Metric]:
    gaps, dups, late = seq_problems(soak)
    return [
        ("seq.gaps", sum(g.last - g.first + 1 for g in gaps), "missing numbers, data+event topics (goal 0)"),
        ("seq.dups", sum(dups.values()), "numbers received twice"),
        ("seq.out_of_order", late, "arrivals with a lower number than the one before (backlog after live data)"),
        ("seq.topics", len(soak.msgs.arrivals), "topics checked"),
        ("msgs.total", soak.msgs.total, "messages received"),
        ("msgs.undecodable", soak.msgs.undecodable, "data/event/status that are not an envelope"),
    ]


def outage_figures(soak: Soak) -> list[Metric]:
    """Per outage: messages stamped while the broker was away, all delivered afterwards, and when."""
    out: list[Metric] = []
    gaps, _, _ = seq_problems(soak)
    for i, (d0, d1) in enumerate(soak.outages, 1):
        held = [a for arr in soak.msgs.arrivals.values() for a in arr if d0 <= real_time(soak, a.ts_ms, a.t) < d1]
        lost = sum(
            g.last - g.first + 1
            for g in gaps
            if real_time(soak, g.before.ts_ms, g.before.t) < d1 and real_time(soak, g.after.ts_ms, g.after.t) >= d0
        )
        out += [
            (f"outage{i}.seconds", d1 - d0, f"s, from {d0 - soak.t0:.0f} s"),
            (f"outage{i}.published", len(held), "data/event messages stamped while the broker was away"),
            (f"outage{i}.delivered_after", sum(1 for a in held if a.t >= d1), "of them arrived after it came back"),
            (f"outage{i}.backlog_s", max((a.t for a in held), default=d1) - d1, "s from reconnect to the last of them"),
            (f"outage{i}.lost", lost, "missing seq numbers around it (goal 0)"),
        ]
    return out


def iio_losses(soak: Soak) -> list[tuple[float, str, int]]:
    """Scans lost per device between two looks at the simulator (every 10 s): (time, device, scans)."""
    out = []
    for (_, a), (t, b) in itertools.pairwise(soak.sim):
        for name, dev in b.get("iio", {}).items():
            lost = dev["lost"] - a.get("iio", {}).get(name, {}).get("lost", dev["lost"])
            if lost > 0:
                out.append((t, name, lost))
    return out


def faked_at(soak: Soak, t: float) -> bool:
    """Was the agent running at ``t`` the one under libfaketime?"""
    i = _run_at(soak, t)
    return soak.faked[i] if i < len(soak.faked) else False


def _restarting(soak: Soak, t: float, device: str) -> bool:
    """Within a warm-up after a start of the agent or a restart of this instance?"""
    return any(s <= t <= s + soak.warmup_s for s in _instance_starts(soak, device))


def iio_figures(soak: Soak) -> list[Metric]:
    """Scans the simulated accelerometers produced and lost (kernel buffer full) over the whole run,
    and how many of the losses fell outside a restart."""
    if len(soak.sim) < 2:
        return []
    first, last = soak.sim[0][1].get("iio", {}), soak.sim[-1][1].get("iio", {})
    losses = iio_losses(soak)
    out: list[Metric] = []
    for name in sorted(last):
        mine = [(t, n) for t, dev, n in losses if dev == name]
        outside = sum(n for t, n in mine if not _restarting(soak, t, name) and not faked_at(soak, t))
        out += [
            (f"iio.{name}.lost", last[name]["lost"] - first.get(name, {}).get("lost", 0), "scans lost"),
            (f"iio.{name}.lost_faketime", sum(n for t, n in mine if faked_at(soak, t)), "of them under libfaketime"),
            (f"iio.{name}.lost_running", outside, "the others, not within a warm-up after a (re)start (goal 0)"),
            (f"iio.{name}.produced", last[name]["produced"] - first.get(name, {}).get("produced", 0), "scans"),
        ]
    return out


def judge(soak: Soak, ev: Event) -> str:
    """Why an event was expected ('' when it was not), by the real time of its stamp (an event
    raised during an outage arrives after it)."""
    k = soak.seconds / HOUR_S
    grace = grace_s(soak.seconds)
    at = real_time(soak, ev.ts_ms, ev.t)
    for t, action, detail in soak.done:
        if detail.startswith("undo") or detail.startswith("broker back"):
            continue
        end = t + action.for_s + grace
        allowed = {(i.replace("{target}", action.target), kind) for i, kind in EXPECTED.get(action.what, ())}
        if t - 1.0 <= at <= end and (ev.instance, ev.kind) in allowed:
            return f"{action.label()} at {t - soak.t0:.0f} s"
    starts = soak.agent.starts if soak.agent else [soak.t0]
    at_start = set(EXPECTED["agent_start"])
    if any(s - 1.0 <= at <= s + max(grace, soak.warmup_s) for s in starts) and (ev.instance, ev.kind) in at_start:
        return "a start of the agent"
    for instance, channel, fault, after_s, for_s in TC_FAULTS:
        for start in _instance_starts(soak, instance):
            t0 = start + after_s * k
            if instance == ev.instance and ev.kind in TC_EXPECTED and t0 - 1.0 <= at <= t0 + for_s * k + grace:
                return f"{channel} {fault} at {t0 - soak.t0:.0f} s"
    for instance, kind, why in BASELINE:
        if (instance in (ev.instance, "*")) and kind == ev.kind:
            return why
    return ""


def _instance_starts(soak: Soak, instance: str) -> list[float]:
    starts = list(soak.agent.starts if soak.agent else [soak.t0])
    starts += [t for t, a, d in soak.done if a.what == "cmd" and a.arg == "restart" and a.target == instance]
    return starts


def event_figures(soak: Soak) -> tuple[list[Metric], list[tuple[Event, str]]]:
    judged = [(ev, judge(soak, ev)) for ev in soak.msgs.events]
    by_kind = Counter(f"{ev.instance}/{ev.kind}/{ev.severity}" for ev, _ in judged)
    out: list[Metric] = [(f"events.{k}", n, "") for k, n in sorted(by_kind.items())]
    out += [
        ("events.total", len(judged), ""),
        (
            "events.unexpected",
            sum(1 for _, why in judged if not why),
            "events the scenario does not explain (each a finding)",
        ),
    ]
    return out, judged


def answer_figures(soak: Soak) -> list[Metric]:
    """The answer to every command and push the soak sent (each must get one), and the agent's exits."""
    answered = {str(d.get("id")) for _, _, d in soak.msgs.answers}
    ids = [d.split("(id ")[1].rstrip(")") for _, a, d in soak.done if a.what in ("cmd", "push") and "(id " in d]
    out: list[Metric] = [
        ("commands.sent", len(ids), "cmd restart and config pushes"),
        (
            "commands.unanswered",
            len([i for i in ids if i not in answered]),
            f"no answer: {[i for i in ids if i not in answered]} (goal 0)",
        ),
    ]
    for t, topic, d in soak.msgs.answers:
        status = d.get("status") or ("ok" if d.get("ok") else f"error: {d.get('error')}")
        out.append((f"answer.{topic}.{d.get('id', '?')}", str(status)[:120], f"at {t - soak.t0:.0f} s"))
    for sent, exited, code in soak.agent.stops if soak.agent else []:
        out.append(
            (
                "agent.stop",
                code if code is not None else "timeout",
                f"exit code, {exited - sent:.2f} s after SIGTERM at {sent - soak.t0:.0f} s",
            )
        )
    return out


LOG_LINE = re.compile(r" (WARNING|ERROR|CRITICAL) ")


def log_lines(soak: Soak) -> Counter[str]:
    """WARNING and worse, with digits blanked so repeats count as one line."""
    out: Counter[str] = Counter()
    for line in soak.log.splitlines():
        m = LOG_LINE.search(line)
        if m:
            out[re.sub(r"\d+", "N", line[m.start() :].strip())[:220]] += 1
    return out


def quality_figures(soak: Soak) -> list[Metric]:
    return [(f"quality.{inst}.{code}", n, "values") for (inst, code), n in sorted(soak.msgs.quality.items())]
