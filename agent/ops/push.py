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
from edge_agent.agent.config.layers import layer_hash
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import build
from edge_agent.agent.errors import CodecError, ConfigError
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.connection import ClientError, ClientSettings, Connection, resolve
from edge_agent.agent.ops.inventory import DesiredDoc, Fleet, desired_topic, fleet_version, read_fleet, select
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


def retained_copy(doc: dict[str, Any], key: Any) -> dict[str, Any]:
    """The document as it is retained on a desired topic: the same content, version, target and
    nonce (an agent that applied it from config/set ignores it), without expiry (a retained desired
    state must not strand an agent that was away longer), signed again."""
    copy = {k: v for k, v in doc.items() if k not in ("expires", "kid", "sig")}
    return sign(copy, key) if key is not None else copy


def whole_sets(
    fleet: Fleet, keys: list[str], body: dict[str, Any]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """Per target (``agent:ID`` or ``group:NAME``) the whole pushed set the push leads to: a patch
    is laid over the target's retained desired document here, so that what is retained is always
    a state, never a step. Targets whose patch does not fit get their errors instead."""
    sets: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, list[str]] = {}
    for k in keys:
        if "config" in body:
            sets[k] = list(body["config"]["instances"])
            continue
        base_doc = fleet.desired_for(k[6:]) if k.startswith("agent:") else group_base(fleet, k[6:])
        base = base_doc.instances if base_doc is not None else []
        if base is None:
            errors[k] = [
                f"{base_doc.key if base_doc else k}: the retained desired document is a patch (an older "
                "push-config): push the whole set once, then patch"
            ]
            continue
        out = {str(t.get("name")): t for t in base}
        missing = [n for n in body["patch"]["remove"] if n not in out]
        if missing:
            errors[k] = [
                f"--remove {n}: not in the desired set of {k} ({', '.join(sorted(out)) or 'empty'})" for n in missing
            ]
            continue
        for n in body["patch"]["remove"]:
            del out[n]
        out.update({str(t["name"]): t for t in body["patch"]["set"]})
        sets[k] = list(out.values())
    return sets, errors


def group_base(fleet: Fleet, group: str) -> DesiredDoc | None:
    """What a patch to a group builds on: the group's document, else the set its members all
    follow (a group first pushed to by --agent); None when they differ (the patch alone)."""
    if f"group:{group}" in fleet.docs:
        return fleet.docs[f"group:{group}"]
    docs = [fleet.desired_for(a) for a in fleet.members(group)]
    hashes = {d.hash if d else None for d in docs}
    if len(hashes) == 1 and docs and docs[0] is not None:
        return docs[0]
    if len(hashes) > 1:
        print(
            f"warning: group {group} has no document and its members' sets differ: it gets the patch alone",
            file=sys.stderr,
        )
    return None


def version_conflicts(fleet: Fleet, sets: dict[str, list[dict[str, Any]]], version: int) -> list[str]:
    """A version names one content: targets whose retained document has this version with other content."""
    out = []
    for k, instances in sets.items():
        old = fleet.docs.get(k)
        if old is not None and old.version == version and old.hash != layer_hash(instances):
            out.append(f"{k}: version {version} is retained with other content (push a new version)")
    return out


class Answers:
    """config/result answers correlated by id, and the latest config/state of each target."""

    def __init__(self, conn: Connection, prefix: str) -> None:
        self.conn = conn
        self.prefix = prefix
        self.states: dict[str, dict[str, Any]] = {}

    def wait(self, ids: dict[str, str], timeout_s: float) -> dict[str, dict[str, Any]]:
        """Answers for ``ids`` (document id -> agent): {agent: d}."""
        answers: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(answers) < len(ids) and (msg := self.conn.get(deadline - time.monotonic())) is not None:
            got = self._take(msg[0], msg[1])
            if got is not None:
                agent = ids.get(str(got.get("id")))
                if agent is not None and msg[0] == f"{self.prefix}/{agent}/config/result":
                    answers[agent] = got
        return answers

    def confirmed(self, agent: str, version: int, pushed: str, timeout_s: float) -> str:
        """ "" when the agent's retained config/state runs ``version`` with the pushed set; else why not."""
        deadline = time.monotonic() + timeout_s
        while not self._runs(agent, version, pushed) and (msg := self.conn.get(deadline - time.monotonic())):
            self._take(msg[0], msg[1])
        if self._runs(agent, version, pushed):
            return ""
        st = self.states.get(agent, {})
        last = st.get("last_result", {})
        return (
            f"the answer says so, but its config/state says version {st.get('version', '?')}"
            f" (pushed_hash {st.get('pushed_hash', '?')}, last result {last.get('status', '?')})"
        )

    def _runs(self, agent: str, version: int, pushed: str) -> bool:
        st = self.states.get(agent, {})
        return st.get("version") == version and st.get("pushed_hash", pushed) == pushed

    def _take(self, topic: str, payload: bytes) -> dict[str, Any] | None:
        try:
            d = codec.decode(payload)["d"]
        except (CodecError, KeyError) as exc:
            print(f"warning: skipping {topic}: not an edge-agent message ({exc})", file=sys.stderr)
            return None
        if not isinstance(d, dict):
            return None
        if topic.endswith("/config/state"):
            self.states[topic[len(self.prefix) + 1 :].split("/")[0]] = d
            return None
        return d


RATE_LIMITED = "too many pushes"


def rollout(
    conn: Connection,
    s: ClientSettings,
    fleet: Fleet,
    targets: list[str],
    sets: dict[str, list[dict[str, Any]]],
    version: int,
    args: argparse.Namespace,
    key: Any,
) -> dict[str, dict[str, Any]]:
    """Wave by wave: online agents get the document on config/set and it is retained on their
    desired topic only once they accepted it and their config/state confirms it (a rejected
    document never becomes the desired state); offline agents get it retained at once (pending).
    The rollout stops when failures exceed the threshold."""
    results: dict[str, dict[str, Any]] = {}
    failures = 0
    answers = Answers(conn, s.prefix)
    for start in range(0, len(targets), args.wave):
        wave = targets[start : start + args.wave]
        if failures > args.max_failures:
            results.update(
                {a: {"status": "not_pushed", "reason": f"rollout stopped after {failures} failure(s)"} for a in wave}
            )
            continue
        docs = {a: make_doc(_body(sets[f"agent:{a}"]), version, f"agent:{a}", args, key) for a in wave}
        online = [a for a in wave if fleet.agents[a].online]
        for a in wave:
            if a not in online:
                conn.publish(
                    desired_topic(s.prefix, f"agent:{a}"), msgpack.packb(retained_copy(docs[a], key)), retain=True
                )
                results[a] = {
                    "status": "pending",
                    "reason": "offline: applies the retained desired config on reconnect",
                }
        got = _ask(conn, s, answers, {a: docs[a] for a in online}, args.timeout)
        for a in online:
            res = got.get(
                a, {"status": "no_answer", "reason": f"online but no answer within {args.timeout:g} s; not retained"}
            )
            if res["status"] in ("accepted", "already_applied"):
                why = answers.confirmed(a, version, layer_hash(sets[f"agent:{a}"]), min(args.timeout, 5.0))
                if why:
                    res = {**res, "disagrees": why}
                else:
                    conn.publish(
                        desired_topic(s.prefix, f"agent:{a}"), msgpack.packb(retained_copy(docs[a], key)), retain=True
                    )
            results[a] = res
            failures += res["status"] in FAILED or "disagrees" in res
    return results


def _ask(
    conn: Connection, s: ClientSettings, answers: Answers, docs: dict[str, dict[str, Any]], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Send one-shot pushes and wait for their answers; those refused by the agent's rate limit
    ([remote] min_interval_s) are sent once more a second later."""
    for a, doc in docs.items():
        conn.publish(f"{s.prefix}/{a}/config/set", msgpack.packb(doc))
    got = answers.wait({d["id"]: a for a, d in docs.items()}, timeout_s)
    again = {a: d for a, d in docs.items() if any(RATE_LIMITED in str(e) for e in got.get(a, {}).get("errors", []))}
    if again:
        time.sleep(1.1)
        for a, doc in again.items():
            conn.publish(f"{s.prefix}/{a}/config/set", msgpack.packb(doc))
        got.update(answers.wait({d["id"]: a for a, d in again.items()}, timeout_s))
    return got


def _body(instances: list[dict[str, Any]]) -> dict[str, Any]:
    return {"config": {"instances": instances}}


def group_docs(
    conn: Connection,
    s: ClientSettings,
    sets: dict[str, list[dict[str, Any]]],
    version: int,
    args: argparse.Namespace,
    key: Any,
) -> None:
    """After a successful rollout: the groups' retained desired configs, for members that join later."""
    for k, instances in sets.items():
        if k.startswith("group:"):
            doc = make_doc(_body(instances), version, k, args, key)
            conn.publish(desired_topic(s.prefix, k), msgpack.packb(retained_copy(doc, key)), retain=True)


def describe(agent: str, d: dict[str, Any]) -> str:
    """One line (plus error lines) per agent, by name; a result its config/state contradicts is flagged."""
    line = _describe(agent, d)
    if "disagrees" in d:
        line += f"\n{'':22}NOT CONFIRMED: {d['disagrees']}; not retained"
    return line


def _describe(agent: str, d: dict[str, Any]) -> str:
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
        fleet = read_fleet(s)
        agents = fleet.agents
        unknown_groups = [g for g in args.group or [] if not fleet.members(g)]
        if unknown_groups:
            known = sorted({g for a in agents.values() for g in a.groups})
            raise SystemExit(
                f"push-config: no agent reports group {', '.join(unknown_groups)} "
                f"(known groups: {', '.join(known) or 'none'}); nothing pushed"
            )
        targets, unknown = select(agents, args.agent or [], args.group or [])
        version = args.config_version if args.config_version is not None else fleet_version(agents, fleet.docs)
        results: dict[str, dict[str, Any]] = {
            u: {"status": "unknown_id", "reason": "no agent with this id ever connected to this broker"}
            for u in unknown
        }
        if not targets and not unknown:
            raise SystemExit("push-config: no agent matched (see `edge-agent fleet`)")
        groups = [*(args.group or []), *covered_groups(fleet, targets, args.group or [])]
        sets, errors = whole_sets(fleet, [*(f"agent:{a}" for a in targets), *(f"group:{g}" for g in groups)], body)
        conflicts = version_conflicts(fleet, sets, version)
        if conflicts:
            raise SystemExit("push-config: nothing pushed\n" + "\n".join(conflicts))
        for k, why in errors.items():
            if k.startswith("agent:"):
                results[k[6:]] = {"status": "rejected", "errors": why, "reason": "refused here, nothing published"}
        targets = [a for a in targets if f"agent:{a}" in sets]
        topics = [f"{s.prefix}/{a}/config/{t}" for a in targets for t in ("result", "state")]
        if len(targets) > 20:  # one subscription per topic is slow for a big fleet
            topics = [f"{s.prefix}/+/config/result", f"{s.prefix}/+/config/state"]
        with Connection(s, topics, name="edge-push") as conn:
            results.update(rollout(conn, s, fleet, targets, sets, version, args, key))
            ok = not any(r["status"] in FAILED or "disagrees" in r for r in results.values())
            if groups and ok:
                group_docs(conn, s, {k: v for k, v in sets.items() if k.startswith("group:")}, version, args, key)
    except ClientError as exc:
        raise SystemExit(f"push-config: {exc}") from exc
    return report(results, version, args.json)


def covered_groups(fleet: Fleet, targets: list[str], named: list[str]) -> list[str]:
    """Groups with a retained document whose every member this push reaches: their document moves
    with them, so an agent that joins the group later gets what its members run."""
    chosen = set(targets)
    return sorted(
        k[6:]
        for k in fleet.docs
        if k.startswith("group:")
        and k[6:] not in named
        and fleet.members(k[6:])
        and set(fleet.members(k[6:])) <= chosen
    )


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
    if any("disagrees" in r for r in results.values()):
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
