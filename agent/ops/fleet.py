"""``edge-agent fleet``, ``edge-agent cmd AGENT NAME [INSTANCE]`` and ``edge-agent get-config AGENT``."""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
import time
import uuid
from typing import Any

import msgpack
from edge_agent.agent.errors import CodecError
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.connection import ClientError, ClientSettings, Connection, resolve
from edge_agent.agent.ops.inventory import collect, desired_topic, read_fleet, table


def cmd_fleet(args: argparse.Namespace) -> int:
    """Print the inventory: id, online, versions, drift, instances ok/faulted, last seen; or resign."""
    if args.action == "resign":
        return cmd_resign(args)
    try:
        fleet = read_fleet(resolve(args), max_s=args.wait)
    except ClientError as exc:
        raise SystemExit(f"fleet: {exc}") from exc
    agents = fleet.agents
    for key in sorted(k for k in fleet.docs if k.startswith("group:") and not fleet.members(k[6:])):
        print(f"warning: {key}: a retained desired document, but no agent reports this group", file=sys.stderr)
    if args.json:
        print(json.dumps([a.as_json() for a in sorted(agents.values(), key=lambda a: a.id)], indent=1))
    elif not agents:
        print("no agent has ever connected under this prefix", file=sys.stderr)
    else:
        print(table(agents))
    return 0


def cmd_resign(args: argparse.Namespace) -> int:
    """Sign every retained desired document (agents' and groups') again with the current key, and
    without expiry: the content, version, target and nonce stay, so agents that run it ignore it and
    agents that still need it (offline, re-imaged, joining a group) accept it after a key rotation."""
    from edge_agent.agent.ops.push import retained_copy
    from edge_agent.agent.remote.signing import key_id, load_private_key

    try:
        s = resolve(args)
        key_path = args.sign or s.sign_key
        if not key_path:
            raise SystemExit("fleet resign: no key: --sign KEY or sign_key in the CLI config")
        key = load_private_key(str(key_path))
        fleet = read_fleet(s, max_s=args.wait)
        with Connection(s, [], name="edge-resign") as conn:
            for doc in fleet.docs.values():
                conn.publish(desired_topic(s.prefix, doc.key), msgpack.packb(retained_copy(doc.doc, key)), retain=True)
    except ClientError as exc:
        raise SystemExit(f"fleet resign: {exc}") from exc
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = key_id(raw)
    print(f"re-signed {len(fleet.docs)} retained desired document(s) with key {kid}")
    untrusting = sorted(a.id for a in fleet.agents.values() if a.trusted_keys is not None and kid not in a.trusted_keys)
    if untrusting:
        print(
            f"warning: {len(untrusting)} agent(s) do not trust {kid} yet: {', '.join(untrusting[:20])}", file=sys.stderr
        )
        return 1
    return 0


def request(s: ClientSettings, agent: str, name: str, req: dict[str, Any], timeout_s: float) -> dict[str, Any] | None:
    """Send one command and wait for its answer (None: no answer in time)."""
    topic = f"{s.prefix}/{agent}/cmd/{name}"
    ident = uuid.uuid4().hex[:12]
    with Connection(s, [topic + "/result", f"{s.prefix}/{agent}/status"], name="edge-cmd") as conn:
        reachable(conn, s.prefix, agent)
        conn.publish(topic, msgpack.packb({**req, "id": ident}))
        deadline = time.monotonic() + timeout_s
        while (msg := conn.get(deadline - time.monotonic())) is not None:
            try:
                d = codec.decode(msg[1])["d"]
            except (CodecError, KeyError) as exc:
                print(f"warning: skipping {msg[0]}: not an edge-agent message ({exc})", file=sys.stderr)
                continue
            if isinstance(d, dict) and d.get("id") == ident:
                return d
    return None


RETAINED_WAIT_S = 0.5  # the broker sends a retained status right after the subscription's ack


def reachable(conn: Connection, prefix: str, agent: str) -> None:
    """ClientError at once for an agent that never connected or is offline (from its retained
    status), instead of waiting out the whole timeout."""
    deadline = time.monotonic() + RETAINED_WAIT_S
    while (msg := conn.get(deadline - time.monotonic())) is not None:
        if msg[0] != f"{prefix}/{agent}/status":
            continue
        try:
            env = codec.decode(msg[1])
            d = env["d"]
        except (CodecError, KeyError):
            return  # not ours to judge: let the command try
        if isinstance(d, dict) and d.get("state") == "offline":
            ago = f"{time.time() - int(env.get('ts', 0)) / 1000:.0f} s ago" if env.get("ts") else "at an unknown time"
            raise ClientError(f"agent {agent!r} is offline ({d.get('reason', '?')}, {ago}); nothing sent")
        return
    raise ClientError(
        f"unknown agent {agent!r}: none with this id ever connected to this broker (see edge-agent fleet)"
    )


def _online(s: ClientSettings, agent: str) -> str:
    """Why an agent may not answer: offline or unknown (from the inventory)."""
    agents = collect(s, max_s=2.0)
    if agent not in agents:
        return (
            f"unknown agent {agent!r}: none with this id ever connected (known: {', '.join(sorted(agents)) or 'none'})"
        )
    return (
        f"agent {agent!r} is offline" if not agents[agent].online else f"agent {agent!r} is online but did not answer"
    )


def who() -> str:
    """The default ``by`` of a change command: user@host."""
    return f"{getpass.getuser()}@{socket.gethostname().split('.')[0]}"


def signed_request(req: dict[str, Any], name: str, agent: str, by: str, key: Any, ttl_s: float) -> dict[str, Any]:
    """A change command with who asked; signed and bound (like a push) when a key is given."""
    from edge_agent.agent.ops.push import binding
    from edge_agent.agent.remote.authority import command_class
    from edge_agent.agent.remote.signing import sign

    if command_class(name, req.get("args", {})) == "read":
        return req
    req = {**req, "by": by}
    return sign({**req, "cmd": name, **binding(f"agent:{agent}", ttl_s)}, key) if key is not None else req


def cmd_cmd(args: argparse.Namespace) -> int:
    """Run ping, status, reload, config, restart INSTANCE (or a plugin command) and print the answer."""
    from edge_agent.agent.ops.answers import parse_args, summary
    from edge_agent.agent.remote.signing import load_private_key

    try:
        parsed = parse_args(args.arg or [])
    except ValueError as exc:
        raise SystemExit(f"cmd: {exc}") from exc
    try:
        s = resolve(args)
        req: dict[str, Any] = {"args": parsed}
        if args.instance:
            req["instance"] = args.instance
        key_path = args.sign or s.sign_key
        key = load_private_key(str(key_path)) if key_path else None
        req = signed_request(req, args.name, args.agent_id, args.by or who(), key, args.ttl)
        d = request(s, args.agent_id, args.name, req, args.timeout)
        if d is None:
            raise SystemExit(f"cmd: no answer within {args.timeout:g} s: {_online(s, args.agent_id)}")
    except ClientError as exc:
        raise SystemExit(f"cmd: {exc}") from exc
    if d.get("ok") and args.save:
        for line in save_fields(d.get("result"), args.save):
            print(line, file=sys.stderr)
    if args.json:
        print(json.dumps(codec.to_jsonable(d), indent=1))
    else:
        print(summary(args.agent_id, args.name, d), file=sys.stdout if d.get("ok") else sys.stderr)
    return 0 if d.get("ok") else 1


def save_fields(result: Any, specs: list[str]) -> list[str]:
    """Write byte fields of a command's answer to files (``png=pump1.png``); one line per file."""
    from pathlib import Path

    out = []
    for spec in specs:
        key, sep, path = spec.partition("=")
        data = result.get(key) if isinstance(result, dict) else None
        if not sep or not path:
            raise SystemExit(f"cmd: --save {spec!r}: expected KEY=FILE")
        if not isinstance(data, bytes | bytearray):
            raise SystemExit(f"cmd: --save {key}: the answer has no bytes field {key!r}")
        Path(path).write_bytes(bytes(data))
        out.append(f"cmd: {key}: {len(data)} bytes -> {path}")
    return out


def cmd_get_config(args: argparse.Namespace) -> int:
    """Print an agent's effective config (the file with the pushed layer on top) as TOML."""
    try:
        s = resolve(args)
        d = request(s, args.agent_id, "config", {}, args.timeout)
        if d is None:
            raise SystemExit(f"get-config: no answer within {args.timeout:g} s: {_online(s, args.agent_id)}")
    except ClientError as exc:
        raise SystemExit(f"get-config: {exc}") from exc
    if not d.get("ok"):
        raise SystemExit(f"get-config: {d.get('error')}")
    cfg = codec.to_jsonable(d["result"])
    if args.json:
        print(json.dumps(cfg, indent=1))
        return 0
    status = request(s, args.agent_id, "status", {}, args.timeout) or {}
    instances = (status.get("result") or {}).get("instances", {}) if status.get("ok") else {}
    owners = {name: str(st.get("managed_by", "")) for name, st in instances.items() if isinstance(st, dict)}
    ihash = ((status.get("result") or {}).get("config") or {}).get("instances_hash", "?") if status.get("ok") else "?"
    print(
        f"# effective config of {args.agent_id}: the local file with the pushed layer "
        f"(version {cfg.get('version')}, instances_hash {ihash})"
    )
    print(to_toml(cfg, owners), end="")
    return 0


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def to_toml(cfg: dict[str, Any], owners: dict[str, str] | None = None) -> str:
    """A small TOML writer for config tables: scalars, [sections], [[instances]] (nested maps inline)."""
    out = [f"{_key(k)} = {_value(v)}" for k, v in cfg.items() if not isinstance(v, dict) and k != "instances"]
    for k, v in cfg.items():
        if isinstance(v, dict):
            out += ["", f"[{_key(k)}]", *(f"{_key(a)} = {_value(b)}" for a, b in v.items())]
    for inst in cfg.get("instances", []):  # a comment per instance: where it comes from (file or push)
        owner = (owners or {}).get(str(inst.get("name")))
        out += ["", *([f"# managed by: {owner}"] if owner else []), "[[instances]]"]
        out += [f"{_key(a)} = {_value(b)}" for a, b in inst.items()]
    return "\n".join(out).lstrip("\n") + "\n"
