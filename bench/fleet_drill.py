"""The fleet drill of issue 25 at scale: N real agents (asyncio Runtimes in this one process) on one
mosquitto with the shipped password + ACL files, every document signed.

Scenario: all agents up (20 % in group line2); 10 % of the fleet stopped; a full push to all in
waves; a --patch to group line2; the stopped agents back; a key rotation (agents trust old and
new, sign_key switched, `fleet resign`); one line2 member re-imaged (empty state dir, trusts only
the new key). Prints JSON: time to converge after each step, broker messages and bytes per agent
on the config and status topics, the `fleet` inventory time and the drift count at the end (must
be 0). The commands are the real CLI (push-config, fleet, fleet resign), run in this process.

Run by hand: .venv/bin/python bench/fleet_drill.py [--agents 500] [--wave 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from edge_agent.agent.config.registry import load_registry  # noqa: E402
from edge_agent.agent.config.schema import build  # noqa: E402
from edge_agent.agent.devtools.local_broker import free_port, wait_port  # noqa: E402
from edge_agent.agent.runtime import runtime as runtime_module  # noqa: E402
from edge_agent.agent.runtime.bootstrap import build_runtime  # noqa: E402
from edge_agent.agent.runtime.runtime import Runtime  # noqa: E402


def _no_hard_exit(code: int) -> None:
    """One agent's stop backstop must not end the whole in-process fleet: say so instead."""
    import traceback

    print(f"an agent asked for a hard exit ({code}):", file=sys.stderr)
    traceback.print_stack(file=sys.stderr)


runtime_module.hard_exit = _no_hard_exit

PUSHED = {"name": "pushed", "plugin": "values", "interval_s": 60.0, "driver": {"type": "sim", "profile": "square"}}
EXTRA = {"name": "extra", "plugin": "values", "interval_s": 60.0, "driver": {"type": "sim"}}
COUNTED = ("config/set", "config/desired", "config/result", "config/state", "status")


def aid(i: int) -> str:
    return f"a{i:03d}"


class Broker:
    """mosquitto with deploy/mosquitto/{mosquitto.conf,acl}; one user per agent plus ops."""

    def __init__(self, tmp: Path, users: list[str]) -> None:
        self.port = free_port()
        d = tmp / "broker"
        d.mkdir()
        passwd = d / "passwd"
        passwd.write_text("".join(f"{u}:{u}-pw\n" for u in users))
        passwd.chmod(0o600)
        subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)  # hash them all at once
        for u in users:
            (tmp / f"{u}.pass").write_text(f"{u}-pw\n")
        shutil.copy(ROOT / "deploy" / "mosquitto" / "acl", d / "acl")
        conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        conf = conf.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("/etc/mosquitto/edge-agent.passwd", str(passwd))
        conf = conf.replace("/etc/mosquitto/edge-agent.acl", str(d / "acl")).replace("persistence true", "")
        conf += "max_queued_messages 10000\n" + ("user root\n" if os.geteuid() == 0 else "")
        (d / "mosquitto.conf").write_text(conf)
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(d / "mosquitto.conf")], stderr=subprocess.DEVNULL)
        assert wait_port(self.port), "mosquitto did not start"
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Counter:
    """Logged in as ops: counts messages and bytes per kind on the config and status topics."""

    def __init__(self, port: int, tmp: Path) -> None:
        self.lock = threading.Lock()
        self.msgs: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.c.username_pw_set("ops", "ops-pw")
        self.c.on_connect = lambda c, u, f, rc, p=None: c.subscribe([("edge/#", 1)])
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        time.sleep(0.5)

    def _on(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        if m.retain:
            return  # a retained copy sent at subscription, not traffic
        kind = next((k for k in COUNTED if m.topic.endswith(k)), None)
        if kind:
            with self.lock:
                self.msgs[kind] = self.msgs.get(kind, 0) + 1
                self.bytes[kind] = self.bytes.get(kind, 0) + len(m.payload) + len(m.topic)

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        with self.lock:
            out = (dict(self.msgs), dict(self.bytes))
            self.msgs.clear()
            self.bytes.clear()
        return out

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Agents:
    """Real Runtimes, each a task of this loop, each logged in as itself."""

    def __init__(self, n: int, tmp: Path, url: str, trusted: list[str]) -> None:
        self.reg = load_registry()
        self.n, self.tmp, self.url = n, tmp, url
        self.configs = [self.config(i, trusted) for i in range(n)]
        self.runtimes: dict[int, Runtime] = {}
        self.tasks: dict[int, asyncio.Task[int]] = {}

    def config(self, i: int, trusted: list[str]) -> Any:
        raw = {
            "agent": {
                "id": aid(i),
                "state_dir": str(self.tmp / aid(i)),
                "io_threads": 1,
                "stop_timeout_s": 120,
                "groups": ["line2"] if i % 5 == 4 else [],  # 20 %: half of them among the offline
            },
            "mqtt": {
                "url": self.url,
                "username": aid(i),
                "password_file": str(self.tmp / f"{aid(i)}.pass"),
                "reconnect_min_s": 0.5,
                "reconnect_max_s": 2.0,
            },
            "spool": {"enabled": False},
            "remote": {"min_interval_s": 0, "verify_timeout_s": 5, "require_signature": True, "trusted_keys": trusted},
            "instances": [{"name": "base", "plugin": "values", "interval_s": 60.0, "driver": {"type": "sim"}}],
        }
        return build(raw, self.reg, source=aid(i))

    def start(self, i: int) -> None:
        rt = build_runtime(self.configs[i], self.reg)
        self.runtimes[i] = rt
        self.tasks[i] = asyncio.get_running_loop().create_task(rt.run(), name=f"agent-{i}")

    async def stop(self, i: int) -> None:
        self.runtimes[i].stop()
        await self.tasks[i]
        self.runtimes[i].finish()
        del self.runtimes[i], self.tasks[i]

    async def stop_all(self) -> None:
        for rt in self.runtimes.values():
            rt.stop()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        for rt in self.runtimes.values():
            rt.finish()


def cli(*argv: str) -> tuple[int, str]:
    """An edge-agent command as its own process, as on the ops workstation: (exit code, stdout)."""
    r = subprocess.run([sys.executable, "-m", "edge_agent.agent", *argv], capture_output=True, text=True, cwd=ROOT)
    if r.returncode and r.stderr:
        print(r.stderr[-500:], file=sys.stderr)
    return r.returncode, r.stdout


async def push(doc: Path, target: list[str], wave: int, key: Path, ops: list[str]) -> tuple[int, dict[str, Any], float]:
    """`edge-agent push-config DOC TARGET... --json`, signed, in waves: (exit code, results, seconds)."""
    t0 = time.monotonic()
    argv = ["push-config", str(doc), *target, "--wave", str(wave), "--json", "--sign", str(key), "--timeout", "60"]
    code, out = await asyncio.to_thread(cli, *argv, *ops)
    return code, (json.loads(out)["results"] if out else {}), round(time.monotonic() - t0, 1)


def drift(ops: list[str]) -> tuple[int, int, float, dict[str, str]]:
    """`edge-agent fleet --json`: (agents, drifting, seconds the command took, a few reasons)."""
    t0 = time.monotonic()
    code, out = cli("fleet", "--json", "--wait", "30", *ops)
    took = time.monotonic() - t0
    inv = json.loads(out) if code == 0 and out.strip() else []
    why = {a["id"]: a["why"] for a in inv if a["drift"] or not a["online"]}
    return len(inv), len(why), took, dict(list(why.items())[:5])


async def converge(ops: list[str], n: int, timeout_s: float = 300) -> tuple[float, int, dict[str, str]]:
    """Seconds until every agent is online and none drifts (or the timeout): (s, drifting, reasons)."""
    t0 = time.monotonic()
    while True:
        agents, drifting, _, why = await asyncio.to_thread(drift, ops)
        if (agents == n and not drifting) or time.monotonic() - t0 > timeout_s:
            return round(time.monotonic() - t0, 1), drifting, why
        await asyncio.sleep(1.0)


async def run(n: int, wave: int, tmp: Path) -> dict[str, Any]:
    users = ["ops", *(aid(i) for i in range(n))]
    broker = Broker(tmp, users)
    for name in ("old", "new"):
        cli("keygen", str(tmp / f"{name}.key"))
    trusted = [str(tmp / "old.key.pub"), str(tmp / "new.key.pub")]
    agents = Agents(n, tmp, broker.url, trusted)
    counter = Counter(broker.port, tmp)
    ops = ["--url", broker.url, "--username", "ops", "--password-file", str(tmp / "ops.pass")]
    report: dict[str, Any] = {"agents": n, "wave": wave, "steps": {}}

    def step(name: str, **figures: Any) -> None:
        msgs, nbytes = counter.take()
        per = max(1, n)
        report["steps"][name] = {
            **figures,
            "load_1min": round(os.getloadavg()[0], 1),
            "messages_per_agent": round(sum(msgs.values()) / per, 2),
            "bytes_per_agent": round(sum(nbytes.values()) / per),
            "by_kind": msgs,
        }
        print(name, json.dumps(report["steps"][name]), file=sys.stderr, flush=True)

    try:
        t0 = time.monotonic()
        for i in range(n):
            agents.start(i)
            if i % 50 == 49:
                await asyncio.sleep(0.5)  # a plant powering up is not one instant either
        s, left, why = await converge(ops, n)
        step("start", converge_s=round(time.monotonic() - t0, 1), drifting=left)
        away = [i for i in range(n) if i % 10 == 9]  # 10 %, one in ten
        for i in away:
            await agents.stop(i)
        (tmp / "full.json").write_text(json.dumps({"instances": [PUSHED]}))
        code, res, push_s = await push(tmp / "full.json", ["--agent", "a*"], wave, tmp / "old.key", ops)
        step("full push, 10 % offline", push_s=push_s, exit=code, statuses=_count(res))
        (tmp / "extra.json").write_text(json.dumps({"instances": [EXTRA]}))
        code, res, push_s = await push(tmp / "extra.json", ["--group", "line2", "--patch"], wave, tmp / "old.key", ops)
        step("group patch", push_s=push_s, exit=code, statuses=_count(res))
        t0 = time.monotonic()
        for i in away:
            agents.start(i)
        s, left, why = await converge(ops, n)
        step("offline agents back", converge_s=s, drifting=left, why=why)
        t0 = time.monotonic()
        code, out = await asyncio.to_thread(
            cli, "fleet", "resign", "--sign", str(tmp / "new.key"), "--wait", "20", *ops
        )
        step("fleet resign (new key)", resign_s=round(time.monotonic() - t0, 1), exit=code, said=out.strip())
        reimaged = 4  # a line2 member: its own document and its group's
        await agents.stop(reimaged)
        shutil.rmtree(tmp / aid(reimaged))
        agents.configs[reimaged] = agents.config(reimaged, [str(tmp / "new.key.pub")])
        t0 = time.monotonic()
        agents.start(reimaged)
        s, left, why = await converge(ops, n)
        step("re-imaged agent (new key only)", converge_s=s, drifting=left, why=why)
        total, drifting, took, why = await asyncio.to_thread(drift, ops)
        report["end"] = {"agents_listed": total, "drifting": drifting, "why": why, "fleet_inventory_s": round(took, 2)}
    finally:
        await agents.stop_all()
        counter.close()
        broker.close()
    return report


def _count(results: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results.values():
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, default=500)
    p.add_argument("--wave", type=int, default=50)
    a = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="edge-drill-") as tmp:
        report = asyncio.run(run(a.agents, a.wave, Path(tmp)))
    report["load_average"] = os.getloadavg()
    report["threads_at_end"] = threading.active_count()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
