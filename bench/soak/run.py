"""One soak from start to result: broker behind an outage relay, the plant simulator, the agent
under a fake wall clock, the scenario's actions on time, and a look at everything every second."""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
import time
import tomllib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.drivers.simulation.plantsim import send

from bench.common import toml_dumps
from bench.plant.agent_process import installed_env
from bench.plant.config_copy import Plant, prepare
from bench.plant.report import git_commit, loadavg
from bench.plant.subscriber import subscribe
from bench.soak.agent import Agent, MemLook, Tick
from bench.soak.faketime import FakeClock
from bench.soak.observer import Messages, drain
from bench.soak.proxy import OutageProxy
from bench.soak.scenario import Action, scaled, with_tc_faults


@dataclass
class Soak:
    """Everything a soak left: the time line of what was done, the looks at the agent, the messages."""

    t0: float = 0.0
    seconds: float = 0.0
    warmup_s: float = 0.0
    commit: str = ""
    broker: str = ""
    done: list[tuple[float, Action, str]] = field(default_factory=list)  # when, what, "do"/"undo"
    outages: list[tuple[float, float]] = field(default_factory=list)  # the relay down -> up again
    down_since: float = 0.0
    pings: list[tuple[float, int]] = field(default_factory=list)  # armed at an outage: (since, step number)
    offsets: list[tuple[float, float]] = field(default_factory=list)  # (from epoch s, agent clock offset s)
    ticks: list[Tick] = field(default_factory=list)
    mem: list[MemLook] = field(default_factory=list)
    load: list[tuple[float, str]] = field(default_factory=list)
    sim: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # plantsim status every 10 s
    msgs: Messages = field(default_factory=Messages)
    agent: Agent | None = None
    log: str = ""
    faked: list[bool] = field(default_factory=list)  # per agent start: under libfaketime?


@dataclass(order=True)
class Step:
    at: float
    n: int
    action: Action = field(compare=False)
    undo: bool = field(compare=False, default=False)


def run(args: argparse.Namespace, logs: Path) -> Soak:
    """The whole soak; the agent's log is copied to ``logs``."""
    soak = Soak(seconds=args.seconds, warmup_s=args.warmup, commit=git_commit())
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-soak-")))
        broker = stack.enter_context(LocalBroker())
        soak.broker = broker.kind
        proxy = OutageProxy(broker.port)
        stack.callback(proxy.close)
        with open(args.config, "rb") as f:
            data = with_tc_faults(tomllib.load(f), args.seconds)
        plant = prepare(Path(args.config), proxy.url, str(tmp / "state"), stack, data=data)
        config = tmp / "plant.toml"
        config.write_text(toml_dumps(plant.data))
        client, q = subscribe(broker.url)
        stack.callback(client.loop_stop)
        stack.callback(client.disconnect)
        clock = None if args.no_clock else FakeClock(tmp)
        env = dict(installed_env(), EDGE_AGENT_MQTT_URL=proxy.url)
        agent = Agent(config, dict(env, **(clock.env() if clock else {})), tmp / "agent.log")
        soak.agent = agent
        steps = _steps(scaled(args.seconds), clock is not None)
        print(
            f"soak: {broker.kind} broker behind a relay, {len(plant.plugin_of)} instances, {len(steps)} steps, "
            f"{args.seconds:.0f} s, commit {soak.commit}, load {loadavg()}",
            flush=True,
        )
        try:
            _loop(soak, agent, plant, proxy, clock, client, q, steps, env)
        finally:
            agent.stop()
            proxy.up()
            time.sleep(2.0)
            drain(q, soak.msgs)
            logs.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp / "agent.log", logs)
            soak.log = (tmp / "agent.log").read_text(errors="replace")
            soak.faked = list(agent.faked)
    return soak


def _steps(actions: list[Action], with_clock: bool) -> list[Step]:
    steps: list[Step] = []
    for n, a in enumerate(actions):
        if a.what == "clock" and not with_clock:
            continue
        steps.append(Step(a.at_s, n, a))
        if a.for_s:
            steps.append(Step(a.at_s + a.for_s, n, a, undo=True))
    return sorted(steps)


def _loop(
    soak: Soak,
    agent: Agent,
    plant: Plant,
    proxy: OutageProxy,
    clock: FakeClock | None,
    client: Any,
    q: Any,
    steps: list[Step],
    clean_env: dict[str, str],
) -> None:
    """Start the agent, then once a second: due steps, a look at the agent, the messages."""
    agent.start()
    soak.t0 = agent.starts[0]
    soak.offsets.append((soak.t0, 0.0))
    end = soak.t0 + soak.seconds
    next_min = soak.t0
    while (now := time.time()) < end:
        while steps and soak.t0 + steps[0].at <= now:
            step = steps.pop(0)
            if step.action.what == "agent_restart":
                agent.env = clean_env  # the second agent runs without libfaketime
            detail = _do(step, soak, agent, plant, proxy, clock, client)
            soak.done.append((time.time(), step.action, detail))
            print(f"soak: {time.time() - soak.t0:7.1f} s  {detail}", flush=True)
        _ping_when_online(soak, client, plant)
        _look(soak, agent, now >= next_min, plant)
        if now >= next_min:
            next_min += 60.0
            _progress(soak)
        drain(q, soak.msgs)
        time.sleep(max(0.0, 1.0 - (time.time() - now)))


def _ping_when_online(soak: Soak, client: Any, plant: Plant) -> None:
    """``cmd ping`` 5 s after the agent announced itself online again after an outage (armed by a
    ping step at the outage's start): the answer proves its subscriptions came back with it."""
    for since, n in list(soak.pings):
        online = [t for t, s in soak.msgs.status if t > since and s.startswith("online")]
        if online and time.time() >= online[0] + 5.0 and _after_outage(soak, since, online[0]):
            soak.pings.remove((since, n))
            detail = _command(client, plant, "ping", {"id": f"soak-{n}", "args": {}})
            soak.done.append((time.time(), Action(time.time() - soak.t0, "cmd", arg="ping"), detail))
            print(f"soak: {time.time() - soak.t0:7.1f} s  {detail} (online again at {online[0] - soak.t0:.1f} s)")


def _after_outage(soak: Soak, since: float, online: float) -> bool:
    """Is ``online`` after the end of the outage that began at ``since``?"""
    return any(d0 >= since - 1.0 and online >= d1 for d0, d1 in soak.outages)


def _look(soak: Soak, agent: Agent, minute: bool, plant: Plant) -> None:
    try:
        soak.ticks.append(agent.tick())
        if len(soak.ticks) % 10 == 1:
            soak.mem.append(agent.mem())
            if plant.sim is not None:
                soak.sim.append((time.time(), plant.sim.status()))
    except OSError:
        pass  # between stop and start, or gone: the report says so
    if minute:
        soak.load.append((time.time(), loadavg()))


def _progress(soak: Soak) -> None:
    t = soak.ticks[-1] if soak.ticks else None
    print(
        f"soak: {time.time() - soak.t0:7.1f} s  load {soak.load[-1][1]}  "
        + (f"rss {t.rss_kb / 1024:.1f} MB  written {t.write_bytes / 1e6:.2f} MB  " if t else "")
        + f"messages {soak.msgs.total}  events {len(soak.msgs.events)}",
        flush=True,
    )


def _do(
    step: Step,
    soak: Soak,
    agent: Agent,
    plant: Plant,
    proxy: OutageProxy,
    clock: FakeClock | None,
    client: Any,
) -> str:
    """Carry out one step; a line saying what was done."""
    a = step.action
    control = plant.sim.plant.control if plant.sim else ""
    if a.what == "fault":
        cmd = {"cmd": "fault", "instance": a.target, **({"fault": "none"} if step.undo else a.arg)}
        return f"{'undo ' if step.undo else ''}{a.label()}: {send(control, cmd)}"
    if a.what == "plc":
        answer = send(control, {"cmd": "plc", "instance": a.target, "state": "ok" if step.undo else a.arg})
        return f"{'undo ' if step.undo else ''}{a.label()}: {answer}"
    if a.what == "outage":
        if step.undo:
            proxy.up()
            soak.outages.append((soak.down_since, time.time()))
            return f"broker back after {a.for_s:.0f} s"
        soak.down_since = time.time()
        proxy.down()
        return f"broker down for {a.for_s:.0f} s"
    if a.what == "clock" and clock is not None:
        before = clock.offset_s
        clock.set_offset(float(a.target))
        soak.offsets.append((time.time(), clock.offset_s))
        return f"agent wall clock stepped {clock.offset_s - before:+.0f} s (offset {clock.offset_s:+.0f} s)"
    if a.what == "ping":
        soak.pings.append((time.time(), step.n))
        return "ping armed: 5 s after the agent is online again"
    if a.what == "cmd":
        return _command(client, plant, a.arg, {"id": f"soak-{step.n}", "instance": a.target, "args": {}})
    if a.what == "push":
        return _push(client, plant, a, step.n)
    if a.what == "agent_restart":
        agent.stop()
        sent, exited, code = agent.stops[-1]
        agent.start()
        return f"agent SIGTERM: exit {code} in {exited - sent:.2f} s; started again {a.arg} (pid {agent.pid})"
    return f"skipped {a.label()}"


def _topic(plant: Plant, rest: str) -> str:
    return f"{plant.data['mqtt'].get('prefix', 'edge')}/{plant.data['agent']['id']}/{rest}"


def _command(client: Any, plant: Plant, name: str, body: dict[str, Any]) -> str:
    client.publish(_topic(plant, f"cmd/{name}"), json.dumps(body), qos=1)
    return f"cmd {name} {body.get('instance', '')} sent (id {body['id']})"


def _push(client: Any, plant: Plant, a: Action, n: int) -> str:
    """A one-shot push on config/set: the target instance's table with the action's changes."""
    table = copy.deepcopy(next(i for i in plant.data["instances"] if i["name"] == a.target))
    for dotted, value in a.arg.items():
        *path, key = dotted.split(".")
        node = table
        for p in path:
            node = node.setdefault(p, {})
        node[key] = value
    doc = {"version": int(time.time()), "id": f"soak-{n}", "patch": {"set": [table]}}
    client.publish(_topic(plant, "config/set"), json.dumps(doc), qos=1)
    return f"config push {a.target} {a.arg} sent, version {doc['version']} (id {doc['id']})"
