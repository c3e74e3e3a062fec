"""``edge-agent panel -c panel.toml``: the technician's web page, served by its own process.

Stdlib only (http.server, threads): one page (static/index.html, panel.js, panel.css, all served
from here, no CDN), a JSON API under /api, live updates as Server-Sent Events on /api/live.
Reads agents over MQTT (agent/ops/panel/plant.py); actions are the few agent commands a
technician needs (ack, shelve, unshelve, maintenance_done, calibrate) sent with the logged-in
user as ``by`` and ``via = "panel"``: nothing here can push a config, write a PLC tag or change the
agent's local security settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from edge_agent.agent.ops.connection import ClientError, ClientSettings, _read_password
from edge_agent.agent.ops.fleet import signed_request
from edge_agent.agent.ops.panel.plant import Plant
from edge_agent.agent.ops.panel.security import (
    LoginLimiter,
    PanelConfig,
    Session,
    Sessions,
    check_password,
    load_config,
    may,
    read_users,
)
from edge_agent.agent.remote.signing import load_private_key

log = logging.getLogger("panel")
STATIC = Path(__file__).with_name("static")
COOKIE = "edge_panel"
LIVE_MIN_INTERVAL_S = 1.0  # a tablet gets at most one update a second
LIVE_KEEPALIVE_S = 15.0
SIGNED_TTL_S = 60.0  # a signed action is valid this long (agents accept at most 900 s)
# the actions the panel may send, and the role each needs
ACTIONS = {
    "ack": "technician",
    "shelve": "technician",
    "unshelve": "technician",
    "maintenance_done": "technician",
    "calibrate": "technician",
}
READS = ("history", "captures", "alarms", "audit", "report")


class Panel:
    """The panel's state: config, users, sessions, the plant view."""

    def __init__(self, cfg: PanelConfig, plant: Plant) -> None:
        self.cfg = cfg
        self.plant = plant
        self.sessions = Sessions(cfg.panel.session_hours * 3600)
        self.limiter = LoginLimiter()
        self.users_path = Path(cfg.panel.users_file)
        self.tls = bool(cfg.panel.tls_cert)
        self.cache = Path(tempfile.mkdtemp(prefix="edge-panel-"))
        # the panel's own key: actions go signed, as the logged-in user (agent/remote/authority.py)
        self.sign_key = load_private_key(cfg.mqtt.sign_key) if cfg.mqtt.sign_key else None

    def login(self, name: str, password: str, address: str) -> tuple[str, Session] | str:
        """A new session, or why not (said the same for a wrong user and a wrong password)."""
        wait = self.limiter.blocked_for_s(f"addr:{address}", f"user:{name}")
        if wait > 0:
            return f"too many failed logins: try again in {wait:.0f} s"
        user = read_users(self.users_path).get(name)
        if user is None or not check_password(password, user.hash):
            self.limiter.failed(f"addr:{address}", f"user:{name}")
            return "wrong user name or password"
        return self.sessions.create(user)


class Handler(BaseHTTPRequestHandler):
    panel: Panel  # set on the class made by serve()
    server_version = "edge-panel"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    # -- plumbing -----------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _session(self) -> tuple[str | None, Session | None]:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        token = cookie[COOKIE].value if COOKIE in cookie else None
        return token, self.panel.sessions.get(token)

    def _headers(self, status: int, ctype: str, length: int | None, extra: dict[str, str] | None = None) -> None:
        """Status and headers; ``length`` None: a stream that ends with the connection (SSE)."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is None:
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        )
        if self.panel.tls:
            self.send_header("Strict-Transport-Security", "max-age=31536000")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _json(self, obj: Any, status: int = 200, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, default=_jsonable, allow_nan=False).encode()
        self._headers(status, "application/json", len(body), {"Cache-Control": "no-store", **(extra or {})})
        self.wfile.write(body)

    def _error(self, status: int, why: str) -> None:
        self._json({"error": why}, status)

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        if n > 64 * 1024:
            raise ValueError("request too large")
        data = json.loads(self.rfile.read(n) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    # -- GET ----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        if not path.startswith("/api/"):
            self._static(path)
            return
        _, session = self._session()
        if path == "/api/me":
            self._json(self._me(session))
            return
        if self.panel.cfg.panel.view_requires_login and session is None:
            self._error(HTTPStatus.UNAUTHORIZED, "log in to view")
            return
        try:
            self._get_api(path, query)
        except (ValueError, KeyError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))

    def _me(self, session: Session | None) -> dict[str, Any]:
        p = self.panel.cfg.panel
        if session is None:
            return {"user": None, "role": None, "view_requires_login": p.view_requires_login}
        return {"user": session.user, "role": session.role, "csrf": session.csrf, "view_requires_login": False}

    def _get_api(self, path: str, q: dict[str, list[str]]) -> None:
        parts = path.strip("/").split("/")[1:]  # after "api"
        plant = self.panel.plant
        if parts == ["overview"]:
            self._json(plant.overview())
        elif parts == ["live"]:
            self._live()
        elif len(parts) == 2 and parts[0] == "agent":
            found = plant.agent(parts[1])
            self._json(found) if found is not None else self._error(404, f"no agent {parts[1]!r} seen")
        elif len(parts) == 4 and parts[0] == "agent" and parts[2] == "instance":
            found = plant.instance(parts[1], parts[3])
            self._json(found) if found is not None else self._error(404, "no such agent")
        elif len(parts) == 3 and parts[0] == "agent" and parts[2] == "calibration":
            self._calibration(parts[1], q)
        elif len(parts) == 3 and parts[0] == "agent" and parts[2] in READS:
            self._read(parts[1], parts[2], q)
        elif len(parts) == 4 and parts[0] == "agent" and parts[2] == "capture":
            self._capture_png(parts[1], parts[3])
        elif len(parts) == 4 and parts[0] == "agent" and parts[2] == "report":
            self._report(parts[1], parts[3])
        else:
            self._error(404, "no such page")

    def _read(self, agent: str, name: str, q: dict[str, list[str]]) -> None:
        """Read commands, answered by the agent (history, captures, alarms, audit)."""
        one = {k: v[0] for k, v in q.items()}
        if name == "history":
            args: dict[str, Any] = {"since": one.get("since", "8h"), "resolution": one.get("resolution", "auto")}
            if one.get("key"):
                args["keys"] = [one["key"]]
            if one.get("list"):
                args["list"] = True
            req = {"instance": one.get("instance", ""), "args": args}
        elif name == "audit":
            req = {"args": {"since_s": 30 * 86400, "limit": 500}}
        else:
            req = {}
        self._relay(agent, name, req)

    def _calibration(self, agent: str, q: dict[str, list[str]]) -> None:
        """A channel's calibration as the agent keeps it: ``calibrate`` with ``action = "show"`` (a read)."""
        instance, channel = q.get("instance", [""])[0], q.get("channel", [""])[0]
        if not instance or not channel:
            raise ValueError("calibration needs ?instance=NAME&channel=NAME")
        self._relay(agent, "calibrate", {"instance": instance, "args": {"channel": channel, "action": "show"}})

    def _relay(self, agent: str, name: str, req: dict[str, Any]) -> None:
        d = self.panel.plant.ask(agent, name, req)
        if d is None:
            self._error(HTTPStatus.GATEWAY_TIMEOUT, f"{agent} did not answer {name} within 10 s (offline?)")
        elif not d.get("ok"):
            self._error(HTTPStatus.CONFLICT, str(d.get("error")))
        else:
            self._json(d.get("result"))

    def _capture_png(self, agent: str, cid: str) -> None:
        """A saved capture drawn by agent/ops/plots.py in a child process (the panel stays small)."""
        if not cid.replace("-", "").replace("_", "").isalnum():
            self._error(400, "bad capture id")
            return
        zone = str((self.panel.plant.agent(agent) or {}).get("time_zone") or self.panel.cfg.panel.timezone)
        png = self.panel.cache / f"{agent}-{cid}-{zone.replace('/', '_')}.png"  # drawn in the plant's time
        if not png.exists():
            d = self.panel.plant.ask(agent, "capture_get", {"args": {"id": cid}}, timeout_s=30)
            if d is None or not d.get("ok"):
                self._error(409, str((d or {}).get("error", "no answer")))
                return
            cap = png.with_suffix(".cap")
            cap.write_bytes(d["data"])
            done = subprocess.run(
                [sys.executable, "-m", "edge_agent.agent.ops.panel.render", str(cap), str(png), zone],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                self._error(500, f"cannot draw the capture: {done.stderr.strip()[-300:]}")
                return
        body = png.read_bytes()
        self._headers(200, "image/png", len(body), {"Cache-Control": "private, max-age=3600"})
        self.wfile.write(body)

    def _report(self, agent: str, line: str) -> None:
        from edge_agent.agent.ops.report_render import period, sections, title

        found = self.panel.plant.agent(agent)
        r = (found or {}).get("reports", {}).get(line)
        if r is None:
            self._error(404, f"no shift report of {line!r} yet")
            return
        self._json({"title": title(r), "period": period(r), "sections": sections(r)})

    def _live(self) -> None:
        """Server-Sent Events: which (agent, part) changed, at most once a second."""
        self._headers(200, "text/event-stream", None, {"Cache-Control": "no-store"})
        plant = self.panel.plant
        seen, _ = plant.changes_since(1 << 62)
        last_send = 0.0
        try:
            while True:
                with plant.changed:
                    plant.changed.wait(LIVE_KEEPALIVE_S)
                time.sleep(max(0.0, LIVE_MIN_INTERVAL_S - (time.monotonic() - last_send)))
                seen, changed = plant.changes_since(seen)
                if changed:
                    payload = json.dumps(sorted({f"{a}/{w}" for a, w in changed}))
                    self.wfile.write(f"data: {payload}\n\n".encode())
                    last_send = time.monotonic()
                else:
                    self.wfile.write(b": keepalive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return

    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        f = (STATIC / name).resolve()
        if STATIC.resolve() not in f.parents or not f.is_file():
            self._error(404, "no such file")
            return
        body = f.read_bytes()
        ctype = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
        self._headers(200, ctype, len(body), {"Cache-Control": "no-cache"})
        self.wfile.write(body)

    # -- POST ---------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        path = urlparse(self.path).path
        try:
            body = self._body()
        except (ValueError, json.JSONDecodeError) as exc:
            self._error(400, str(exc))
            return
        if path == "/api/login":
            self._login(body)
            return
        token, session = self._session()
        if session is None:
            self._error(HTTPStatus.UNAUTHORIZED, "log in first: every action needs a user")
            return
        if self.headers.get("X-CSRF-Token") != session.csrf:
            self._error(HTTPStatus.FORBIDDEN, "missing or wrong CSRF token (reload the page)")
            return
        if path == "/api/logout":
            self.panel.sessions.drop(token)
            self._json({"ok": True}, extra={"Set-Cookie": self._cookie("", 0)})
            return
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[1] == "agent" and parts[3] in ACTIONS:
            self._action(parts[2], parts[3], body, session)
        else:
            self._error(404, "no such action")

    def _cookie(self, value: str, max_age: int) -> str:
        secure = "; Secure" if self.panel.tls else ""
        return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"

    def _login(self, body: dict[str, Any]) -> None:
        name, password = str(body.get("user", ""))[:64], str(body.get("password", ""))[:256]
        got = self.panel.login(name, password, self.client_address[0])
        if isinstance(got, str):
            status = HTTPStatus.TOO_MANY_REQUESTS if got.startswith("too many") else HTTPStatus.UNAUTHORIZED
            self._error(status, got)
            return
        token, s = got
        age = int(self.panel.sessions.ttl_s)
        self._json({"user": s.user, "role": s.role, "csrf": s.csrf}, extra={"Set-Cookie": self._cookie(token, age)})

    def _action(self, agent: str, name: str, body: dict[str, Any], session: Session) -> None:
        """One technician action, sent as the logged-in user (recorded in the agent's audit trail)."""
        if not may(session.role, ACTIONS[name]):
            self._error(HTTPStatus.FORBIDDEN, f"{session.role} may not {name} (needs {ACTIONS[name]})")
            return
        args = {k: v for k, v in body.items() if k not in ("by", "via", "instance")}
        args.update(by=session.user, via=f"panel {self.client_address[0]}")
        req: dict[str, Any] = {"args": args}
        if isinstance(body.get("instance"), str):
            req["instance"] = body["instance"]
        self._relay(agent, name, signed_request(req, name, agent, session.user, self.panel.sign_key, SIGNED_TTL_S))


def _jsonable(o: Any) -> Any:
    if isinstance(o, bytes | bytearray):
        return None  # raw samples are not for the page
    if isinstance(o, float):
        return None
    return str(o)


def serve(cfg: PanelConfig, *, ready: threading.Event | None = None) -> None:
    """Run until interrupted."""
    m = cfg.mqtt
    settings = ClientSettings(
        url=m.url,
        username=m.username,
        password=_read_password(m.password_file) if m.password_file else None,
        ca_file=m.ca_file,
        prefix=m.prefix,
    )
    plant = Plant(settings, cfg.panel.agents, cfg.panel.timezone)
    plant.start()
    handler = type("PanelHandler", (Handler,), {"panel": Panel(cfg, plant)})
    httpd = ThreadingHTTPServer((cfg.panel.bind, cfg.panel.port), handler)
    httpd.daemon_threads = True
    scheme = "http"
    if cfg.panel.tls_cert and cfg.panel.tls_key:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cfg.panel.tls_cert, cfg.panel.tls_key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    host, port = str(httpd.server_address[0]), int(httpd.server_address[1])
    print(f"panel: {scheme}://{host}:{port}/ (agents over {m.url} as {m.username or 'anonymous'})", flush=True)
    if ready is not None:
        ready.set()
    try:
        httpd.serve_forever(poll_interval=1.0)
    finally:
        httpd.server_close()
        plant.close()


def cmd_panel(args: argparse.Namespace) -> int:
    """``edge-agent panel -c panel.toml``: off unless configured."""
    try:
        cfg = load_config(Path(args.config))
    except ValueError as exc:
        raise SystemExit(f"panel: {exc}") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(cfg)
    except ClientError as exc:
        raise SystemExit(f"panel: {exc}") from exc
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        raise SystemExit(f"panel: cannot listen on {cfg.panel.bind}:{cfg.panel.port}: {exc}") from exc
    return 0


def cmd_panel_user(args: argparse.Namespace) -> int:
    """``edge-agent panel-user USERS_FILE NAME --role technician``: the password from stdin or a prompt."""
    import getpass

    from edge_agent.agent.ops.panel.security import set_user

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
    try:
        set_user(Path(args.users_file), args.name, args.role, password)
    except ValueError as exc:
        raise SystemExit(f"panel-user: {exc}") from exc
    print(f"panel-user: {args.name} ({args.role}) -> {args.users_file}")
    return 0
