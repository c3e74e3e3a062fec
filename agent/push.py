"""``edge-agent push-config`` and ``edge-agent keygen``: the ops side of remote configuration.

push-config validates locally first, pushes to one or many agents (ids, or patterns with ``*``
resolved from their retained status), waits for every answer and prints a summary table. Exit
code: 0 all accepted, 1 any rejected or rolled back, 2 any agent did not answer.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import json
import os
import queue
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent import codec
from edge_agent.agent.config import build
from edge_agent.agent.errors import ConfigError
from edge_agent.agent.registry import load_registry
from edge_agent.agent.remote import canonical_bytes
from edge_agent.agent.tail import subscribe

NO_ANSWER = "no answer"


def read_push_file(path: Path) -> dict[str, Any]:
    """A TOML or JSON file with [[instances]] (and optional sections)."""
    text = path.read_bytes()
    if path.suffix == ".json":
        data: dict[str, Any] = json.loads(text)
    else:
        data = tomllib.loads(text.decode("utf-8"))
    return data


def local_errors(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Validate with the plugins installed here; unknown plugins/drivers are only warnings (the
    agents may have packages this machine lacks)."""
    try:
        build(config, load_registry(), source="push")
    except ConfigError as exc:
        warn = [e for e in exc.errors if "unknown plugin" in e or "unknown driver" in e]
        return [e for e in exc.errors if e not in warn], warn
    return [], []


def sign(version: int, config: dict[str, Any], key_path: str) -> str:
    """Detached Ed25519 signature (base64) over the canonical bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(Path(key_path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{key_path}: not an Ed25519 private key (make one with `edge-agent keygen`)")
    return base64.b64encode(key.sign(canonical_bytes(version, config))).decode()


def resolve_agents(url: str, prefix: str, patterns: list[str], wait_s: float = 1.5) -> list[str]:
    """Expand patterns with * against the agents whose retained status says online."""
    if not any("*" in p for p in patterns):
        return patterns
    client, q = subscribe(url, [f"{prefix}/+/status"], client_id=f"edge-push-{uuid.uuid4().hex[:8]}")
    online: set[str] = set()
    deadline = time.monotonic() + wait_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                topic, payload, _ = q.get(timeout=left)
            except queue.Empty:
                break
            if topic.endswith("/status"):
                env = codec.decode(payload)
                if env["d"].get("state") == "online":
                    online.add(topic.split("/")[1])
    finally:
        client.loop_stop()
        client.disconnect()
    out = [p for p in patterns if "*" not in p]
    out += sorted(a for a in online if any(fnmatch.fnmatchcase(a, p) for p in patterns if "*" in p))
    return out


def push(url: str, prefix: str, agents: list[str], doc: dict[str, Any], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Publish the document to every agent and collect their answers by id."""
    topics = [f"{prefix}/{a}/config/result" for a in agents]
    client, q = subscribe(url, topics, client_id=f"edge-push-{uuid.uuid4().hex[:8]}")
    answers: dict[str, dict[str, Any]] = {}
    try:
        while q.get(timeout=10)[0] != "$connected":
            pass
        ids = {}
        for a in agents:
            ident = f"{uuid.uuid4().hex[:12]}"
            ids[ident] = a
            client.publish(f"{prefix}/{a}/config/set", msgpack.packb({**doc, "id": ident}), qos=1)
        deadline = time.monotonic() + timeout_s
        while len(answers) < len(agents) and (left := deadline - time.monotonic()) > 0:
            try:
                _, payload, _ = q.get(timeout=left)
            except queue.Empty:
                break
            d = codec.decode(payload)["d"]
            if d.get("id") in ids:
                answers[ids[d["id"]]] = d
    finally:
        client.loop_stop()
        client.disconnect()
    return answers


def summary_line(agent: str, d: dict[str, Any] | None) -> str:
    if d is None:
        return f"{agent:20} {NO_ANSWER}"
    status = d.get("status", "?")
    if status == "accepted":
        inst = d.get("instances", {})
        counts = ", ".join(f"{len(v)} {k}" for k, v in inst.items() if v)
        return f"{agent:20} accepted    version {d.get('version')} ({counts})"
    if status == "rolled_back":
        return f"{agent:20} rolled_back {d.get('reason')}"
    return f"{agent:20} rejected    " + "\n" + "\n".join(f"{'':22}{e}" for e in d.get("errors", []))


def cmd_push_config(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("EDGE_AGENT_MQTT_URL") or "mqtt://127.0.0.1:1883"
    config = read_push_file(Path(args.file))
    version = (
        args.config_version if args.config_version is not None else int(config.pop("version", 0)) or int(time.time())
    )
    config.pop("version", None)
    errors, warnings = local_errors(config)
    for w in warnings:
        print(f"warning (not installed here, checked by the agent): {w}", file=sys.stderr)
    if errors:
        print(f"{args.file}: {len(errors)} error(s), nothing pushed", file=sys.stderr)
        print("\n".join(errors), file=sys.stderr)
        return 1
    doc: dict[str, Any] = {"version": version, "config": config}
    if args.sign:
        doc["sig"] = sign(version, config, args.sign)
    agents = resolve_agents(url, args.prefix, args.agent)
    if not agents:
        print("no agent matched", file=sys.stderr)
        return 2
    answers = push(url, args.prefix, agents, doc, args.timeout)
    print(f"pushed version {version} to {len(agents)} agent(s):")
    for a in agents:
        print(summary_line(a, answers.get(a)))
    if len(answers) < len(agents):
        return 2
    return 0 if all(d.get("status") == "accepted" for d in answers.values()) else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = Path(args.out)
    if out.exists():
        print(f"{out} exists; not overwriting a key", file=sys.stderr)
        return 1
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pub = base64.b64encode(raw).decode()
    Path(f"{out}.pub").write_text(pub + "\n")
    print(
        f"private key: {out} (keep it with ops)\npublic key:  {out}.pub\n"
        f'agents trust it with:\n[remote]\nrequire_signature = true\ntrusted_keys = ["{pub}"]'
    )
    return 0
