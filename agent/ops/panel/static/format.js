// edge-agent panel: how numbers, times and audit entries read for a person. Pure functions, no DOM:
// panel.js draws with them, and tests/agent/test_panel_format.py runs them in node.
"use strict";

// Decimals a value is shown with, by its unit (docs/panel.md "How values read"): what the
// measurement resolves, not what the float carries. A thermocouple reads to 0.25 degC and is
// good to +-1-2 degC: one decimal; ISO 20816 zone limits are 0.71, 1.12, 1.8, 2.8 mm/s: two.
const DECIMALS = {
  degC: 1, C: 1, degF: 1, K: 1, "degC/min": 2, "K/min": 2,
  "mm/s": 2, "in/s": 3, g: 3, "m/s2": 2, um: 0, Hz: 1, rpm: 0, dB: 1,
  "%": 1, s: 0, min: 1, h: 1, d: 1,
  parts: 0, "parts/min": 1, "parts/h": 0, kWh: 2, "kWh/part": 3, kW: 2, W: 0,
  V: 1, mV: 0, A: 2, mA: 2, ohm: 1, bar: 2, mbar: 0, kPa: 1, MPa: 3, psi: 1,
  "m3/h": 1, "l/min": 1, "kg/h": 1, kg: 2, mm: 2, m: 2,
};
const OTHER_SIGNIFICANT = 3;  // a value of another unit (or none): three significant digits

function decimalsFor(unit, v) {
  if (unit in DECIMALS) return DECIMALS[unit];
  if (v === 0 || !Number.isFinite(v)) return 0;
  return Math.min(6, Math.max(0, OTHER_SIGNIFICANT - 1 - Math.floor(Math.log10(Math.abs(v)))));
}

// A value as the panel shows it: numbers by the rule above (a list of them, such as spectrum peaks,
// each so), booleans on/off, "-" for none. ``finer``: decimals beyond the unit's (a calibration's
// readings and references are finer than a routine reading).
function fmtValue(v, unit, finer = 0) {
  if (v === null || v === undefined) return "-";
  if (Array.isArray(v)) return v.map((x) => fmtValue(x, unit, finer)).join(", ");
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  const known = unit in DECIMALS;
  if (Number.isInteger(v) && !known) return String(v);  // counts, codes, states
  const a = Math.abs(v);
  if (!known && a !== 0 && (a >= 1e6 || a < 1e-4)) return v.toExponential(OTHER_SIGNIFICANT - 1);
  let text = v.toFixed(decimalsFor(unit || "", v) + (known ? finer : 0));
  if (!known && text.includes(".")) text = text.replace(/\.?0+$/, "");  // no unit, no column to align: 0.004, not 0.00400
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;  // float noise below the resolution reads 0, not -0.0
}

// A difference (a calibration error): signed, one decimal finer than the unit's values.
function fmtDelta(v, unit) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "-";
  const text = fmtValue(v, unit, 1);
  return v > 0 && /[1-9]/.test(text) ? `+${text}` : text;
}

// How far off a time is, for a person: "in 40 min", "in 5 h", "in 12 d", "overdue by 3 h"; within a
// minute "due now" (a plan's days_left is kept to 0.001 d, 86 s: "overdue by 0 s" would be noise)
function untilText(dueMs, nowMs) {
  if (typeof dueMs !== "number" || !Number.isFinite(dueMs)) return "";
  const s = Math.abs(dueMs - nowMs) / 1000;
  if (s < 60) return "due now";
  const span = s < 90 * 60 ? `${Math.round(s / 60)} min`
    : s < 48 * 3600 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
  return dueMs >= nowMs ? `in ${span}` : `overdue by ${span}`;
}

// Round axis ticks: a step of 1, 2 or 5 times a power of ten (at least ``minStep``), about ``want``
// of them within [lo, hi] widened by 6 % (so the data does not touch the frame).
function niceTicks(lo, hi, want = 5, minStep = 0) {
  if (!(hi > lo)) { const d = Math.max(Math.abs(lo) * 0.05, minStep, 1e-9); lo -= d; hi += d; }
  const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
  const raw = Math.max((hi - lo) / Math.max(1, want), minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const fits = (st) => Math.abs((hi - lo) / st - want);  // the step whose tick count is nearest ``want``
  const step = [1, 2, 5, 10].map((m) => m * mag).filter((st) => st >= minStep).reduce((a, b) => (fits(b) < fits(a) ? b : a));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks = [];
  for (let i = Math.ceil(lo / step - 1e-9); i <= Math.floor(hi / step + 1e-9); i++) ticks.push(+(i * step).toFixed(decimals));
  return { step, decimals, ticks, lo, hi };
}

// -- the plant's time: its zone (the production instance's ``timezone``), named on every time --
const formatters = new Map();  // building one costs more than using it: one per zone (and locale)
function formatter(zone, locale = "") {
  const key = `${locale} ${zone}`;
  let f = formatters.get(key);
  if (!f) {
    f = locale ? new Intl.DateTimeFormat(locale, { timeZone: zone, timeZoneName: "short" })
      : new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
        day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    formatters.set(key, f);
  }
  return f;
}
// The zone's short name as the reports print it (tzdata's, Python's %Z) where a locale knows it:
// CET, BST, EST, AEDT, IST; else the offset (GMT-3). ICU names a zone only in some locales.
const NAMING = ["en-GB", "en-US", "en-AU", "en-IN"];
function zoneName(ms, zone) {
  let offset = "";
  for (const locale of NAMING) {
    const part = formatter(zone, locale).formatToParts(new Date(ms)).find((x) => x.type === "timeZoneName");
    const name = part ? part.value : "";
    if (name && !/^(GMT|UTC)[+-]/.test(name)) return name;
    offset ||= name;
  }
  return offset;
}
function wall(ms, zone) {
  const p = Object.fromEntries(formatter(zone).formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { y: p.year, mo: p.month, d: p.day, h: p.hour, mi: p.minute, s: p.second };
}
// a zone the browser knows (the agent checked it against Python's tzdata, not the browser's ICU)
function knownZone(zone) {
  try { formatter(String(zone)); return true; } catch { return false; }
}
// "2026-12-07 23:14:39 CET"; ``seconds`` false: "2026-12-07 23:14 CET"
function plantTime(ms, zone = "UTC", seconds = true) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "-";
  const w = wall(ms, zone);
  return `${w.y}-${w.mo}-${w.d} ${w.h}:${w.mi}${seconds ? `:${w.s}` : ""} ${zoneName(ms, zone)}`;
}
// the zone's offset from UTC at ``ms``, in ms (Berlin in winter: +3,600,000)
function zoneOffsetMs(ms, zone) {
  const w = wall(ms, zone);
  return Date.UTC(+w.y, +w.mo - 1, +w.d, +w.h, +w.mi, +w.s) - Math.floor(ms / 1000) * 1000;
}
const TIME_STEPS_S = [60, 120, 300, 600, 900, 1800, 3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400];
// Time axis ticks on round plant times (whole 10 min, hours, midnights): [{ms, label}]
function timeTicks(fromMs, untilMs, zone = "UTC", want = 5) {
  const span = (untilMs - fromMs) / 1000;
  const step = TIME_STEPS_S.find((s) => span / s <= want) || TIME_STEPS_S[TIME_STEPS_S.length - 1];
  const off = zoneOffsetMs(fromMs, zone);
  const out = [];
  for (let t = Math.ceil((fromMs + off) / (step * 1000)) * step * 1000 - off; t <= untilMs; t += step * 1000) {
    const w = wall(t, zone);
    out.push({ ms: t, label: step >= 86400 ? `${w.mo}-${w.d}` : `${w.h}:${w.mi}` });
  }
  return out;
}

// -- the audit log, for a person --------------------------------------------------------------
const durationText = (s) => (s % 86400 === 0 ? `${s / 86400} d` : s % 3600 === 0 ? `${s / 3600} h` : `${Math.round(s / 60)} min`);
// an alarm's id "thermo-a/alarm/bearing_nde.temp_c/high" as "thermo-a bearing_nde.temp_c high"
const alarmText = (id) => String(id ?? "?").split("/").filter((p) => p !== "alarm").join(" ");
const on = (inst, what) => [inst, what].filter((x) => x !== undefined && x !== null && x !== "").join(" ");
const typed = (v) => (typeof v === "number" ? String(v) : fmtValue(v));  // an argument a person gave, as given
const CALIBRATE = {
  point: (a, i) => `Took a calibration point on ${on(i, a.channel)}: reference ${typed(a.reference)}`,
  apply: (a, i) => `Applied the calibration of ${on(i, a.channel)}`,
  cancel: (a, i) => `Cancelled the calibration points of ${on(i, a.channel)}`,
  check: (a, i) => `As-left check of ${on(i, a.channel)}: reference ${typed(a.reference)}${a.reading !== undefined ? `, hand reading ${typed(a.reading)}` : ""}`,
};
const ACTIONS = {
  ack: (a) => `Acknowledged alarm ${alarmText(a.id)}`,
  shelve: (a) => `Shelved alarm ${alarmText(a.id)}${typeof a.for_s === "number" ? ` for ${durationText(a.for_s)}` : ""}`,
  unshelve: (a) => `Unshelved alarm ${alarmText(a.id)}`,
  maintenance_done: (a, i) => `Signed off ${on(a.asset, a.plan)}${i ? ` (${i})` : ""}${a.work_order ? `, work order ${a.work_order}` : ""}`,
  calibrate: (a, i) => (CALIBRATE[a.action] || ((x) => `Calibrated ${on(i, x.channel)}${Array.isArray(x.points) ? ` with ${x.points.length} points` : ""}`))(a, i),
  restart: (a, i) => `Restarted ${i || "an instance"}`,
  reload: () => "Reloaded the agent's config",
  write: (a, i) => `Wrote ${typed(a.value)} to ${on(i, a.tag || a.key)}`,
  config_push: (a) => `Config pushed${a.version !== undefined ? `: version ${a.version}` : ""}${a.source ? ` from ${a.source}` : ""}`,
};
const SHOWN = { ack: ["id"], shelve: ["id", "for_s"], unshelve: ["id"], maintenance_done: ["asset", "plan", "work_order", "instance"],
  calibrate: ["action", "channel", "reference", "reading", "points", "instance"], restart: ["instance"], write: ["value", "tag", "key", "instance"],
  config_push: ["version", "source"] };
const NOTES = ["comment", "notes", "note"];  // what the person wrote, quoted as written

// {what, note, rest, ok, result}: one sentence, their words, the other arguments, how it ended
function auditEntry(e) {
  const a = (e && typeof e.args === "object" && e.args) || {};
  const cmd = String(e.command ?? "?");
  const what = ACTIONS[cmd] ? ACTIONS[cmd](a, e.instance) : `${cmd}${e.instance ? ` on ${e.instance}` : ""}`;
  const skip = new Set(["by", "via", ...NOTES, ...(SHOWN[cmd] || [])]);
  const rest = Object.entries(a).filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${typeof v === "object" && v !== null ? JSON.stringify(v) : typed(v)}`).join(", ");
  const note = NOTES.map((k) => a[k]).filter((v) => typeof v === "string" && v.trim()).join("; ");
  const outcome = String(e.outcome ?? "");
  const ok = outcome === "done" || outcome.startsWith("accepted") || outcome.startsWith("applied");
  return { what, note, rest, ok, result: outcome };
}

if (typeof module !== "undefined") module.exports = { DECIMALS, fmtValue, fmtDelta, untilText, niceTicks, knownZone, plantTime, timeTicks, zoneOffsetMs, auditEntry };
