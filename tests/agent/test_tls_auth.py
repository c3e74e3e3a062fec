"""TLS (mqtts:// with a CA file) and username + password_file against a real mosquitto."""

from __future__ import annotations

import datetime
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from edge_agent.agent.devtools.local_broker import free_port, wait_port
from edge_agent.agent.messaging import codec
from paho.mqtt.enums import CallbackAPIVersion
from support import AgentProcess, scaled, write_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="mosquitto_passwd not installed"),
]


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A world-readable temp dir: mosquitto reads certificates and password files after it has
    dropped root for the mosquitto user, which cannot enter pytest's private temp dirs."""
    d = Path(tempfile.mkdtemp(prefix="edge-tls-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _cert(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    for p in paths:
        p.chmod(0o644)
    return paths


def test_tls_and_password(tmp_path: Path) -> None:
    ca, cert, key = _cert(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "edge", "s3cret-Pw"], check=True)
    pw.chmod(0o644)
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
        f"allow_anonymous false\npassword_file {pw}\npersistence false\n"
    )
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port)
        (tmp_path / "mqtt.pass").write_text("s3cret-Pw\n")
        cfg = write_config(
            tmp_path / "a.toml",
            state_dir=tmp_path / "s",
            extra=(f'username = "edge"\npassword_file = "{tmp_path / "mqtt.pass"}"\nca_file = "{ca}"\n'),
            instances='[[instances]]\nname = "sine"\nplugin = "values"\ninterval_s = 0.2\n'
            'driver = { type = "sim", profile = "ramp", amplitude = 100.0 }\n',
        )
        got: list[dict] = []
        sub = mqtt.Client(CallbackAPIVersion.VERSION2)
        sub.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        sub.username_pw_set("edge", "s3cret-Pw")
        sub.on_connect = lambda c, u, f, rc, p=None: c.subscribe("edge/#", qos=1)
        sub.on_message = lambda c, u, m: (
            got.append({"topic": m.topic, **codec.decode(m.payload)}) if "/data/" in m.topic else None
        )
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        agent = AgentProcess(cfg, f"mqtts://127.0.0.1:{port}")
        try:
            deadline = time.monotonic() + scaled(20)
            while time.monotonic() < deadline and not any(g["topic"] == "edge/t1/data/sine" for g in got):
                time.sleep(0.05)
            assert any(g["topic"] == "edge/t1/data/sine" for g in got), agent.log()
            # the ops CLI over TLS with a password file: mqtts:// and ssl:// both mean TLS
            login = ["--username", "edge", "--password-file", str(tmp_path / "mqtt.pass"), "--ca-file", str(ca)]
            for scheme in ("mqtts", "ssl"):
                r = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "edge_agent.agent",
                        "cmd",
                        "t1",
                        "ping",
                        "--url",
                        f"{scheme}://127.0.0.1:{port}",
                        *login,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=scaled(60),
                )
                assert r.returncode == 0 and r.stdout.startswith("pong (up "), r.stderr
        finally:
            assert agent.stop() == 0
            sub.loop_stop()
        assert "s3cret-Pw" not in agent.log()
    finally:
        broker.terminate()
        broker.wait(5)


def test_wrong_password_is_reported_and_retried(tmp_path: Path) -> None:
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "edge", "right"], check=True)
    pw.chmod(0o644)
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port)
        (tmp_path / "mqtt.pass").write_text("wrong\n")
        cfg = write_config(
            tmp_path / "a.toml",
            state_dir=tmp_path / "s",
            extra=f'username = "edge"\npassword_file = "{tmp_path / "mqtt.pass"}"\n',
            instances='[[instances]]\nname = "system"\nplugin = "system"\n',
        )
        agent = AgentProcess(cfg, f"mqtt://127.0.0.1:{port}")
        # The first refusal takes longer than a fixed 3 s to be logged at load 8 (seen natively).
        deadline = time.monotonic() + scaled(10)
        while "broker refused connection" not in agent.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # and then the agent is still there, retrying
        assert agent.proc.poll() is None, "a refused login is retried, never a crash"
        assert agent.stop() == 0
        assert "broker refused connection" in agent.log() and "wrong" not in agent.log().replace("wrong_", "")
    finally:
        broker.terminate()
        broker.wait(5)
