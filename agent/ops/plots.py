"""Every picture edge-agent draws, in one place: trends from history, captures (waveform,
spectrum, envelope spectrum with the bearing tones marked), recordings and shift reports.

matplotlib (the optional ``plot`` extra) is imported only when a picture is drawn. The format
follows the file name: ``.png`` or ``.svg``. Used by ``edge-agent history --png``, ``capture
--plot``, ``report --png`` and the panel (which draws its live charts itself but serves these).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

INK, MUTED, ALARM = "#1f4e79", "#555555", "#c62828"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display on a Pi or in a service)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    plt = pyplot()
    rate, x = float(meta["rate_hz"]), g[:, 0].astype(np.float64)
    band = envelope_band(meta)
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 9))
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
        ax3.text(hz, float(env[keep].max()) * 0.9, name.upper(), rotation=90, color="red", fontsize=8)
    ax3.set(xlabel="Hz", ylabel="g", title=f"envelope spectrum {band[0]:.0f}-{band[1]:.0f} Hz")
    fig.tight_layout()
    save(fig, path)


def waveform(series: dict[str, Any]) -> Any:
    """The samples of a waveform series in engineering units, (n, axes) float32."""
    dtype = "<i2" if series["dtype"] == "int16" else "<f4"
    raw = np.frombuffer(series["samples"], dtype=dtype).reshape(-1, len(series["axes"]))
    return raw.astype(np.float32) * np.float32(series.get("scale", 1.0))


def recording(doc: dict[str, Any], path: Path) -> None:
    """Every recorded waveform and value series of a saved capture against time, the trigger at t = 0."""
    plt = pyplot()
    series = [(i, s) for i, s in doc["series"].items() if s["kind"] in ("waveform", "values")]
    fig, axes = plt.subplots(max(1, len(series)), 1, figsize=(10, 3 * max(1, len(series))), squeeze=False, sharex=True)
    for ax, (inst, s) in zip(axes[:, 0], series, strict=False):
        if s["kind"] == "waveform":
            g = waveform(s)
            t = np.arange(len(g)) / s["rate_hz"] - s["trigger_offset_s"]
            ax.plot(t, g, linewidth=0.4)
            ax.legend(s["axes"], fontsize=7, loc="upper left")
            ax.set_ylabel(s.get("unit", ""))
        else:
            t = [r["t_s"] for r in s["rows"]]
            keys = sorted({k for r in s["rows"] for k, v in r["values"].items() if isinstance(v, (int, float))})[:6]
            for k in keys:
                ax.plot(t, [r["values"].get(k) for r in s["rows"]], label=k, linewidth=0.8)
            ax.legend(fontsize=7, loc="upper left")
        ax.axvline(0.0, color="red", linestyle="--", linewidth=1)
        ax.set_title(f"{inst}", fontsize=9)
        ax.set_xlabel("s from the trigger")
    m = doc["meta"]
    fig.suptitle(f"capture {m['id']} - rule {m['rule']} ({m['trigger'].get('kind')})", fontsize=10)
    fig.tight_layout()
    save(fig, path)


def _utc(t_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t_s, dt.UTC)


def trend(answer: dict[str, Any], path: Path, *, title: str = "") -> None:
    """A ``cmd/history`` answer: mean line, min-max band, bad-quality buckets marked, one axis per key."""
    plt = pyplot()
    series = answer["series"]
    fig, axes = plt.subplots(max(1, len(series)), 1, figsize=(10, 3.2 * max(1, len(series))), squeeze=False)
    for ax, (key, s) in zip(axes[:, 0], series.items(), strict=False):
        rows = [r for r in s["points"] if r[2] is not None]
        t = [_utc(r[0]) for r in rows]
        ax.fill_between(
            t, [r[1] for r in rows], [r[3] for r in rows], color=INK, alpha=0.18, linewidth=0, label="min-max"
        )
        ax.plot(t, [r[2] for r in rows], color=INK, linewidth=1.0, label="mean", marker="o" if len(rows) < 30 else "")
        bad = [(ti, r[2]) for ti, r in zip(t, rows, strict=True) if r[6] < 1.0]
        if bad:
            ax.plot([b[0] for b in bad], [b[1] for b in bad], "o", color=ALARM, markersize=3, label="not all good")
        unit = f" ({s['unit']})" if s.get("unit") else ""
        ax.set_title(f"{answer['instance']} {key}{unit}, per {answer['resolution']} (UTC)", fontsize=10)
        ax.set_xlim(_utc(answer["from_ms"] / 1000), _utc(answer["until_ms"] / 1000))  # the range asked for
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.autofmt_xdate()
    fig.tight_layout()
    save(fig, path)


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
    wide = [h for h in by_head if h.startswith(("Alarms", "Vibration", "Not monitored"))]
    narrow = ["Temperature alarms", "Maintenance due"]
    heading = 1 + 0.012 / REPORT_ROW  # a section's title and the gap after it, in rows
    room = (y - 0.05) / REPORT_ROW - heading * (len(wide) + 1) - max(len(by_head[h]) for h in narrow)
    need = sum(len(by_head[h]) for h in wide)
    extra = max(0.0, room - 3 * len(wide))
    for head in wide:  # all rows when they fit; else each section 3 and its share of the rest
        rows = by_head[head]
        most = len(rows) if need <= room else min(len(rows), 3 + int(extra * len(rows) / need))
        y = _block(fig, 0.05, y, head, _capped(rows, most), 0.62, 72)
    y = min(_block(fig, 0.05, y, narrow[0], _capped(by_head[narrow[0]], 8), 0.24, 26),
            _block(fig, 0.52, y, narrow[1], _capped(by_head[narrow[1]], 8), 0.30, 30))  # fmt: skip
    fig.text(0.05, 0.015, f"record {r.get('record_id') or r.get('id')} - edge-agent", fontsize=7, color="#888888")
    save(fig, path)
