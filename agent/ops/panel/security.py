"""The panel's settings, users (scrypt hashes in a local file), sessions, CSRF and login limits.

Off unless configured: ``edge-agent panel -c panel.toml`` needs the file. Binds 127.0.0.1 unless
``bind`` says otherwise; TLS when ``tls_cert`` and ``tls_key`` are given. Viewing may be open
(``view_requires_login = false``, the default) or need a login; every action needs one, and a role
that may do it (viewer < technician < admin).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import tomllib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec

ROLES = ("viewer", "technician", "admin")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MB and ~50 ms per check on a Pi 4: slow for a guesser
LOGIN_FAILURES_MAX = 5  # per client address and per user name, in LOGIN_WINDOW_S
LOGIN_WINDOW_S = 300.0


class PanelSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bind: str = "127.0.0.1"  # "0.0.0.0": every interface (the plant LAN); then use TLS
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8088
    agents: list[str] = []  # the agents shown; empty: every agent seen on the broker
    users_file: str = "panel-users.txt"  # relative to the config file
    view_requires_login: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    session_hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 30)] = 12.0  # one shift and some
    # the plant's time zone (IANA) until an agent's shift report names its own (its production ``timezone``)
    timezone: str = "UTC"


class PanelMqtt(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = "panel"
    password_file: str | None = None
    ca_file: str | None = None
    prefix: str = "edge"
    sign_key: str | None = None  # Ed25519 private key (PEM): signs actions for agents with require_signature


class PanelConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    panel: PanelSection = msgspec.field(default_factory=PanelSection)
    mqtt: PanelMqtt = msgspec.field(default_factory=PanelMqtt)


def load_config(path: Path) -> PanelConfig:
    """Read and check the panel's TOML; ValueError naming the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        cfg = msgspec.convert(raw, PanelConfig)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    base = path.absolute().parent
    users = Path(cfg.panel.users_file)
    cfg.panel.users_file = str(users if users.is_absolute() else base / users)
    if cfg.mqtt.sign_key and not Path(cfg.mqtt.sign_key).is_absolute():
        cfg.mqtt.sign_key = str(base / cfg.mqtt.sign_key)
    if not known_zone(cfg.panel.timezone):
        zone = cfg.panel.timezone
        raise ValueError(f"{path}: panel.timezone: unknown time zone {zone!r} (an IANA name: Europe/Berlin)")
    if bool(cfg.panel.tls_cert) != bool(cfg.panel.tls_key):
        raise ValueError(f"{path}: panel.tls_cert and panel.tls_key go together")
    return cfg


def known_zone(name: str) -> bool:
    """An IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # zoneinfo raises several kinds for an unknown key
        return False
    return True


# -- users -------------------------------------------------------------------------------------------
def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64): the stored form of a password."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    hash: str


def read_users(path: Path) -> dict[str, User]:
    """``name role hash`` per line (``#`` comments); a missing file: nobody can log in."""
    users: dict[str, User] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return users
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ROLES or not parts[2].startswith("scrypt$"):
            raise ValueError(f"{path}:{i}: expected 'NAME ROLE scrypt$...' with ROLE one of {', '.join(ROLES)}")
        users[parts[0]] = User(*parts)
    return users


def set_user(path: Path, name: str, role: str, password: str) -> None:
    """Add or replace a user (file mode 0600: the hashes are not for everyone)."""
    if role not in ROLES or not name.isprintable() or not name or " " in name:
        raise ValueError(f"a user name without spaces and a role of {', '.join(ROLES)}")
    if len(password) < 8:
        raise ValueError("a password of at least 8 characters")
    users = read_users(path)
    users[name] = User(name, role, hash_password(password))
    text = "# edge-agent panel users: NAME ROLE HASH (edge-agent panel-user)\n"
    text += "".join(f"{u.name} {u.role} {u.hash}\n" for u in users.values())
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def may(role: str | None, need: str) -> bool:
    """Does a role reach the needed one (viewer < technician < admin)?"""
    return role is not None and ROLES.index(role) >= ROLES.index(need)


# -- sessions and login limits -----------------------------------------------------------------------
@dataclass
class Session:
    user: str
    role: str
    csrf: str
    expires: float  # time.monotonic() seconds


class Sessions:
    """Random session tokens (cookie) with a CSRF token each; expire after ``ttl_s``."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: User) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        # monotonic: a session lasts ttl_s of time that passed, whatever the wall clock does (issue 29)
        s = Session(user.name, user.role, secrets.token_urlsafe(24), time.monotonic() + self.ttl_s)
        with self._lock:
            now = time.monotonic()
            self._by_token = {t: v for t, v in self._by_token.items() if v.expires > now}
            self._by_token[token] = s
        return token, s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            s = self._by_token.get(token)
            if s is None or s.expires < time.monotonic():
                self._by_token.pop(token, None)
                return None
            return s

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


class LoginLimiter:
    """At most LOGIN_FAILURES_MAX failed logins per address and per user name in LOGIN_WINDOW_S."""

    def __init__(self) -> None:
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked_for_s(self, *keys: str) -> float:
        now = time.monotonic()
        with self._lock:
            waits = []
            for k in keys:
                q = self._fails.get(k)
                while q and now - q[0] > LOGIN_WINDOW_S:
                    q.popleft()
                if q and len(q) >= LOGIN_FAILURES_MAX:
                    waits.append(LOGIN_WINDOW_S - (now - q[0]))
            return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._fails.setdefault(k, deque(maxlen=LOGIN_FAILURES_MAX * 2)).append(now)
