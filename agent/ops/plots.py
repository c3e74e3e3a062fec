"""Every picture edge-agent draws, in one place: trends from history, captures (waveform,
spectrum, envelope spectrum with the bearing tones marked), recordings and shift reports.

matplotlib (the optional ``plot`` extra) is imported only when a picture is drawn. The format
follows the file name: ``.png`` or ``.svg``. Used by ``edge-agent history --png``, ``capture
--plot``, ``report --png`` and the panel (which draws its live charts itself but serves these).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
from edge_agent.agent.clock import span_text
from edge_agent.drivers.dotted_keys import numeric_leaves

INK, MUTED, ALARM = "#1f4e79", "#555555", "#c62828"
# Type for pictures read on a screen (a capture in the panel on a 10-inch tablet, a trend), in points
# at 100 dpi (1 pt = 1.39 px): a figure 10 in wide is 1000 px, shown 1:1 in the panel at 1280 px, so
# 11 pt ticks and legends are 15 px, about the panel's own smallest text. The A4 shift report sets
# its own sizes for paper and is drawn without this.
SCREEN_TYPE_PT = {
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "legend.fontsize": 11,
    "figure.titlesize": 14,
}
SCREEN_WIDTH_IN = 10.0
TONE_LABEL_PT = 10  # a bearing tone's name beside its line (rotated; several close together)


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display on a Pi or in a service)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def screen_type() -> Any:
    """A context in which a figure is drawn with the type of ``SCREEN_TYPE_PT``."""
    import matplotlib

    rc: Any = SCREEN_TYPE_PT  # matplotlib types its keys as a Literal of every rc name
    return matplotlib.rc_context(rc)


def save(fig: Any, path: Path, dpi: int = 100) -> None:
    """Write the figure (PNG or SVG by the file name) and free it."""
    fig.savefig(path, dpi=dpi, format="svg" if path.suffix.lower() == ".svg" else "png")
    pyplot().close(fig)


# -- spectra (the panel's capture viewer computes the same arrays) -----------------------------------
def spectrum(x: Any, rate_hz: float) -> tuple[Any, Any]:
    """Amplitude spectrum (peak, Hann window) of one axis: (Hz, amplitude)."""
    x = np.asarray(x, dtype=np.float64)
    amp = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x)))) * 4 / len(x)
    return np.fft.rfftfreq(len(x), 1 / rate_hz), amp


def envelope_spectrum(x: Any, rate_hz: float, band: tuple[float, float]) -> tuple[Any, Any]:
    """Envelope spectrum (g, peak) of the band: FFT band-pass, analytic magnitude, Hann-windowed rfft."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    X = np.fft.fft(x - x.mean())
    f = np.fft.fftfreq(n, 1 / rate_hz)
    X[(f < band[0]) | (f > band[1])] = 0.0  # negative frequencies too: the analytic signal
    env = np.abs(np.fft.ifft(X)) * 2
    amp = np.abs(np.fft.rfft((env - env.mean()) * np.hanning(n))) * 4 / n
    return np.fft.rfftfreq(n, 1 / rate_hz), amp


def envelope_band(meta: dict[str, Any]) -> tuple[float, float]:
    """The capture's envelope band, or the vibration plugin's default (rate/12.8 .. rate/3.2)."""
    rate = float(meta["rate_hz"])
    band = meta.get("envelope_band_hz") or (rate / 12.8, rate / 3.2)
    return float(band[0]), float(band[1])


# -- pictures ---------------------------------------------------------------------------------------
def capture(path: Path, meta: dict[str, Any], g: Any) -> None:
    """Waveform, spectrum and envelope spectrum (bearing tones marked) of the first axis."""
    with screen_type():
        _capture(path, meta, g)


def _capture(path: Path, meta: dict[str, Any], g: Any) -> None:
    plt = pyplot()
    rate, x = float(meta["rate_hz"]), g[:, 0].astype(np.float64)
    band = envelope_band(meta)
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(SCREEN_WIDTH_IN, 9))
    ax1.plot(np.arange(len(g)) / rate, g, linewidth=0.5)
    ax1.set(xlabel="s", ylabel="g", title=f"waveform ({', '.join(meta['axes'])})")
    f, spec = spectrum(x, rate)
    ax2.semilogy(f, spec + 1e-9, linewidth=0.5)
    ax2.set(xlabel="Hz", ylabel="g peak", title=f"spectrum ({meta['axes'][0]})")
    f, env = envelope_spectrum(x, rate, band)
    top = 4 * max((meta.get("bearing_hz") or {"x": 250.0}).values())
    keep = (f >= 2.0) & (f <= top)
    ax3.plot(f[keep], env[keep], linewidth=0.7)
    for name, hz in (meta.get("bearing_hz") or {}).items():
        ax3.axvline(hz, linestyle="--", linewidth=0.8, color="red")
        ax3.text(hz, float(env[keep].max()) * 0.9, name.upper(), rotation=90, color="red", fontsize=TONE_LABEL_PT)
    ax3.set(xlabel="Hz", ylabel="g", title=f"envelope spectrum {band[0]:.0f}-{band[1]:.0f} Hz")
    fig.tight_layout()
    save(fig, path)


def waveform(series: dict[str, Any]) -> Any:
    """The samples of a waveform series in engineering units, (n, axes) float32."""
    dtype = "<i2" if series["dtype"] == "int16" else "<f4"
    raw = np.frombuffer(series["samples"], dtype=dtype).reshape(-1, len(series["axes"]))
    return raw.astype(np.float32) * np.float32(series.get("scale", 1.0))


UNIT_SUFFIXES = (  # names carry their unit (docs/messages.md): the axis label of a feature's trend
    ("_mm_s", "mm/s"), ("_c_per_min", "degC/min"), ("_c", "degC"), ("_db", "dB"), ("_hz", "Hz"), ("_g", "g"),
    ("rpm", "rpm"), ("_kwh", "kWh"), ("_kw", "kW"), ("_pct", "%"), ("_s", "s"), ("_v", "V"), ("count", "parts"),
    (".hz", "Hz"),
)  # fmt: skip
HARMONICS = 3  # fault-frequency harmonics marked on the spectra


def unit_of(key: str) -> str:
    """The unit a value's name carries (``x.velocity_rms_mm_s`` -> mm/s); "" when it names none."""
    return next((u for suffix, u in UNIT_SUFFIXES if key.endswith(suffix)), "")


def trigger_key(trigger: dict[str, Any]) -> str | None:
    """The feature that fired a capture: an alarm's ``feature``, a bearing tone's ratio, a value's key."""
    if trigger.get("feature"):
        return str(trigger["feature"])
    if trigger.get("tone"):
        return f"bearing.{trigger['tone']}.ratio_db"
    return str(trigger["key"]) if trigger.get("key") else None


def fault_tones(doc: dict[str, Any], inst: str) -> dict[str, float]:
    """Bearing tones (Hz) at the trigger, from the snapshot of the instance (or the meta's ``bearing_hz``)."""
    bearing = ((doc.get("snapshot") or {}).get(inst, {}).get("values") or {}).get("bearing") or {}
    tones = {
        str(k): float(v["hz"])
        for k, v in bearing.items()
        if isinstance(v, dict) and isinstance(v.get("hz"), (int, float))
    }
    return tones or {k: float(v) for k, v in (doc["meta"].get("bearing_hz") or {}).items()}


def _mark_tones(ax: Any, tones: dict[str, float], top_hz: float, y: float, fired: str | None) -> None:
    """The tone that fired with its harmonics (BPFO, 2xBPFO, 3xBPFO), the other fault tones once
    (the cage frequency, far below the others, only when it fired)."""
    for i, (name, hz) in enumerate(sorted(tones.items())):
        if name == "ftf" and fired != "ftf":
            continue
        color = ALARM if name == fired else f"C{(i + 3) % 10}"
        for h in range(1, (HARMONICS if name == fired or fired is None else 1) + 1):
            if h * hz < top_hz:
                ax.axvline(h * hz, linestyle="--", linewidth=0.8, color=color, alpha=0.8)
                label = name.upper() if h == 1 else f"{h}x{name.upper()}"
                ax.text(h * hz, y, label, rotation=90, color=color, fontsize=TONE_LABEL_PT, va="top", ha="right")


def _feature_trend(ax: Any, doc: dict[str, Any], inst: str) -> None:
    """The triggering feature before and after the trigger, with its unit and limit."""
    trig = doc["meta"].get("trigger") or {}
    key = trigger_key(trig)
    rows = ((doc.get("features") or {}).get(inst) or {}).get("rows") or []
    pts = [(r["t_s"], r["values"][key]) for r in rows if key and key in r["values"]]
    if pts:
        ax.plot([t / 60 for t, _ in pts], [v for _, v in pts], linewidth=1.0, color=INK, label=key)
    if isinstance(trig.get("limit"), (int, float)):
        ax.axhline(float(trig["limit"]), color=ALARM, linestyle=":", linewidth=1, label=f"limit {trig['limit']:g}")
    elif isinstance(trig.get("ratio_db"), (int, float)):  # a bearing tone: the ratio that fired it
        ax.plot([0.0], [float(trig["ratio_db"])], "o", color=ALARM, label=f"fired at {trig['ratio_db']:.1f} dB")
    ax.axvline(0.0, color=ALARM, linestyle="--", linewidth=1)
    unit = unit_of(key or "")
    ax.set(xlabel="min from the trigger", ylabel=unit or "value")
    what = f"{key} ({unit})" if unit else str(key)
    ax.set_title(f"{inst}: {what}, {len(pts)} readings" if pts else f"{inst}: no feature trend recorded")
    if pts:
        ax.legend(loc="upper left")
    ax.grid(alpha=0.3)


def _rms_per_block(g: Any, rate: float, block_s: float = 0.1) -> tuple[Any, Any]:
    n = max(1, int(rate * block_s))
    k = len(g) // n
    blocks = g[: k * n].reshape(k, n, -1).astype(np.float64)
    return np.arange(k) * block_s, np.sqrt(np.mean((blocks - blocks.mean(axis=1, keepdims=True)) ** 2, axis=1))


def _waveform_panels(axs: Any, doc: dict[str, Any], inst: str, s: dict[str, Any]) -> None:
    """RMS per 0.1 s of every axis over the capture, the waveform just after the trigger, and the
    spectrum and envelope spectrum after the trigger against the baseline before it."""
    g, rate, unit = waveform(s), float(s["rate_hz"]), s.get("unit", "g")
    pre = float(s["trigger_offset_s"])
    t, rms = _rms_per_block(g, rate)
    axs[0].plot(t - pre, rms, linewidth=0.8)
    axs[0].axvline(0.0, color=ALARM, linestyle="--", linewidth=1)
    axs[0].legend(s["axes"], loc="upper left")
    axs[0].set(xlabel="s from the trigger", ylabel=f"{unit} RMS", title=f"{inst}: RMS per 0.1 s ({pre:.0f} s before)")
    i0 = int(pre * rate)
    zoom = g[i0 : i0 + int(0.25 * rate), 0]
    axs[1].plot(np.arange(len(zoom)) / rate * 1000, zoom, linewidth=0.6)
    axs[1].set(xlabel="ms after the trigger", ylabel=unit, title=f"waveform ({s['axes'][0]}), 0.25 s")
    n = min(int(2 * rate), i0, len(g) - i0)
    tones = fault_tones(doc, inst)
    if n < int(0.25 * rate):
        return
    base, after = g[i0 - n : i0, 0], g[i0 : i0 + n, 0]
    for data, label, color in ((base, "before", "#9e9e9e"), (after, "after", INK)):
        f, amp = spectrum(data, rate)
        axs[2].semilogy(f, amp + 1e-9, linewidth=0.5, color=color, label=f"{n / rate:.1f} s {label}")
    axs[2].set(xlabel="Hz", ylabel=f"{unit} peak", title=f"spectrum ({s['axes'][0]})")
    band = envelope_band({"rate_hz": rate, **doc["meta"]})
    top = (HARMONICS + 0.5) * max(tones.values() or [250.0])
    peak = 0.0
    for data, label, color in ((base, "before", "#9e9e9e"), (after, "after", INK)):
        f, env = envelope_spectrum(data, rate, band)
        keep = (f >= 2.0) & (f <= top)
        axs[3].plot(f[keep], env[keep], linewidth=0.7, color=color, label=f"{label}")
        peak = max(peak, float(env[keep].max()) if keep.any() else 0.0)
    _mark_tones(axs[3], tones, top, peak, (doc["meta"].get("trigger") or {}).get("tone"))
    axs[3].set(xlabel="Hz", ylabel=unit, title=f"envelope spectrum {band[0]:.0f}-{band[1]:.0f} Hz, bearing tones")
    for ax in axs[2:]:
        ax.legend(loc="upper right")


def _steady_axis(ax: Any) -> None:
    """A steady value (a constant speed) drawn as a line in a readable range, not float noise blown up."""
    ax.ticklabel_format(axis="y", useOffset=False)
    lo, hi = ax.get_ylim()
    mid = (lo + hi) / 2
    half = max((hi - lo) / 2, 0.01 * abs(mid), 1e-9)
    ax.set_ylim(mid - half, mid + half)


def _values_panels(axs: Any, inst: str, s: dict[str, Any], limit: tuple[str, float] | None) -> None:
    """A values series: one axis per unit (rpm apart from parts), the trigger at t = 0 and the
    trigger's limit on the axis of its unit."""
    t = [r["t_s"] for r in s["rows"]]
    flat = [numeric_leaves(r.get("values") or {}) for r in s["rows"]]
    given = next((str(r["unit"]) for r in s["rows"] if r.get("unit")), "")  # a temperature driver's degC
    by_unit: dict[str, list[str]] = {}
    for k in sorted({k for row in flat for k in row}):
        by_unit.setdefault(given or unit_of(k), []).append(k)
    for ax, (unit, keys) in zip(axs, sorted(by_unit.items()), strict=False):
        for k in keys[:6]:
            ax.plot(t, [row.get(k, np.nan) for row in flat], label=k, linewidth=0.8)
        ax.axvline(0.0, color=ALARM, linestyle="--", linewidth=1)
        _steady_axis(ax)
        if limit is not None and limit[0] == unit:
            ax.axhline(limit[1], color=ALARM, linestyle=":", linewidth=1, label=f"limit {limit[1]:g} {unit}")
        ax.set(xlabel="s from the trigger", ylabel=unit or "value", title=f"{inst} ({unit or 'no unit'})")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)


def recording(doc: dict[str, Any], path: Path, *, time_zone: str = "UTC") -> None:
    """A saved capture for diagnosis: the triggering feature's trend (minutes, with unit and limit),
    then per waveform the RMS over the capture, the waveform, the spectrum and the envelope
    spectrum with the bearing tones and harmonics (after the trigger against before), and the
    values series one axis per unit; its time in ``time_zone`` (the plant's, in the panel)."""
    with screen_type():
        _recording(doc, path, time_zone)


def _recording(doc: dict[str, Any], path: Path, time_zone: str) -> None:
    plt = pyplot()
    m = doc["meta"]
    waves = [(i, s) for i, s in doc["series"].items() if s["kind"] == "waveform"]
    values = [(i, s) for i, s in doc["series"].items() if s["kind"] == "values"]
    units = [len({unit_of(k) for r in s["rows"] for k in numeric_leaves(r.get("values") or {})}) for _, s in values]
    n_rows = 1 + 2 * len(waves) + sum(max(1, u) for u in units)
    fig = plt.figure(figsize=(SCREEN_WIDTH_IN, 3.0 * n_rows))
    grid = fig.add_gridspec(n_rows, 2)
    _feature_trend(fig.add_subplot(grid[0, :]), doc, str(m.get("instance")))
    row = 1
    for inst, s in waves:
        axs = [fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1]),
               fig.add_subplot(grid[row + 1, 0]), fig.add_subplot(grid[row + 1, 1])]  # fmt: skip
        _waveform_panels(axs, doc, inst, s)
        row += 2
    trig = m.get("trigger") or {}
    key = trigger_key(trig)
    limit = (unit_of(key), float(trig["limit"])) if key and isinstance(trig.get("limit"), (int, float)) else None
    for (inst, s), u in zip(values, units, strict=True):
        axs = [fig.add_subplot(grid[row + i, :]) for i in range(max(1, u))]
        _values_panels(axs, inst, s, limit if inst == m.get("instance") else None)
        row += max(1, u)
    when = dt.datetime.fromtimestamp(float(m.get("ts_ms", 0)) / 1000, _zone(time_zone)).strftime("%Y-%m-%d %H:%M:%S %Z")
    fig.suptitle(f"capture {m['id']} - rule {m['rule']}: {trig.get('kind')} on {m.get('instance')} at {when}")
    fig.tight_layout()
    save(fig, path)


def _zone(name: str) -> dt.tzinfo:
    """An IANA zone, UTC when unknown (a picture is still drawn)."""
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # zoneinfo raises several kinds for an unknown key
        return dt.UTC


def _utc(t_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t_s, dt.UTC)


def trend(answer: dict[str, Any], path: Path, *, title: str = "") -> None:
    """A ``cmd/history`` answer: mean line, min-max band, bad-quality buckets marked, one axis per key."""
    with screen_type():
        _trend(answer, path, title)


def _trend(answer: dict[str, Any], path: Path, title: str) -> None:
    plt = pyplot()
    series = answer["series"]
    fig, axes = plt.subplots(
        max(1, len(series)), 1, figsize=(SCREEN_WIDTH_IN, 3.6 * max(1, len(series))), squeeze=False
    )
    resumes = sorted(max(c["from_ms"], c["to_ms"]) / 1000 for c in answer.get("clock_steps") or [])
    for ax, (key, s) in zip(axes[:, 0], series.items(), strict=False):
        rows = _broken([r for r in s["points"] if r[2] is not None], resumes)
        t = [_utc(r[0]) for r in rows]
        ax.fill_between(
            t, [r[1] for r in rows], [r[3] for r in rows], color=INK, alpha=0.18, linewidth=0, label="min-max"
        )
        ax.plot(t, [r[2] for r in rows], color=INK, linewidth=1.0, label="mean", marker="o" if len(rows) < 30 else "")
        bad = [(ti, r[2]) for ti, r in zip(t, rows, strict=True) if r[6] < 1.0]
        if bad:
            ax.plot([b[0] for b in bad], [b[1] for b in bad], "o", color=ALARM, markersize=3, label="not all good")
        for c in answer.get("clock_steps") or []:  # the rows resume here: not a stop of the plant
            step = c["step_s"]
            ax.axvline(_utc(max(c["from_ms"], c["to_ms"]) / 1000), color=MUTED, linestyle="--", linewidth=1.2)
            way = f"clock {'+' if step > 0 else '-'}{span_text(abs(step))}"
            ax.annotate(way, (_utc(max(c["from_ms"], c["to_ms"]) / 1000), 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", color=MUTED, fontsize=9)  # fmt: skip
        unit = f" ({s['unit']})" if s.get("unit") else ""
        ax.set_title(f"{answer['instance']} {key}{unit}, per {answer['resolution']} (UTC)")
        ax.set_xlim(_utc(answer["from_ms"] / 1000), _utc(answer["until_ms"] / 1000))  # the range asked for
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    if title:
        fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    save(fig, path)


def _broken(rows: list[Any], resumes: list[float]) -> list[Any]:
    """The rows with a gap (NaN) where the wall clock stepped: no line drawn across the step."""
    out: list[Any] = []
    cuts = list(resumes)
    for r in rows:
        while cuts and r[0] >= cuts[0]:
            gap = cuts.pop(0)
            if out:
                out.append([gap, math.nan, math.nan, math.nan, math.nan, 0, 1.0])
        out.append(r)
    return out


REPORT_ROW = 0.021  # one text row of the report page, in figure heights


def _capped(rows: list[tuple[str, str]], most: int) -> list[tuple[str, str]]:
    """At most ``most`` rows; the last one says how many more the text report has."""
    if len(rows) <= most:
        return rows
    return [*rows[: most - 1], (f"... {len(rows) - most + 1} more (edge-agent report)", "")]


def _block(fig: Any, x: float, y: float, head: str, rows: list[tuple[str, str]], value_dx: float, chars: int) -> float:
    """One titled section of label/value rows at (x, y); labels cut to ``chars`` so they never run
    into the values. Returns the y below it."""
    fig.text(x, y, head, fontsize=10, weight="bold", va="top")
    y -= REPORT_ROW
    for a, b in rows:
        color = ALARM if b in ("OVERDUE", "D damage", "C unsatisfactory") or "active at end" in b else "#222222"
        fig.text(x + 0.01, y, a if len(a) <= chars else a[: chars - 1] + "~", fontsize=9, va="top")
        fig.text(x + value_dx, y, b, fontsize=9, va="top", color=color)
        y -= REPORT_ROW
    return y - 0.012


def report(r: dict[str, Any], path: Path) -> None:
    """A shift report on one A4-portrait page: the headline figures large, then every section."""
    from edge_agent.agent.ops.report_render import num, pct, period, sections, title

    plt = pyplot()
    fig = plt.figure(figsize=(8.27, 11.69), dpi=100)
    fig.text(0.05, 0.965, title(r), fontsize=14, weight="bold", va="top")
    fig.text(0.05, 0.94, period(r), fontsize=10, va="top", color=MUTED)
    p = r.get("production") or {}
    big = [
        ("OEE", pct(p.get("oee"))),
        ("good", str(p.get("count_good", "-"))),
        ("scrap", str(p.get("count_scrap", "-"))),
        ("kWh/part", num(p.get("kwh_per_good_part"), "{:.4f}")),
    ]
    for i, (label, value) in enumerate(big):
        x = 0.05 + i * 0.23
        fig.text(x, 0.90, value, fontsize=22, weight="bold", va="top", color=INK)
        fig.text(x, 0.865, label, fontsize=10, va="top", color=MUTED)
    ax = fig.add_axes((0.62, 0.66, 0.33, 0.17))
    states = [
        (k.removesuffix("_s"), float(p.get(k) or 0)) for k in ("running_s", "idle_s", "fault_s", "planned_stop_s")
    ]
    colors = {"running": "#2e7d32", "idle": "#f9a825", "fault": ALARM, "planned_stop": "#78909c"}
    ax.barh([s for s, _ in states], [v / 60 for _, v in states], color=[colors[s] for s, _ in states])
    ax.set_xlabel("minutes")
    ax.set_title("time per state", fontsize=9)
    ax.tick_params(labelsize=8)
    by_head = dict(sections(r))
    y_right = _block(fig, 0.52, 0.60, "OEE factors", sections(r)[0][1][1:], 0.30, 28)
    y_left = 0.82
    for head in ("Parts", "Downtime by reason (top 5)", "Energy"):
        y_left = _block(fig, 0.05, y_left, head, by_head[head], 0.24, 26)
    # the sections that name things (alarms, diagnoses, periods) take the page's width, one after another
    y = min(y_left, y_right)
    wide = [h for h in by_head if h.startswith(("Alarms", "Vibration", "Not monitored", "Clock steps"))]
    # full width too: a maintenance task ("Inspect the die and the part-counter sensor") cut in a half
    # column read "Inspect the die and t~"
    tail = ["Temperature alarms", "Maintenance due"]
    heading = 1 + 0.012 / REPORT_ROW  # a section's title and the gap after it, in rows
    room = (y - 0.05) / REPORT_ROW - heading * (len(wide) + len(tail)) - sum(min(len(by_head[h]), 8) for h in tail)
    need = sum(len(by_head[h]) for h in wide)
    extra = max(0.0, room - 3 * len(wide))
    for head in wide:  # all rows when they fit; else each section 3 and its share of the rest
        rows = by_head[head]
        most = len(rows) if need <= room else min(len(rows), 3 + int(extra * len(rows) / need))
        y = _block(fig, 0.05, y, head, _capped(rows, most), 0.62, 72)
    for head in tail:
        y = _block(fig, 0.05, y, head, _capped(by_head[head], 8), 0.62, 72)
    fig.text(0.05, 0.015, f"record {r.get('record_id') or r.get('id')} - edge-agent", fontsize=7, color="#888888")
    save(fig, path)
