"""The soak on one page: the agent's CPU, memory and writes per minute, and the machine's load, with
the outages shaded and the clock steps, restarts and faults marked (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.soak.agent import Tick
from bench.soak.run import Soak

MINUTE_S = 60.0


def per_minute(soak: Soak) -> list[tuple[float, float, float]]:
    """(minutes since start, CPU % of one core, writes MB/day) over each minute of one agent process."""
    out = []
    ticks = soak.ticks
    for i in range(0, len(ticks), int(MINUTE_S)):
        window: list[Tick] = [t for t in ticks[i : i + int(MINUTE_S) + 1] if t.pid == ticks[i].pid]
        a, b = window[0], window[-1]
        if b.t - a.t > 10.0:
            cpu = 100.0 * (b.cpu_s - a.cpu_s) / (b.t - a.t)
            out.append(((b.t - soak.t0) / MINUTE_S, cpu, (b.write_bytes - a.write_bytes) / (b.t - a.t) * 86400 / 1e6))
    return out


def plot(soak: Soak, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(12, 10), sharex=True)
    rows = per_minute(soak)
    axes[0].plot([m for m, _, _ in rows], [c for _, c, _ in rows], "o-", ms=3)
    axes[0].axhline(2.0, color="C3", lw=1, ls="--", label="target 2.0 % (mean)")
    axes[0].set(ylabel="agent CPU, % of a core", ylim=(0, 8.0))  # the minutes under libfaketime are off the scale
    mem = [(m.t - soak.t0) / MINUTE_S for m in soak.mem]
    for key, label in (("rss_kb", "RSS"), ("pss_kb", "PSS"), ("uss_kb", "USS")):
        axes[1].plot(mem, [getattr(m, key) / 1024 for m in soak.mem], label=label)
    axes[1].set(ylabel="agent memory, MB", ylim=(40, None))
    axes[2].plot([m for m, _, _ in rows], [w for _, _, w in rows], "o-", ms=3)
    axes[2].axhline(50.0, color="C3", lw=1, ls="--", label="target 50 MB/day (steady)")
    axes[2].set(ylabel="written, MB/day", yscale="symlog", ylim=(0, None))
    axes[3].plot(
        [(t - soak.t0) / MINUTE_S for t, _ in soak.load], [float(v.split()[0]) for _, v in soak.load], "o-", ms=3
    )
    axes[3].set(ylabel="load average (1 min)", xlabel="minutes since the agent's first start")
    _marks(soak, axes)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)


def _marks(soak: Soak, axes: Any) -> None:
    """Outages shaded grey, libfaketime's span yellow, clock steps and restarts as lines."""
    for n, (d0, d1) in enumerate(soak.outages):
        for ax in axes:
            ax.axvspan(
                (d0 - soak.t0) / MINUTE_S,
                (d1 - soak.t0) / MINUTE_S,
                color="0.8",
                label="broker outage" if n == 0 else None,
            )
    starts = soak.agent.starts if soak.agent else [soak.t0]
    for i, faked in enumerate(soak.faked):
        if faked:
            end = starts[i + 1] if i + 1 < len(starts) else soak.t0 + soak.seconds
            axes[0].axvspan(
                (starts[i] - soak.t0) / MINUTE_S,
                (end - soak.t0) / MINUTE_S,
                color="y",
                alpha=0.2,
                label="under libfaketime (17-30 %, off the scale)",
            )
    colors = {"clock": ("C4", "clock step"), "agent_restart": ("k", "SIGTERM + start"), "cmd": ("C6", "command")}
    for t, action, _ in soak.done:
        if action.what in colors:
            for ax in axes:
                ax.axvline((t - soak.t0) / MINUTE_S, color=colors[action.what][0], lw=1, alpha=0.7)
    for color, label in colors.values():
        axes[1].plot([], [], color=color, label=label)
