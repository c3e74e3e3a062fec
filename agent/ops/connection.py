"""Broker connection of the client commands (tail, capture, push-config, fleet, cmd, get-config).

Settings come from, first match wins: command-line flags, the URL (``mqtt://USER:PASS@host``),
the environment (``EDGE_AGENT_MQTT_URL``, ``..._USERNAME``, ``..._PASSWORD_FILE``, ``..._CA_FILE``,
``..._CERT_FILE``, ``..._KEY_FILE``), the CLI config file (``--cli-config``, ``$EDGE_AGENT_CLI_CONFIG``
or ``~/.config/edge-agent/cli.toml``, table ``[mqtt]`` with the same keys plus ``prefix`` and
``sign_key``). ``mqtts://`` and ``ssl://`` mean TLS. Every failure is one line (ClientError).
"""

from __future__ import annotations

import argparse
import os
import queue
import ssl
import threading
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ENV = "EDGE_AGENT_MQTT_"
DEFAULT_URL = "mqtt://127.0.0.1:1883"
KEYS = ("url", "username", "password_file", "ca_file", "cert_file", "key_file", "prefix", "sign_key")


class ClientError(Exception):
    """A connection or settings problem, said in one line."""


@dataclass(frozen=True)
class ClientSettings:
    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    prefix: str = "edge"
    sign_key: str | None = None

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "127.0.0.1"

    @property
    def tls(self) -> bool:
        return urlparse(self.url).scheme in ("mqtts", "ssl")

    @property
    def port(self) -> int:
        return urlparse(self.url).port or (8883 if self.tls else 1883)


def add_args(p: argparse.ArgumentParser) -> None:
    """The connection flags every client command takes."""
    g = p.add_argument_group("broker connection (flags > URL > environment > CLI config file)")
    g.add_argument("--url", help=f"broker, mqtt[s]://[USER[:PASS]@]HOST[:PORT] (default: ${ENV}URL or {DEFAULT_URL})")
    g.add_argument("--username", help=f"broker user (or ${ENV}USERNAME)")
    g.add_argument("--password-file", help=f"file whose first line is the password (or ${ENV}PASSWORD_FILE)")
    g.add_argument("--ca-file", help="CA certificate for mqtts:// (default: the system's)")
    g.add_argument("--cert-file", help="client certificate (mutual TLS)")
    g.add_argument("--key-file", help="client certificate's key")
    g.add_argument("--prefix", help="topic prefix (default: edge)")
    g.add_argument(
        "--cli-config", help="CLI config file (default: $EDGE_AGENT_CLI_CONFIG or ~/.config/edge-agent/cli.toml)"
    )


def _file_settings(path_arg: str | None) -> dict[str, Any]:
    path = path_arg or os.environ.get("EDGE_AGENT_CLI_CONFIG")
    p = Path(path).expanduser() if path else Path("~/.config/edge-agent/cli.toml").expanduser()
    if not p.exists():
        if path:
            raise ClientError(f"{p}: CLI config file not found")
        return {}
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ClientError(f"{p}: not a readable TOML file: {exc}") from exc
    table = data.get("mqtt", {})
    if not isinstance(table, dict):
        raise ClientError(f"{p}: [mqtt] must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ClientError(f"{p}: mqtt.{unknown[0]}: unknown key (allowed: {', '.join(KEYS)})")
    return {k: str(Path(v).expanduser()) if k.endswith(("_file", "_key")) else v for k, v in table.items()}


def _read_password(path: str) -> str:
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientError(f"{path}: cannot read the password file: {exc}") from exc
    return lines[0].strip() if lines else ""


def resolve(args: argparse.Namespace) -> ClientSettings:
    """Merge flags, URL, environment and CLI config file (in that order of precedence)."""
    file = _file_settings(getattr(args, "cli_config", None))

    def pick(key: str) -> Any:
        flag = getattr(args, key, None)
        return flag if flag is not None else os.environ.get(ENV + key.upper()) or file.get(key)

    url = pick("url") or DEFAULT_URL
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not u.hostname:
        raise ClientError(f"--url: expected mqtt[s]://[USER[:PASS]@]HOST[:PORT], got {url!r}")
    username = getattr(args, "username", None) or (unquote(u.username) if u.username else None) or pick("username")
    password_file = pick("password_file")
    password: str | None = unquote(u.password) if u.password else None
    if password_file:
        password = _read_password(password_file)
    clean = u._replace(netloc=u.hostname + (f":{u.port}" if u.port else "")).geturl()
    return ClientSettings(
        url=clean,
        username=username,
        password=password,
        ca_file=pick("ca_file"),
        cert_file=pick("cert_file"),
        key_file=pick("key_file"),
        prefix=getattr(args, "prefix", None) or file.get("prefix") or "edge",
        sign_key=file.get("sign_key"),
    )


CONNACK_WHY = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised",
}


class Connection:
    """A connected paho client (network thread) delivering (topic, payload, retain) to ``inbox``."""

    def __init__(
        self, settings: ClientSettings, topics: list[str], *, name: str = "edge-cli", timeout_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.timeout_s = timeout_s
        self.inbox: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self._ready = threading.Event()
        self._pending_subs: set[int] = set()
        self._refused = ""
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:8]}")
        s = settings
        if s.username:
            self.client.username_pw_set(s.username, s.password)
        if s.tls:
            try:
                self.client.tls_set(
                    ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file, cert_reqs=ssl.CERT_REQUIRED
                )
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise ClientError(f"TLS settings: {exc}") from exc
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.inbox.put((m.topic, bytes(m.payload), bool(m.retain)))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self._refused = CONNACK_WHY.get(int(rc.value), str(rc))
            self._ready.set()
            return
        if not self.topics:
            self._ready.set()
        for t in self.topics:
            mid = client.subscribe(t, qos=1)[1]
            if mid is not None:
                self._pending_subs.add(mid)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any = None) -> None:
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self._ready.set()

    def __enter__(self) -> Connection:
        s = self.settings
        try:
            self.client.connect(s.host, s.port, 30)
        except (OSError, ssl.SSLError) as exc:
            raise ClientError(f"cannot connect to {s.url}: {exc}") from exc
        self.client.loop_start()
        if not self._ready.wait(self.timeout_s):
            self.close()
            raise ClientError(f"{s.url}: no answer from the broker within {self.timeout_s:g} s")
        if self._refused:
            self.close()
            who = f" as {s.username!r}" if s.username else " (no user name given: --username, or in the URL)"
            raise ClientError(f"{s.url}: the broker refused the connection{who}: {self._refused}")
        return self

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(self.timeout_s)

    def get(self, timeout_s: float) -> tuple[str, bytes, bool] | None:
        """The next message, or None after ``timeout_s``."""
        try:
            return self.inbox.get(timeout=max(0.0, timeout_s))
        except queue.Empty:
            return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
