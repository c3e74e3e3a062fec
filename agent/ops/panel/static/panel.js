// edge-agent panel: one page, hash routes, data from /api, live updates from /api/live (SSE).
// Every text from an agent goes through esc() or textContent: nothing from the broker is HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const enc = encodeURIComponent;
let me = { user: null, role: null };
let zone = "UTC";  // the plant's time zone of the agent on screen (/api/agent: its production instance's)
let view = { render: null, deps: [] };
const RANGES = [["1h", "1 h"], ["8h", "8 h"], ["24h", "24 h"], ["7d", "7 d"], ["30d", "30 d"]];

async function api(path, opts = {}) {
  const headers = { "Content-Type": "application/json" };
  if (me.csrf) headers["X-CSRF-Token"] = me.csrf;
  const res = await fetch(path, { credentials: "same-origin", headers, ...opts });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}
const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body) });

function toast(text) {
  const t = document.createElement("div");
  t.className = "toast";
  t.textContent = text;
  document.body.appendChild(t);
  setTimeout(() => t.remove(), 4000);
}

// times in the plant's zone, named ("2026-12-07 23:14:39 CET"); values by their unit (format.js)
const when = (ms) => plantTime(ms, zone);
const whenMin = (ms) => plantTime(ms, zone, false);
const fmt = (v, unit) => fmtValue(v, unit);
// an agent's view; sets the zone its times are shown in
async function getAgent(agent) {
  const a = await api(`/api/agent/${enc(agent)}`);
  zone = knownZone(a.time_zone) ? a.time_zone : "UTC";
  return a;
}
const qClass = (q) => (!q || q === "good" ? "q-good" : q === "uncertain" ? "q-uncertain" : "q-bad");

// -- login ----------------------------------------------------------------------------------------
async function refreshMe() {
  me = await api("/api/me");
  $("#who").textContent = me.user ? `${me.user}: log out` : "Log in";
  $("#who").title = me.user ? `${me.user} (${me.role})` : "";
}
function askLogin() {
  $("#login-error").textContent = "";
  $("#login").showModal();
}
$("#who").addEventListener("click", async () => {
  if (!me.user) return askLogin();
  await post("/api/logout", {}).catch(() => {});
  await refreshMe();
  route();
});
$("#login-cancel").addEventListener("click", () => $("#login").close());
$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    await post("/api/login", { user: f.get("user"), password: f.get("password") });
    $("#login").close();
    e.target.reset();
    await refreshMe();
    route();
  } catch (err) {
    $("#login-error").textContent = err.message;
  }
});

// A form in a dialog: fields [{name, label, type, value, options}] -> values, or null on cancel.
function askForm(title, fields, okText) {
  return new Promise((resolve) => {
    $("#ask-title").textContent = title;
    $("#ask-error").textContent = "";
    $("#ask-ok").textContent = okText || "OK";
    $("#ask-fields").innerHTML = fields.map((f) => {
      if (f.options) return `<label>${esc(f.label)}<select name="${esc(f.name)}">${f.options.map((o) => `<option value="${esc(o[0])}">${esc(o[1])}</option>`).join("")}</select></label>`;
      if (f.type === "textarea") return `<label>${esc(f.label)}<textarea name="${esc(f.name)}">${esc(f.value || "")}</textarea></label>`;
      return `<label>${esc(f.label)}<input name="${esc(f.name)}" type="${esc(f.type || "text")}" value="${esc(f.value || "")}" ${f.step ? `step="${esc(f.step)}"` : ""}></label>`;
    }).join("");
    const dlg = $("#ask");
    const done = (v) => { dlg.close(); $("#ask-form").onsubmit = null; $("#ask-cancel").onclick = null; resolve(v); };
    $("#ask-form").onsubmit = (e) => { e.preventDefault(); done(Object.fromEntries(new FormData(e.target))); };
    $("#ask-cancel").onclick = () => done(null);
    dlg.showModal();
  });
}

// An action needs a login: before its form opens, ask for one.
function loggedIn() {
  if (me.user) return true;
  askLogin();
  return false;
}

// An action needs a login: ask for one first, then do it; errors become a toast.
async function act(agent, name, body) {
  if (!me.user) { askLogin(); throw new Error("log in first"); }
  try {
    const r = await post(`/api/agent/${enc(agent)}/${name}`, body);
    return r;
  } catch (err) {
    toast(`${name}: ${err.message}`);
    throw err;
  }
}

// -- navigation -----------------------------------------------------------------------------------
function nav(agent, here, counts) {
  const c = counts || {};
  const n = (c.active_unack || 0) + (c.cleared_unack || 0);
  const items = [["#/", "Overview"]];
  if (agent) {
    const a = `#/a/${enc(agent)}`;
    items.push([a, agent], [`${a}/alarms`, `Alarms${n ? ` <span class="badge">${n}</span>` : ""}`], [`${a}/captures`, "Captures"],
      [`${a}/maintenance`, "Maintenance"], [`${a}/calibration`, "Calibration"], [`${a}/reports`, "Shift reports"], [`${a}/audit`, "Audit log"]);
  }
  $("#nav").innerHTML = items.map(([h, t]) => `<a href="${h}" class="${h === here ? "here" : ""}">${t}</a>`).join("");
}

// Pages draw when their fetches return: an older, slower page (the overview after a login) could
// finish last and cover the page asked for since. Numbered, the page drawn last is redrawn then.
let routeSeq = 0, routeDrawn = 0;
async function route() {
  const mine = ++routeSeq;
  await drawRoute();
  if (mine === routeSeq) routeDrawn = mine;
  else if (routeDrawn === routeSeq) route();  // the newest drew before this older one: draw it again
}
async function drawRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent).filter(Boolean);
  try {
    if (parts[0] === "a" && parts[1]) {
      const agent = parts[1];
      const page = parts[2] || "";
      const pages = { "": pageAgent, i: pageInstance, alarms: pageAlarms, captures: pageCaptures, capture: pageCapture,
        maintenance: pageMaintenance, calibration: pageCalibration, reports: pageReports, audit: pageAudit };
      await (pages[page] || pageAgent)(agent, parts[3]);
    } else {
      await pageOverview();
    }
  } catch (err) {
    if (/log in/.test(err.message) && !me.user) { $("#main").innerHTML = `<p class="error">${esc(err.message)}</p>`; askLogin(); return; }
    $("#main").innerHTML = `<p class="error">${esc(err.message)}</p>`;
  }
}
// Another page (the back button, a link): a form left open would cover it and act on the old page.
window.addEventListener("hashchange", () => {
  if ($("#ask").open) $("#ask-cancel").click();
  setView(null, []);  // no live redraw of the page left behind
  route();
});

function setView(render, deps) { view = { render, deps }; }
// A page drawn by a live update of the page before (the overview redraws on every change) that
// finishes after the technician went to another page would cover it: it stops instead.
const stale = (seq) => seq !== routeSeq;

// -- pages ----------------------------------------------------------------------------------------
async function pageOverview() {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const agents = await api("/api/overview");
  if (stale(seq)) return;
  nav(null, "#/");
  const cards = Object.entries(agents).map(([name, a]) => {
    const c = a.alarm_counts || {};
    const active = (c.active_unack || 0) + (c.active_ack || 0);
    const insts = Object.entries(a.instances).map(([i, s]) => `<tr class="pick" data-href="#/a/${enc(name)}/i/${enc(i)}">
      <td><a href="#/a/${enc(name)}/i/${enc(i)}">${esc(i)}</a><div class="muted">${esc(s.plugin)}</div></td>
      <td><span class="state st-${esc(s.state)}">${esc(s.state)}</span></td>
      <td><span class="q ${qClass(s.worst_quality)}">${esc(s.worst_quality)}</span></td>
      <td class="num-plain">${s.age_s === null || s.age_s === undefined ? "-" : `${esc(fmt(s.age_s, "s"))} s ago`}</td></tr>`).join("");
    return `<section class="card"><h2><a href="#/a/${enc(name)}">${esc(name)}</a>
      <span class="state st-${a.online ? "running" : "offline"}">${a.online ? "online" : "offline"}</span></h2>
      <p><a href="#/a/${enc(name)}/alarms"><span class="big">${active}</span> active ${active === 1 ? "alarm" : "alarms"}</a>,
      ${c.active_unack || 0} not acknowledged, ${c.cleared_unack || 0} cleared to acknowledge</p>
      <table><tr><th>instance</th><th>state</th><th>worst quality</th><th>last data</th></tr>${insts}</table></section>`;
  }).join("");
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>Overview</h1><div class="grid agents">${cards || '<p class="muted">No agent seen on the broker yet.</p>'}</div>`;
  bindRows();
  setView(pageOverview, ["*"]);
}

function bindRows() {
  document.querySelectorAll("tr.pick[data-href]").forEach((tr) => tr.addEventListener("click", () => { location.hash = tr.dataset.href; }));
}

async function pageAgent(agent) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const [ov, a] = await Promise.all([api("/api/overview"), getAgent(agent)]);
  const mine = ov[agent] || { instances: {} };
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}`, a.alarms.counts);
  const rows = Object.entries(mine.instances).map(([i, s]) => `<tr class="pick" data-href="#/a/${enc(agent)}/i/${enc(i)}">
    <td><a href="#/a/${enc(agent)}/i/${enc(i)}">${esc(i)}</a></td><td>${esc(s.plugin)}</td>
    <td><span class="state st-${esc(s.state)}">${esc(s.state)}</span></td><td><span class="q ${qClass(s.worst_quality)}">${esc(s.worst_quality)}</span></td>
    <td>${s.age_s === null ? "-" : `${fmt(s.age_s, "s")} s ago`}</td></tr>`).join("");
  const ev = a.events.slice(0, 15).map((e) => `<tr><td>${when(e.ts)}</td><td>${esc(e.instance)}</td><td>${esc(e.severity)}</td><td>${esc(e.msg)}</td></tr>`).join("");
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>${esc(agent)} <span class="state st-${mine.online ? "running" : "offline"}">${mine.online ? "online" : "offline"}</span></h1>
    <table><tr><th>instance</th><th>plugin</th><th>state</th><th>worst quality</th><th>last data</th></tr>${rows}</table>
    <h2 class="gap">Latest events</h2><table><tr><th>time</th><th>instance</th><th>severity</th><th>what</th></tr>${ev}</table>`;
  bindRows();
  setView(() => pageAgent(agent), [`${agent}/state`, `${agent}/events`, `${agent}/alarms`]);
}

const trend = { key: null, range: "1h" };

async function pageInstance(agent, inst) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const [data, a, cat] = await Promise.all([
    api(`/api/agent/${enc(agent)}/instance/${enc(inst)}`),
    getAgent(agent),
    api(`/api/agent/${enc(agent)}/history?instance=${enc(inst)}&list=1`).catch(() => ({ keys: {} })),
  ]);
  if (stale(seq)) return;
  nav(agent, "", a.alarms.counts);
  const units = cat.keys || {};
  const keys = Object.keys(data.values).sort();
  if (!trend.key || !(trend.key in data.values)) trend.key = keys.find((k) => k in units && typeof data.values[k] === "number") || keys[0];
  const rows = keys.map((k) => {
    const q = data.quality[k] || "good";
    // a long dotted key (diagnosis.misalignment.evidence) may wrap after a dot, not push the table past the screen
    return `<tr class="pick ${k === trend.key ? "chosen" : ""}" data-key="${esc(k)}"><td>${esc(k).replace(/\./g, ".<wbr>")}</td>
      <td class="num" id="v-${esc(k)}">${esc(fmt(data.values[k], units[k]))}</td><td>${esc(units[k] || "")}</td>
      <td><span class="q ${qClass(q)}">${esc(q)}</span></td></tr>`;
  }).join("");
  const st = data.state || {};
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>${esc(inst)} <span class="state st-${esc(st.state)}">${esc(st.state || "?")}</span>
    <span class="muted sub">${esc(st.plugin || "")}, last data ${when(data.ts)}</span></h1>
    <div class="two"><div><table><tr><th>value</th><th class="num">now</th><th>unit</th><th>quality</th></tr>${rows}</table></div>
    <div class="card"><h2 id="trend-title">Trend</h2><div class="row" id="ranges">${RANGES.map(([r, t]) =>
      `<button class="btn small ${r === trend.range ? "on" : ""}" data-range="${r}" type="button">${t}</button>`).join("")}</div>
    <canvas class="chart" id="chart" width="900" height="340"></canvas><p class="muted" id="trend-note"></p></div></div>`;
  document.querySelectorAll("tr[data-key]").forEach((tr) => tr.addEventListener("click", () => { trend.key = tr.dataset.key; pageInstance(agent, inst); }));
  document.querySelectorAll("[data-range]").forEach((b) => b.addEventListener("click", () => { trend.range = b.dataset.range; pageInstance(agent, inst); }));
  drawTrend(agent, inst, units);
  setView(() => liveValues(agent, inst, units), [`${agent}/data/${inst}`]);
}

async function liveValues(agent, inst, units) {
  const data = await api(`/api/agent/${enc(agent)}/instance/${enc(inst)}`);
  for (const [k, v] of Object.entries(data.values)) {
    const cell = document.getElementById(`v-${k}`);
    if (cell) cell.textContent = fmt(v, units[k]);
  }
}

async function drawTrend(agent, inst, units) {
  const key = trend.key;
  $("#trend-title").textContent = key ? `Trend of ${key}${units[key] ? ` (${units[key]})` : ""}` : "Trend";
  if (!key) return;
  let h;
  try {
    h = await api(`/api/agent/${enc(agent)}/history?instance=${enc(inst)}&key=${enc(key)}&since=${trend.range}`);
  } catch (err) {
    $("#trend-note").textContent = err.message;
    return;
  }
  if (key !== trend.key || !document.getElementById("chart")) return;  // another value was picked meanwhile
  const pts = ((h.series || {})[key] || { points: [] }).points.filter((p) => p[2] !== null);
  const steps = h.clock_steps || [];  // the agent's wall clock stepped: the rows resume at the dashed line
  const stepNote = steps.length ? `; dashed = the agent's clock stepped (${steps.length}x): a gap there is time the clock skipped` : "";
  $("#trend-note").textContent = `${pts.length} ${pts.length === 1 ? "point" : "points"}, per ${h.resolution}, plant time (${zone}); band = min to max, line = mean, red = not all samples good${stepNote}`;
  chart($("#chart"), pts, h.from_ms, h.until_ms, units[key], steps);
}

// The points split where the wall clock stepped, so no line or band is drawn across a step.
function segments(pts, resumes) {
  const out = [[]];
  let i = 0;
  for (const p of pts) {
    while (i < resumes.length && p[0] >= resumes[i]) { if (out[out.length - 1].length) out.push([]); i++; }
    out[out.length - 1].push(p);
  }
  return out.filter((seg) => seg.length);
}

// A step's size as agent/clock.py span_text writes it: "3 d 0 h", "2 h 20 min", "61 s".
function stepLabel(s) {
  const a = Math.round(Math.abs(s)), sign = s > 0 ? "+" : "-";
  const text = a >= 86400 ? `${Math.floor(a / 86400)} d ${Math.floor((a % 86400) / 3600)} h`
    : a >= 3600 ? `${Math.floor(a / 3600)} h ${Math.floor((a % 3600) / 60)} min` : `${a} s`;
  return `clock ${sign}${text}`;
}

function chart(canvas, pts, fromMs, untilMs, unit, steps = []) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, hgt = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = hgt * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, hgt);
  const L = 70, R = 12, T = 12, B = 42;
  g.font = "15px sans-serif";
  g.fillStyle = "#55636f";
  if (!pts.length) { g.fillText("no history in this range yet", L, hgt / 2); return; }
  // round ticks (1, 2, 5 x 10^n; whole plant-time minutes, hours, days), never finer than the unit shows
  const unitStep = unit in DECIMALS ? 10 ** -DECIMALS[unit] : 0;
  const ticks = niceTicks(Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[3])), 5, unitStep);
  const lo = ticks.lo, hi = ticks.hi;
  const t0 = fromMs / 1000, t1 = untilMs / 1000;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (w - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (hgt - T - B);
  g.strokeStyle = "#d5dbe0"; g.lineWidth = 1;
  for (const v of ticks.ticks) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(w - R, y(v)); g.stroke();
    g.fillText(v.toFixed(ticks.decimals), 4, y(v) + 5);
  }
  g.textAlign = "center";
  for (const tick of timeTicks(fromMs, untilMs, zone, 5)) {
    const tx = x(tick.ms / 1000);
    g.beginPath(); g.moveTo(tx, T); g.lineTo(tx, hgt - B); g.stroke();
    g.fillText(tick.label, Math.max(L, Math.min(tx, w - R - 24)), hgt - 14);
  }
  g.textAlign = "start";
  const resumes = steps.map((c) => Math.max(c.from_ms, c.to_ms) / 1000).sort((a, b) => a - b);
  for (const seg of segments(pts, resumes)) {
    g.fillStyle = "rgba(31,78,121,0.18)";
    g.beginPath();
    seg.forEach((p, i) => (i ? g.lineTo(x(p[0]), y(p[3])) : g.moveTo(x(p[0]), y(p[3]))));
    for (let i = seg.length - 1; i >= 0; i--) g.lineTo(x(seg[i][0]), y(seg[i][1]));
    g.closePath(); g.fill();
    g.strokeStyle = "#1f4e79"; g.lineWidth = 2.5;
    g.beginPath();
    seg.forEach((p, i) => (i ? g.lineTo(x(p[0]), y(p[2])) : g.moveTo(x(p[0]), y(p[2]))));
    g.stroke();
  }
  g.strokeStyle = "#55636f"; g.fillStyle = "#55636f"; g.lineWidth = 1.5; g.setLineDash([6, 4]);
  for (const c of steps) {
    const t = Math.max(c.from_ms, c.to_ms) / 1000;
    if (t < t0 || t > t1) continue;
    g.beginPath(); g.moveTo(x(t), T); g.lineTo(x(t), hgt - B); g.stroke();
    g.fillText(stepLabel(c.step_s), Math.min(x(t) + 4, w - R - 110), T + 16);
  }
  g.setLineDash([]);
  g.fillStyle = "#b71c1c";
  pts.filter((p) => p[6] < 1).forEach((p) => { g.beginPath(); g.arc(x(p[0]), y(p[2]), 4, 0, 7); g.fill(); });
  if (pts.length < 3) {  // too few for a band: each bucket as a min-max bar with its mean
    g.fillStyle = "#1f4e79";
    pts.forEach((p) => { g.fillRect(x(p[0]) - 4, y(p[3]), 8, Math.max(2, y(p[1]) - y(p[3]))); g.beginPath(); g.arc(x(p[0]), y(p[2]), 6, 0, 7); g.fill(); });
  }
}

async function pageAlarms(agent) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const [a, full] = await Promise.all([getAgent(agent), api(`/api/agent/${enc(agent)}/alarms`).catch(() => null)]);
  const list = (full || a.alarms).alarms || [];
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}/alarms`, a.alarms.counts);
  const rows = list.map((x) => `<tr><td><span class="state st-${esc(x.state)}">${esc(x.state.replace("_", " "))}</span>
      ${x.shelved ? `<span class="state st-shelved">shelved to ${when(x.shelved_until_ms)}</span>` : ""}</td>
    <td><b>${esc(x.instance)} ${esc(x.name)}</b><div class="muted">${esc(x.message)}</div></td>
    <td>${when(x.raised_ms)}${x.cleared_ms ? `<div class="muted">cleared ${when(x.cleared_ms)}</div>` : ""}</td>
    <td>${x.ack_by ? `${esc(x.ack_by)}<div class="muted">${esc(x.ack_comment)}</div>` : ""}</td>
    <td><div class="row">${x.acked ? "" : `<button class="btn primary" data-ack="${esc(x.id)}" data-name="${esc(`${x.instance} ${x.name}`)}" type="button">Acknowledge</button>`}
      ${x.shelved ? `<button class="btn" data-unshelve="${esc(x.id)}" type="button">Unshelve</button>` : `<button class="btn" data-shelve="${esc(x.id)}" data-name="${esc(`${x.instance} ${x.name}`)}" type="button">Shelve</button>`}</div></td></tr>`).join("");
  const recent = ((full && full.recent) || []).slice().reverse().slice(0, 20).map((x) => `<tr><td>${when(x.cleared_ms)}</td>
    <td>${esc(x.instance)} ${esc(x.name)}</td><td>${esc(x.ack_by)} ${esc(x.ack_comment)}</td></tr>`).join("");
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>Alarms of ${esc(agent)}</h1>
    ${list.length ? `<table><tr><th>state</th><th>alarm</th><th>since</th><th>acknowledged by</th><th></th></tr>${rows}</table>` : '<p class="big ok">No alarms</p>'}
    <h2 class="gap">Recently back to normal</h2><table><tr><th>cleared</th><th>alarm</th><th>acknowledged by</th></tr>${recent || '<tr><td colspan="3" class="muted">none</td></tr>'}</table>`;
  document.querySelectorAll("[data-ack]").forEach((b) => b.addEventListener("click", async () => {
    if (!loggedIn()) return;
    const f = await askForm(`Acknowledge ${b.dataset.name}`, [{ name: "comment", label: "Comment (optional)", type: "textarea" }], "Acknowledge");
    if (f === null) return;
    await act(agent, "ack", { id: b.dataset.ack, comment: f.comment });
    toast("acknowledged"); pageAlarms(agent);
  }));
  document.querySelectorAll("[data-shelve]").forEach((b) => b.addEventListener("click", async () => {
    if (!loggedIn()) return;
    const f = await askForm(`Shelve ${b.dataset.name}`, [
      { name: "for_s", label: "For", options: [["3600", "1 hour"], ["28800", "one shift (8 h)"], ["86400", "one day"], ["604800", "one week"]] },
      { name: "comment", label: "Why (required: kept in the audit log)", type: "textarea" }], "Shelve");
    if (f === null) return;
    await act(agent, "shelve", { id: b.dataset.shelve, for_s: Number(f.for_s), comment: f.comment });
    toast("shelved"); pageAlarms(agent);
  }));
  document.querySelectorAll("[data-unshelve]").forEach((b) => b.addEventListener("click", async () => {
    if (!loggedIn()) return;
    await act(agent, "unshelve", { id: b.dataset.unshelve });
    toast("unshelved"); pageAlarms(agent);
  }));
  setView(() => pageAlarms(agent), [`${agent}/alarms`]);
}

async function pageCaptures(agent) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const [a, c] = await Promise.all([getAgent(agent), api(`/api/agent/${enc(agent)}/captures`)]);
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}/captures`, a.alarms.counts);
  const rows = (c.captures || []).map((x) => `<tr class="pick" data-href="#/a/${enc(agent)}/capture/${enc(x.id)}">
    <td><a href="#/a/${enc(agent)}/capture/${enc(x.id)}">${when(x.ts_ms || x.mtime_ms)}</a></td><td><b>${esc(x.instance || "-")}</b></td>
    <td>${esc(x.trigger || "-")}<div class="muted">rule ${esc(x.rule || "-")}</div></td>
    <td>${(x.bytes / 1024).toFixed(1)} kB</td></tr>`).join("");
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>Captures of ${esc(agent)}</h1><p class="muted">Saved around alarms by the recorder. Tap one to open it.</p>
    <table><tr><th>triggered</th><th>instance</th><th>trigger</th><th>size</th></tr>${rows || '<tr><td colspan="4">none yet</td></tr>'}</table>`;
  bindRows();
  setView(null, []);
}

async function pageCapture(agent, id) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const a = await getAgent(agent);
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}/captures`, a.alarms.counts);
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>Capture ${esc(id)}</h1><p class="muted">An accelerometer's capture: waveform, spectrum and envelope spectrum, the bearing fault frequencies
    at the trigger as dashed red lines. Other captures: the recorded values around the trigger (red line).</p>
    <p id="cap-note">Drawing&hellip;</p><a id="cap-full" target="_blank" rel="noopener"><img class="plot" id="cap-img" alt="capture ${esc(id)}"></a>`;
  const img = $("#cap-img");
  img.onload = () => { $("#cap-note").textContent = "Tap the picture to open it alone (zoom in with two fingers)."; };
  img.onerror = () => { $("#cap-note").textContent = "the capture could not be drawn (see the panel's log)"; };
  img.src = `/api/agent/${enc(agent)}/capture/${enc(id)}`;
  $("#cap-full").href = img.src;
  setView(null, []);
}

function maintenancePlans(values) {
  // maintenance instance values: ASSET.plans.PLAN.{status,task,...}
  const plans = {};
  for (const [k, v] of Object.entries(values)) {
    const m = k.match(/^([^.]+)\.plans\.([^.]+)\.(.+)$/);
    if (m) (plans[`${m[1]}/${m[2]}`] ||= { asset: m[1], plan: m[2] })[m[3]] = v;
  }
  return Object.values(plans);
}

// When a plan is due: on the calendar a date and "in 5 h" / "overdue by 3 h" (days_left as of the
// data's time); on running hours, cycles or parts what is left of them (no date: it depends on the line).
const COUNTED = [["running_hours", "h", "running h"], ["cycles", "", "cycles"], ["parts", "parts", "parts"]];
function dueText(p, tsMs) {
  const out = [];
  if (typeof p.days_left === "number" && typeof tsMs === "number") {
    const due = tsMs + p.days_left * 86400000;
    const date = p.basis && p.basis !== "days" ? esc(whenMin(due)) : `<b>${esc(whenMin(due))}</b>`;  // the basis furthest along in bold
    out.push(`${date}<div class="${due < Date.now() ? "late" : "muted"}">${esc(untilText(due, Date.now()))}</div>`);
  }
  for (const [basis, unit, label] of COUNTED) {
    const left = p[`${basis}_left`];
    if (typeof left !== "number") continue;
    const text = left >= 0 ? `${fmt(left, unit)} ${label} left` : `overdue by ${fmt(-left, unit)} ${label}`;
    out.push(`<div class="${left < 0 ? "late" : p.basis === basis ? "strong" : "muted"}">${esc(text)}</div>`);
  }
  return out.join("") || '<span class="muted">-</span>';
}

async function pageMaintenance(agent) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const [ov, a] = await Promise.all([api("/api/overview"), getAgent(agent)]);
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}/maintenance`, a.alarms.counts);
  const insts = Object.entries((ov[agent] || { instances: {} }).instances).filter(([, s]) => s.plugin === "maintenance").map(([i]) => i);
  let html = `<h1>Maintenance of ${esc(agent)}</h1>`;
  for (const inst of insts) {
    const d = await api(`/api/agent/${enc(agent)}/instance/${enc(inst)}`);
    const rows = maintenancePlans(d.values).map((p) => {
      const st = String(p.status || "ok");
      const cls = st === "overdue" ? "st-active_unack" : st === "due" ? "st-cleared_unack" : "st-normal";
      return `<tr><td><b>${esc(p.asset)}</b> ${esc(p.plan)}<div class="muted">${esc(p.task || "")}</div></td>
        <td><span class="state ${cls}">${esc(st)}</span>${typeof p.used_pct === "number" ? `<div class="muted">${esc(fmt(p.used_pct, "%"))} % used</div>` : ""}</td>
        <td>${dueText(p, d.ts)}</td>
        <td><button class="btn primary" type="button" data-inst="${esc(inst)}" data-asset="${esc(p.asset)}" data-plan="${esc(p.plan)}">Sign off</button></td></tr>`;
    }).join("");
    html += `<section class="card"><h2>${esc(inst)}</h2><table><tr><th>asset and plan</th><th>status</th><th>due</th><th></th></tr>${rows}</table></section>`;
  }
  const done = a.events.filter((e) => e.kind === "maintenance_done").slice(0, 20).map((e) =>
    `<tr><td>${when(e.ts)}</td><td>${esc(e.asset)} ${esc(e.plan)}</td><td>${esc(e.by)}</td><td>${esc(e.notes)}</td></tr>`).join("");
  html += `<h2 class="gap">Signed off (this panel session; every sign-off is in the audit log)</h2>
    <table><tr><th>time</th><th>plan</th><th>by</th><th>notes</th></tr>${done || '<tr><td colspan="4" class="muted">none yet</td></tr>'}</table>`;
  if (stale(seq)) return;
  $("#main").innerHTML = insts.length ? html : `<h1>Maintenance</h1><p class="muted">No maintenance instance on ${esc(agent)}.</p>`;
  document.querySelectorAll("[data-plan]").forEach((b) => b.addEventListener("click", async () => {
    if (!loggedIn()) return;
    const f = await askForm(`Sign off ${b.dataset.asset} ${b.dataset.plan}`, [
      { name: "work_order", label: "Work order (optional)" }, { name: "notes", label: "What was done", type: "textarea" }], "Sign off");
    if (f === null) return;
    await act(agent, "maintenance_done", { instance: b.dataset.inst, asset: b.dataset.asset, plan: b.dataset.plan, notes: f.notes, work_order: f.work_order });
    toast("signed off"); pageMaintenance(agent);
  }));
  setView(null, []);
}

// The channel's calibration as the agent keeps it (calibrate action=show): points taken and not yet
// applied, the record in force (as found, as left, next due) and the earlier ones.
function calRecord(r) {
  const a = r.active;
  const unit = (a && a.unit) || "";
  const u = (v) => `${fmtValue(v, unit, 1)}${unit ? ` ${unit}` : ""}`;  // a calibration is finer than a reading
  const err = (v) => (typeof v === "number" ? `${fmtDelta(v, unit)}${unit ? ` ${unit}` : ""}` : "-");
  const rows = [];
  const pending = r.pending || [];
  if (pending.length) rows.push(["Points taken, not applied", pending.map((p) => `${u(p[0])} -> ${u(p[1])}`).join("; ")]);
  if (a) {
    rows.push(["Calibrated", `${whenMin(a.ts_ms)} by ${a.by}`]);
    if (a.note) rows.push(["Note", a.note]);
    rows.push(["Points (reading -> reference, as found)", (a.references || []).map((p) => `${u(p.reading)} -> ${u(p.reference)} (${err(p.as_found_error)})`).join("; ") || "-"]);
    rows.push(["As found (worst)", err(a.as_found_error)], ["Fit residual", err(a.fit_residual)]);
    rows.push(["As left", (a.as_left || []).length ? a.as_left.map((c) => `${u(c.reading)} at ${u(c.reference)} (${err(c.error)})`).join("; ") : "not checked yet"]);
    if (typeof a.next_due_ms === "number") rows.push(["Next due", `${whenMin(a.next_due_ms)}, ${untilText(a.next_due_ms, Date.now())}`]);
  }
  // the records before (the one in force is above; its as-left checks are in its "As left")
  const earlier = (r.history || []).filter((h) => typeof h.ts_ms === "number" && !h.check && (!a || h.ts_ms !== a.ts_ms)).slice(0, 5)
    .map((h) => `${whenMin(h.ts_ms)} ${h.by}: ${h.cleared ? "cleared" : `as found ${err(h.as_found_error)}`}`);
  if (earlier.length) rows.push(["Earlier", earlier.join("; ")]);
  const head = a ? "" : `<p class="muted">${pending.length ? "Not calibrated yet." : "Not calibrated yet, no points taken."}</p>`;
  return `${head}<div class="kv">${rows.map(([k, v]) => `<span>${esc(k)}</span><b>${esc(v)}</b>`).join("")}</div>`;
}

// Every channel with a calibration record (retained by the agent), soonest due first: tap one to open it.
function calChannels(cals) {
  const rows = Object.values(cals || {}).filter((c) => !c.cleared)
    .sort((x, y) => (x.next_due_ms ?? Infinity) - (y.next_due_ms ?? Infinity)).map((c) => {
      const late = typeof c.next_due_ms === "number" && c.next_due_ms < Date.now();
      return `<tr class="pick" data-cal-inst="${esc(c.instance)}" data-cal-ch="${esc(c.channel)}"><td><b>${esc(c.instance)}</b> ${esc(c.channel)}</td>
      <td>${esc(whenMin(c.ts_ms))}<div class="muted">${esc(c.by)}</div></td>
      <td>${esc(whenMin(c.next_due_ms))}<div class="${late ? "late" : "muted"}">${esc(untilText(c.next_due_ms, Date.now()))}</div></td></tr>`;
    }).join("");
  return `<table><tr><th>channel</th><th>calibrated</th><th>next due</th></tr>${rows || '<tr><td colspan="3" class="muted">none yet</td></tr>'}</table>`;
}

async function pageCalibration(agent) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const [ov, a] = await Promise.all([api("/api/overview"), getAgent(agent)]);
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}/calibration`, a.alarms.counts);
  const insts = Object.keys((ov[agent] || { instances: {} }).instances);
  const first = Object.values(a.calibrations || {}).filter((c) => !c.cleared).sort((x, y) => (x.next_due_ms ?? Infinity) - (y.next_due_ms ?? Infinity))[0];
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>Calibrate a channel</h1><div class="two"><section class="card">
    <p class="muted">Put the sensor in a reference (bath, calibrator), wait until it settles, enter the reference value and
    take the point; repeat for each reference; then apply. The agent records as found and as left.</p>
    <label>Instance<select id="cal-inst">${insts.map((i) => `<option>${esc(i)}</option>`).join("")}</select></label>
    <label>Channel<input id="cal-ch" list="cal-chs" placeholder="e.g. motor_de" autocomplete="off"></label><datalist id="cal-chs"></datalist>
    <label>Reference value<input id="cal-ref" type="number" step="any"></label>
    <label>Note (standard used, certificate)<input id="cal-note"></label>
    <div class="row"><button class="btn" id="cal-point" type="button">Take point</button>
    <button class="btn primary" id="cal-apply" type="button">Apply</button><button class="btn danger" id="cal-cancel" type="button">Cancel points</button></div>
    </section><div><section class="card"><h2 id="cal-title">Record</h2><div id="cal-out" class="muted">Pick a channel.</div></section>
    <section class="card gap"><h2>Calibrated channels</h2>${calChannels(a.calibrations)}</section></div></div>`;
  if (first) $("#cal-inst").value = first.instance;
  const base = () => ({ instance: $("#cal-inst").value, channel: $("#cal-ch").value.trim() });
  const load = async () => {
    const b = base();
    $("#cal-title").textContent = b.channel ? `Record of ${b.instance} ${b.channel}` : "Record";
    if (!b.channel) { $("#cal-out").textContent = "Pick a channel."; return; }
    try {
      const r = await api(`/api/agent/${enc(agent)}/calibration?instance=${enc(b.instance)}&channel=${enc(b.channel)}`);
      if (b.channel === base().channel && b.instance === base().instance) $("#cal-out").innerHTML = calRecord(r);
    } catch (err) {
      $("#cal-out").textContent = err.message;
    }
  };
  // the instance's channels to pick from (typing "bearing_nde" with gloves is slow): the part of each key before ".";
  // the first is picked, so its record shows at once
  const channels = async () => {
    const d = await api(`/api/agent/${enc(agent)}/instance/${enc($("#cal-inst").value)}`).catch(() => ({ values: {} }));
    const names = [...new Set(Object.keys(d.values || {}).filter((k) => k.includes(".")).map((k) => k.split(".")[0]))].sort();
    $("#cal-chs").innerHTML = names.map((n) => `<option value="${esc(n)}">`).join("");
    if (!names.includes($("#cal-ch").value.trim())) $("#cal-ch").value = names[0] || "";
    await load();
  };
  document.querySelectorAll("tr[data-cal-ch]").forEach((tr) => tr.addEventListener("click", async () => {
    $("#cal-inst").value = tr.dataset.calInst;
    $("#cal-ch").value = tr.dataset.calCh;
    await channels();
  }));
  if (first) $("#cal-ch").value = first.channel;
  $("#cal-inst").onchange = channels;
  $("#cal-ch").onchange = load;
  await channels();
  const run = async (body, done) => { await act(agent, "calibrate", { ...base(), ...body }); toast(done); await load(); };
  $("#cal-point").onclick = () => run({ action: "point", reference: Number($("#cal-ref").value) }, "point taken");
  $("#cal-apply").onclick = () => run({ action: "apply", note: $("#cal-note").value }, "calibration applied");
  $("#cal-cancel").onclick = () => run({ action: "cancel" }, "points cancelled");
  setView(null, []);
}

async function pageReports(agent) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const a = await getAgent(agent);
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}/reports`, a.alarms.counts);
  const lines = Object.keys(a.reports);
  let html = `<h1>Shift reports of ${esc(agent)}</h1>`;
  for (const line of lines) {
    const r = await api(`/api/agent/${enc(agent)}/report/${enc(line)}`);
    html += `<section class="card"><h2>${esc(r.title)}</h2><p class="muted">${esc(r.period)}</p><div class="grid">${r.sections.map(([head, rows]) =>
      `<div><h2>${esc(head)}</h2><div class="kv">${rows.map(([k, v]) => `<span>${esc(k)}</span><b>${esc(v)}</b>`).join("")}</div></div>`).join("")}</div></section>`;
  }
  if (stale(seq)) return;
  $("#main").innerHTML = lines.length ? html : `${html}<p class="muted">No shift report published yet.</p>`;
  setView(() => pageReports(agent), [`${agent}/reports`]);
}

async function pageAudit(agent) {
  const seq = routeSeq;  // drawn only if no other page was asked for meanwhile (stale())
  const [a, full] = await Promise.all([getAgent(agent), api(`/api/agent/${enc(agent)}/audit`).catch(() => null)]);
  if (stale(seq)) return;
  nav(agent, `#/a/${enc(agent)}/audit`, a.alarms.counts);
  const entries = (full || a.audit).entries || [];
  const rows = entries.map((e) => {
    const x = auditEntry(e);
    return `<tr><td>${when(e.ts_ms)}</td><td><b>${esc(e.by)}</b><div class="muted">${esc((e.args || {}).via || e.source)}</div></td>
    <td>${esc(x.what)}${x.note ? `<div class="quote">&ldquo;${esc(x.note)}&rdquo;</div>` : ""}${x.rest ? `<div class="muted">${esc(x.rest)}</div>` : ""}</td>
    <td><span class="${x.ok ? "ok" : "error"}">${esc(x.result)}</span></td></tr>`;
  }).join("");
  if (stale(seq)) return;
  $("#main").innerHTML = `<h1>Audit log of ${esc(agent)}</h1><p class="muted">Every action that changed something: when, who (and from where), what, and how it ended.</p>
    <table><tr><th>when</th><th>who</th><th>what</th><th>result</th></tr>${rows || '<tr><td colspan="4">nothing recorded yet</td></tr>'}</table>`;
  setView(() => pageAudit(agent), [`${agent}/audit`]);
}

// -- live updates ---------------------------------------------------------------------------------
function live() {
  const es = new EventSource("/api/live");
  es.onopen = () => $("#live").classList.add("on");
  es.onerror = () => $("#live").classList.remove("on");
  es.onmessage = (m) => {
    const changed = JSON.parse(m.data);
    if (!view.render) return;
    if (view.deps.includes("*") || changed.some((c) => view.deps.includes(c))) view.render().catch(() => {});
  };
}

(async () => {
  await refreshMe();
  await route();
  live();
})();
