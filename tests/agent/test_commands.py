"""Commands over MQTT against a real agent: ping, status, restart, unknown, bad arguments."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from edge_agent.agent.remote.commands import CommandError, Commands
from edge_agent.plugins.contract import Plugin, UnknownCommand
from support import RemoteAgent, cmd


def test_ping_status_restart(agent: RemoteAgent) -> None:
    pong = cmd(agent, "ping", {"id": "a1"})
    assert pong["ok"] and pong["id"] == "a1" and pong["result"]["pong"] is True
    status = cmd(agent, "status", {"id": 2})["result"]
    assert set(status["instances"]) == {"steady", "other"} and status["stats"]["connected"] is True
    assert status["stats"]["instances"]["steady"]["polls"] > 0
    n = len(agent.sub.on("edge/t1/data/other"))  # before: the restarted instance's first message may beat the answer
    restarted = cmd(agent, "restart", {"instance": "other"})
    assert restarted["ok"] and restarted["result"] == {"restarted": "other"}
    agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/data/other")) > n, 5, "other publishing after restart")
    as_json = cmd(agent, "ping", raw=json.dumps({"id": "j"}).encode())
    assert as_json["ok"] and as_json["id"] == "j"


def test_unknown_commands_and_bad_arguments_get_clear_errors(agent: RemoteAgent) -> None:
    unknown = cmd(agent, "selfdestruct", {"id": 1})
    assert unknown["id"] == 1 and not unknown["ok"] and unknown["error"].startswith("unknown command 'selfdestruct' (")
    bare = cmd(agent, "restart", {"id": 5})  # issue 20 item 12: say that an instance is required
    assert bare["error"] == 'restart needs an instance: {"instance": NAME} (running: other, steady)'
    config = cmd(agent, "config", {"id": 6})["result"]
    assert config["version"] == 0 and [i["name"] for i in config["instances"]] == ["steady", "other"]
    wrong = cmd(agent, "restart", {"id": 2, "instance": "nope"})
    assert not wrong["ok"] and wrong["error"] == "unknown instance 'nope' (running: other, steady)"
    unsupported = cmd(agent, "capture", {"id": 3, "instance": "steady", "args": {"seconds": 1}})
    assert unsupported["error"] == "instance 'steady' does not support command 'capture'"
    garbage = cmd(agent, "ping", raw=b"\xc1\xc1")
    assert not garbage["ok"] and "neither MessagePack nor JSON" in garbage["error"]
    bad_args = cmd(agent, "ping", {"id": 4, "args": [1, 2]})
    assert bad_args == {"id": 4, "ok": False, "error": "args must be a map"}


def test_a_key_error_inside_a_real_command_is_not_answered_as_unknown() -> None:
    class Lookup(Plugin):
        async def command(self, name: str, args: Mapping[str, Any]) -> Any:
            if name == "lookup":
                return {}[args["key"]]  # a bug in a real command: must not read "does not support"
            raise UnknownCommand(name)

    control = SimpleNamespace(plugin_of=lambda name: Lookup(None))  # type: ignore[arg-type]
    commands = Commands(control, answer=lambda name, d: None, chunk_bytes=1024)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        asyncio.run(commands._plugin_command("lookup", "p", {"key": "x"}))
    with pytest.raises(CommandError, match="instance 'p' does not support command 'nope'"):
        asyncio.run(commands._plugin_command("nope", "p", {}))
