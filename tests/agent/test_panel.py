"""The panel over HTTP: security (login, roles, CSRF, rate limit, off unless configured), live
values, history, the alarm list with ack, the audit trail, captures, maintenance sign-off."""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.ops.panel.security import (
    LOGIN_FAILURES_MAX,
    LoginLimiter,
    check_password,
    hash_password,
    load_config,
    may,
)
from panel_plant import PASSWORD, PanelPlant
from support import scaled


class Browser:
    """A cookie-keeping HTTP client, as a page's fetch() would be."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = ""

    def call(self, path: str, body: dict[str, Any] | None = None, csrf: bool = True) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, headers={"Content-Type": "application/json"})
        if csrf and self.csrf:
            req.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(req, timeout=scaled(30)) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def login(self, user: str, password: str = PASSWORD) -> int:
        status, me = self.call("/api/login", {"user": user, "password": password})
        self.csrf = me.get("csrf", "")
        return status


@pytest.fixture
def plant(tmp_path: Path, broker: Any) -> Iterator[PanelPlant]:
    p = PanelPlant(tmp_path, broker)
    try:
        yield p
    finally:
        p.close()


def test_passwords_roles_limits_and_config() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and check_password("correct horse", stored)
    assert not check_password("wrong", stored) and not check_password("x", "garbage")
    assert may("admin", "technician") and not may("viewer", "technician") and not may(None, "viewer")
    limiter = LoginLimiter()
    for _ in range(LOGIN_FAILURES_MAX):
        limiter.failed("addr:1")
    assert limiter.blocked_for_s("addr:1") > 0 and limiter.blocked_for_s("addr:2") == 0


@pytest.mark.slow
@pytest.mark.slow  # a subprocess
def test_the_panel_is_off_unless_configured_and_binds_localhost(tmp_path: Path) -> None:
    absent = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", "panel"], capture_output=True, text=True, timeout=scaled(60)
    )
    assert absent.returncode != 0 and "--config" in absent.stderr
    (tmp_path / "p.toml").write_text("[panel]\n")
    cfg = load_config(tmp_path / "p.toml")
    assert cfg.panel.bind == "127.0.0.1" and cfg.panel.users_file == str(tmp_path / "panel-users.txt")
    (tmp_path / "bad.toml").write_text('[panel]\ntls_cert = "c.pem"\n')
    with pytest.raises(ValueError, match="tls_key go together"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "zone.toml").write_text('[panel]\ntimezone = "Europe/Berlni"\n')
    with pytest.raises(ValueError, match=r"panel\.timezone: unknown time zone 'Europe/Berlni'"):
        load_config(tmp_path / "zone.toml")


def test_times_are_in_the_zone_of_the_agents_shift_reports_else_the_panels() -> None:
    """The reports print the production instance's ``timezone``: the panel shows the same, and its
    own ``timezone`` before a report has named one."""
    from edge_agent.agent.ops.connection import ClientSettings
    from edge_agent.agent.ops.panel.plant import Plant, _agent_view

    plant = Plant(ClientSettings(url="mqtt://127.0.0.1:1"), [], "Europe/Berlin")
    plant.agents["a1"] = _agent_view()
    assert plant.agent("a1")["time_zone"] == "Europe/Berlin"  # type: ignore[index]
    reports = plant.agents["a1"]["reports"]
    reports["line1"] = {"time_zone": "America/Chicago", "ended_utc": "2026-12-07T14:00:00+00:00"}
    reports["line2"] = {"time_zone": "Not/AZone", "ended_utc": "2026-12-07T06:00:00+00:00"}
    assert plant.agent("a1")["time_zone"] == "America/Chicago"  # type: ignore[index]
    reports["line2"]["ended_utc"] = "2026-12-07T22:00:00+00:00"  # the newest names a zone nobody knows
    assert plant.agent("a1")["time_zone"] == "Europe/Berlin"  # type: ignore[index]


def test_the_panel_keeps_each_channels_retained_calibration_record() -> None:
    from edge_agent.agent.messaging import codec
    from edge_agent.agent.ops.connection import ClientSettings
    from edge_agent.agent.ops.panel.plant import Plant

    plant = Plant(ClientSettings(url="mqtt://127.0.0.1:1"), [])
    rec = {"instance": "tc", "channel": "motor_de", "unit": "degC", "ts_ms": 1, "by": "ana", "next_due_ms": 9,
           "as_found_error": -0.4, "references": [{"reading": 1.0, "reference": 2.0}] * 20}  # fmt: skip
    plant.take("edge/a1/calibration/tc/motor_de", codec.encode(rec, ts_ms=1, seq=1))
    plant.take("edge/a1/calibration/tc", codec.encode(rec, ts_ms=1, seq=2))  # not a channel's topic
    (got,) = plant.agent("a1")["calibrations"].values()  # type: ignore[index]
    assert got["by"] == "ana" and got["next_due_ms"] == 9 and "references" not in got  # the list, not the record
    assert plant.changes_since(0)[1] == [("a1", "calibration")]


def test_panel_end_to_end(plant: PanelPlant) -> None:
    b = Browser(plant.url)
    status, page = 0, b""
    with urllib.request.urlopen(plant.url + "/") as r:
        status, page, csp = r.status, r.read(), r.headers["Content-Security-Policy"]
    assert status == 200 and b"/panel.js" in page and "default-src 'self'" in csp
    assert b.call("/api/../../etc/passwd")[0] == 404
    # viewing is open (default); the overview shows the agent and its instances
    plant.sub.wait_for(lambda: b.call("/api/overview")[1].get("line1", {}).get("instances"), 30, "overview")
    assert b.call("/api/agent/line1")[1]["time_zone"] == "Europe/Berlin"  # the panel's: no shift report yet

    # the alarm list: the bearing passes 80 degC within seconds
    def bearing() -> Any:
        return next((a for a in b.call("/api/agent/line1")[1]["alarms"]["alarms"] if "bearing_nde" in a["name"]), None)

    alarm = plant.sub.wait_for(bearing, 60, "the bearing alarm on the list")
    assert alarm["state"] == "active_unack" and alarm["name"].endswith(" high"), alarm
    # actions need a login, a role that may and the CSRF token
    assert b.call("/api/agent/line1/ack", {"id": alarm["id"]})[0] == 401
    assert b.login("tech", "wrong password") == 401
    assert b.login("visitor") == 200
    assert b.call("/api/agent/line1/ack", {"id": alarm["id"]})[0] == 403  # a viewer may not
    assert b.login("tech") == 200
    assert b.call("/api/agent/line1/ack", {"id": alarm["id"]}, csrf=False)[0] == 403
    status, acked = b.call("/api/agent/line1/ack", {"id": alarm["id"], "comment": "checking the grease"})
    assert status == 200 and acked == {"acknowledged": [alarm["id"]]}
    # ... and the ack is in the audit trail, by the logged-in user, from the panel
    status, audit = b.call("/api/agent/line1/audit")
    entry = next(e for e in audit["entries"] if e["command"] == "ack")
    assert entry["by"] == "tech" and entry["args"]["via"].startswith("panel ") and entry["outcome"] == "done"
    # live values and a trend from history
    status, inst = b.call("/api/agent/line1/instance/thermo-a")
    assert status == 200 and "bearing_nde.temp_c" in inst["values"]
    status, cat = b.call("/api/agent/line1/history?instance=thermo-a&list=1")
    assert cat["keys"]["bearing_nde.temp_c"] == "degC"
    status, h = b.call("/api/agent/line1/history?instance=thermo-a&key=bearing_nde.temp_c&since=1h")
    assert status == 200 and h["series"]["bearing_nde.temp_c"]["points"]
    # maintenance sign-off goes through as the user
    sign_off = {"instance": "maintenance", "asset": "pump1", "plan": "regrease", "notes": "ok"}
    status, done = b.call("/api/agent/line1/maintenance_done", sign_off)
    assert status == 200 and done["by"] == "tech", done
    # a channel's calibration as the agent keeps it (calibrate action=show, a read: no login needed)
    where = "/api/agent/line1/calibration?instance=thermo-a&channel=motor_de"
    assert Browser(plant.url).call(where) == (200, {"active": None, "pending": [], "history": []})
    for ref in (40.0, 60.0):
        body = {
            "instance": "thermo-a",
            "channel": "motor_de",
            "action": "point",
            "reading": ref + 0.5,
            "reference": ref,
        }
        assert b.call("/api/agent/line1/calibrate", body)[0] == 200
    cal = {"instance": "thermo-a", "channel": "motor_de", "action": "apply", "note": "bath"}
    assert b.call("/api/agent/line1/calibrate", cal)[0] == 200
    status, shown = Browser(plant.url).call(where)
    assert status == 200 and shown["active"]["by"] == "tech" and shown["active"]["as_found_error"] == 0.5, shown
    assert Browser(plant.url).call("/api/agent/line1/calibration?instance=thermo-a")[0] == 400
    # the capture the alarm triggered, drawn as a PNG
    plant.sub.wait_for(lambda: b.call("/api/agent/line1/captures")[1].get("captures"), 30, "a capture saved")
    first = b.call("/api/agent/line1/captures")[1]["captures"][0]
    assert first["instance"] == "thermo-a" and first["rule"] == "overheat" and first["trigger"].startswith("alarm")
    cid = first["id"]
    with b.opener.open(f"{plant.url}/api/agent/line1/capture/{cid}", timeout=scaled(120)) as r:
        assert r.headers["Content-Type"] == "image/png" and r.read()[:4] == b"\x89PNG"
    # nothing else can be sent: no config push, no tag write, no restart through the panel
    assert b.call("/api/agent/line1/write", {"tag": "x", "value": 1})[0] == 404
    assert b.call("/api/agent/line1/restart", {"instance": "thermo-a"})[0] == 404
    # login rate limit: after 5 failures from this address (one above), even the right password waits
    guesser = Browser(plant.url)
    assert [guesser.login("tech", f"guess{i}") for i in range(4)] == [401] * 4
    assert guesser.login("tech") == 429
    assert b.call("/api/agent/line1/alarms")[0] == 200  # a session made before still works


def test_viewing_can_require_a_login(tmp_path: Path, broker: Any) -> None:
    plant = PanelPlant(tmp_path, broker, view_requires_login=True)
    try:
        b = Browser(plant.url)
        assert b.call("/api/overview")[0] == 401 and b.call("/api/me")[1]["view_requires_login"] is True
        with urllib.request.urlopen(plant.url + "/panel.js") as r:  # the page itself loads, to show the login
            assert r.status == 200
        assert b.login("visitor") == 200
        assert b.call("/api/overview")[0] == 200
    finally:
        plant.close()


def _bearing_capture() -> dict[str, Any]:
    """A recorder capture of an accelerometer with an outer-race fault (90 Hz bursts)."""
    import numpy as np

    rate, n = 3200.0, 6400
    t = np.arange(n) / rate
    bursts = (np.sin(2 * np.pi * 90.0 * t) > 0.95) * np.sin(2 * np.pi * 600.0 * t)  # an outer-race tone
    g = np.stack([0.2 * np.sin(2 * np.pi * 25.0 * t) + bursts, 0.1 * np.random.default_rng(1).normal(size=n)], axis=1)
    return {
        "meta": {"id": "x", "rule": "bearing", "instance": "pump1-de", "ts_ms": 1_796_000_000_000,
                 "trigger": {"kind": "bearing_fault", "tone": "bpfo", "active": True}},
        "snapshot": {"pump1-de": {"values": {"bearing": {"bpfo": {"hz": 90.0}, "bpfi": {"hz": 135.0}}}}},
        "series": {
            "pump1-de": {
                "kind": "waveform", "rate_hz": rate, "axes": ["x", "y"], "dtype": "float32", "scale": 1.0,
                "unit": "g", "trigger_offset_s": 1.0, "samples": g.astype("<f4").tobytes(),
            }
        },
    }  # fmt: skip


@pytest.mark.slow  # a subprocess
def test_a_vibration_capture_is_drawn_with_the_bearing_tones(tmp_path: Path) -> None:
    """The panel's capture viewer (a child process): waveform, spectrum, envelope spectrum, tones."""
    import msgpack

    pytest.importorskip("matplotlib")
    cap, png = tmp_path / "c.cap", tmp_path / "c.png"
    cap.write_bytes(msgpack.packb(_bearing_capture()))
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent.agent.ops.panel.render", str(cap), str(png), "Europe/Berlin"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert int.from_bytes(png.read_bytes()[16:20], "big") == 1000  # shown 1:1 in the panel (max 1000 px)


def test_a_capture_reads_on_a_tablet_in_the_plants_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every text of the capture picture at 10 pt or more (1000 px wide, shown 1:1: 14 px and up;
    it had 7-pt legends, 10 px); its time in the plant's zone. The A4 report keeps its own type."""
    pytest.importorskip("matplotlib")
    from edge_agent.agent.ops import plots

    figs: list[Any] = []
    monkeypatch.setattr(plots, "save", lambda fig, path, dpi=100: figs.append(fig))
    plots.recording(_bearing_capture(), tmp_path / "c.png", time_zone="Europe/Berlin")
    (fig,) = figs
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text")) if t.get_text()]
    small = sorted({(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 10}, key=str)
    assert len(texts) > 40 and not small, small
    assert fig.get_size_inches()[0] == plots.SCREEN_WIDTH_IN
    assert fig._suptitle.get_text().endswith("2026-11-30 01:53:20 CET")
    plots.report({"line": "line1", "shift": "A", "production": {}, "maintenance_due": []}, tmp_path / "r.png")
    assert min(t.get_fontsize() for t in figs[-1].texts) == 7  # its footer: paper, not a screen


def test_the_page_styles_survive_its_own_csp() -> None:
    """style-src 'self' blocks every style="..." attribute (the browser logs it and drops the style:
    a heading at full size, a table glued to the one above); and a table cell ignores min-height."""
    import re

    from edge_agent.agent.ops import panel

    static = Path(panel.__file__).parent / "static"
    for name in ("panel.js", "format.js", "index.html"):
        text = (static / name).read_text(encoding="utf-8")
        assert not re.search(r"\bstyle\s*=", text), f"{name}: inline style attribute, blocked by the CSP"
    css = (static / "panel.css").read_text(encoding="utf-8")
    assert not re.search(r"\btd\b[^{]*\{[^}]*min-height", css), "min-height on a table cell does nothing"
