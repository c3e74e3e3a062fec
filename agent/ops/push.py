"""``edge-agent push-config`` and ``edge-agent keygen``: the ops side of remote configuration.

push-config checks the file locally, reads the inventory, writes each target agent's retained
desired config (signed, bound to that agent, versioned fleet-wide) in waves and waits for the
answers; a failure threshold stops the rollout. Offline agents get the retained document and
apply it when they reconnect. Exit code: 0 every online agent accepted (or already had it),
1 any rejected / rolled back / unknown id / rollout stopped, 2 an online agent did not answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import build
from edge_agent.agent.errors import CodecError, ConfigError
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.connection import ClientError, ClientSettings, Connection, resolve
from edge_agent.agent.ops.inventory import AgentInfo, collect, fleet_version, select
from edge_agent.agent.remote.signing import load_private_key, sign

LOCAL_SECTIONS = ("agent", "mqtt", "remote", "spool", "sparkplug")
FAILED = ("rejected", "rolled_back", "no_answer", "unknown_id", "not_pushed")


def read_push_file(path: Path) -> dict[str, Any]:
    """A TOML or JSON file with [[instances]]; SystemExit with one line when it cannot be read."""
    try:
        text = path.read_bytes()
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise SystemExit(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a table with [[instances]]")
    return data


def local_errors(instances: list[Any]) -> tuple[list[str], list[str]]:
    """Validate with the plugins installed here; unknown plugins/drivers are only warnings (the
    agents may have packages this machine lacks)."""
    try:
        build({"instances": instances}, load_registry(), source="push")
    except ConfigError as exc:
        warn = [e for e in exc.errors if "unknown plugin" in e or "unknown driver" in e]
        return [e for e in exc.errors if e not in warn], warn
    return [], []


def body_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``config`` or ``patch`` part of the document, checked locally; SystemExit on errors."""
    data = read_push_file(Path(args.file)) if args.file else {}
    if not args.file and not args.remove and not args.clear:
        raise SystemExit("push-config: give a FILE with [[instances]], --remove NAME or --clear")
    sections = [k for k in data if k in LOCAL_SECTIONS]
    other = [k for k in data if k not in LOCAL_SECTIONS and k not in ("instances", "version")]
    if sections or other:
        why = [f"{k}: [{k}] comes from each agent's local file; a push carries instances only" for k in sections]
        why += [f"{k}: unknown key (a push file holds [[instances]] only)" for k in other]
        raise SystemExit(f"{args.file}: nothing pushed\n" + "\n".join(why))
    instances = data.get("instances", [])
    errors, warnings = local_errors(instances)
    for w in warnings:
        print(f"warning (not installed here, checked by the agent): {w}", file=sys.stderr)
    if errors:
        raise SystemExit(f"{args.file}: {len(errors)} error(s), nothing pushed\n" + "\n".join(errors))
    if args.patch or args.remove:
        return {"patch": {"set": instances, "remove": list(args.remove or [])}}
    return {"config": {"instances": [] if args.clear else instances}}


def binding(target: str, ttl_s: float) -> dict[str, Any]:
    """What binds a signed document (push or command) to one agent and one moment: target, expiry, nonce."""
    return {
        "target": target,
        "expires": int(time.time() + ttl_s),
        "nonce": base64.urlsafe_b64encode(os.urandom(12)).decode(),
    }


def make_doc(body: dict[str, Any], version: int, target: str, args: argparse.Namespace, key: Any) -> dict[str, Any]:
    """One bound document: target, version, expiry, nonce (signed when a key is given)."""
    doc: dict[str, Any] = {**body, "version": version, **binding(target, args.ttl), "id": uuid.uuid4().hex[:12]}
    if args.check_s is not None:
        doc["check_s"] = args.check_s
    if args.force:
        doc["force"] = True
    return sign(doc, key) if key is not None else doc


def wait_answers(conn: Connection, prefix: str, ids: dict[str, str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Answers on config/result correlated by id: {agent: d}."""
    answers: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(answers) < len(ids) and (msg := conn.get(deadline - time.monotonic())) is not None:
        topic, payload, _ = msg
        try:
            d = codec.decode(payload)["d"]
        except (CodecError, KeyError) as exc:
            print(f"warning: skipping {topic}: not an edge-agent message ({exc})", file=sys.stderr)
            continue
        agent = ids.get(str(d.get("id"))) if isinstance(d, dict) else None
        if agent is not None and topic == f"{prefix}/{agent}/config/result":
            answers[agent] = d
    return answers


def rollout(
    conn: Connection,
    s: ClientSettings,
    agents: dict[str, AgentInfo],
    targets: list[str],
    body: dict[str, Any],
    version: int,
    args: argparse.Namespace,
    key: Any,
) -> dict[str, dict[str, Any]]:
    """Write desired configs wave by wave; stop when failures exceed the threshold."""
    results: dict[str, dict[str, Any]] = {}
    failures = 0
    for start in range(0, len(targets), args.wave):
        wave = targets[start : start + args.wave]
        if failures > args.max_failures:
            results.update(
                {a: {"status": "not_pushed", "reason": f"rollout stopped after {failures} failure(s)"} for a in wave}
            )
            continue
        ids = {}
        for a in wave:
            doc = make_doc(body, version, f"agent:{a}", args, key)
            conn.publish(f"{s.prefix}/{a}/config/desired", msgpack.packb(doc), retain=True)
            if agents[a].online:
                ids[doc["id"]] = a
            else:
                results[a] = {
                    "status": "pending",
                    "reason": "offline: applies the retained desired config on reconnect",
                }
        got = wait_answers(conn, s.prefix, ids, args.timeout)
        for a in ids.values():
            results[a] = got.get(
                a, {"status": "no_answer", "reason": f"online but no answer within {args.timeout:g} s"}
            )
            failures += results[a]["status"] in FAILED
    return results


def group_docs(
    conn: Connection,
    s: ClientSettings,
    groups: list[str],
    body: dict[str, Any],
    version: int,
    args: argparse.Namespace,
    key: Any,
) -> None:
    """After a successful rollout: the group's retained desired config, for members that join later."""
    for g in groups:
        conn.publish(
            f"{s.prefix}/group/{g}/config/desired",
            msgpack.packb(make_doc(body, version, f"group:{g}", args, key)),
            retain=True,
        )


def describe(agent: str, d: dict[str, Any]) -> str:
    """One line (plus error lines) per agent, by name."""
    st = d.get("status", "?")
    if st == "accepted":
        counts = ", ".join(f"{len(v)} {k}" for k, v in d.get("instances", {}).items() if v and k != "unchanged")
        return f"{agent:20} accepted         version {d.get('version')} ({counts or 'no change'})"
    if st == "already_applied":
        return f"{agent:20} already applied  version {d.get('version')}"
    if st == "rejected":
        return f"{agent:20} rejected\n" + "\n".join(f"{'':22}{e}" for e in d.get("errors", []))
    return f"{agent:20} {st.replace('_', ' '):16} {d.get('reason', '')}"


def cmd_push_config(args: argparse.Namespace) -> int:
    try:
        s = resolve(args)
        body = body_from_args(args)
        key_path = args.sign or s.sign_key
        key = load_private_key(str(key_path)) if key_path else None
        agents = collect(s)
        targets, unknown = select(agents, args.agent or [], args.group or [])
        version = args.config_version if args.config_version is not None else fleet_version(agents)
        results: dict[str, dict[str, Any]] = {
            u: {"status": "unknown_id", "reason": "no agent with this id ever connected to this broker"}
            for u in unknown
        }
        if not targets and not unknown:
            raise SystemExit("push-config: no agent matched (see `edge-agent fleet`)")
        with Connection(s, [f"{s.prefix}/{a}/config/result" for a in targets], name="edge-push") as conn:
            results.update(rollout(conn, s, agents, targets, body, version, args, key))
            if args.group and not any(r["status"] in FAILED for r in results.values()):
                group_docs(conn, s, args.group, body, version, args, key)
    except ClientError as exc:
        raise SystemExit(f"push-config: {exc}") from exc
    return report(results, version, args.json)


def report(results: dict[str, dict[str, Any]], version: int, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"version": version, "results": codec.to_jsonable(results)}, indent=1))
    else:
        print(f"version {version} to {len(results)} agent(s):")
        for a in sorted(results):
            print(describe(a, results[a]))
    statuses = [r["status"] for r in results.values()]
    if any(st in ("rejected", "rolled_back", "unknown_id", "not_pushed") for st in statuses):
        return 1
    return 2 if "no_answer" in statuses else 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from edge_agent.agent.remote.signing import key_id

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
        f"private key: {out} (keep it with ops)\npublic key:  {out}.pub (key id {key_id(raw)})\n"
        f"agents trust it with (the key itself, or the path to {out}.pub):\n[remote]\nrequire_signature = true\n"
        f'trusted_keys = ["{pub}"]'
    )
    return 0
