"""The ops side of desired state without a broker: a patch resolves to the whole set each target
follows, a version names one content, and fleet says why an agent drifts."""

from __future__ import annotations

from edge_agent.agent.config.layers import layer_hash
from edge_agent.agent.ops.inventory import AgentInfo, DesiredDoc, Fleet, assess
from edge_agent.agent.ops.push import version_conflicts, whole_sets


def doc(key: str, version: int, names: list[str], **extra: object) -> DesiredDoc:
    return DesiredDoc(key, {"version": version, "config": {"instances": [{"name": n} for n in names]}, **extra})


def fleet() -> Fleet:
    f = Fleet()
    f.agents = {"a": AgentInfo("a", groups=["g"]), "b": AgentInfo("b", groups=["g"]), "c": AgentInfo("c")}
    f.docs = {"agent:a": doc("agent:a", 5, ["x", "y"]), "group:g": doc("group:g", 6, ["z"])}
    return f


def test_a_patch_is_laid_over_the_set_each_target_follows() -> None:
    f = fleet()
    sets, errors = whole_sets(
        f, ["agent:a", "agent:b", "agent:c", "group:g"], {"patch": {"set": [{"name": "n"}], "remove": []}}
    )
    assert [t["name"] for t in sets["agent:a"]] == ["z", "n"], "a follows its group's newer document"
    assert [t["name"] for t in sets["agent:c"]] == ["n"] and not errors
    sets, errors = whole_sets(f, ["agent:c"], {"patch": {"set": [], "remove": ["z"]}})
    assert errors == {"agent:c": ["--remove z: not in the desired set of agent:c (empty)"]} and not sets
    f.docs["agent:c"] = DesiredDoc("agent:c", {"version": 7, "patch": {"set": []}})
    _, errors = whole_sets(f, ["agent:c"], {"patch": {"set": [], "remove": []}})
    assert "is a patch" in errors["agent:c"][0]


def test_a_version_names_one_content() -> None:
    f = fleet()
    assert version_conflicts(f, {"agent:a": [{"name": "x"}, {"name": "y"}]}, 5) == []
    assert version_conflicts(f, {"agent:a": [{"name": "x"}]}, 5) == [
        "agent:a: version 5 is retained with other content (push a new version)"
    ]
    assert version_conflicts(f, {"agent:a": [{"name": "x"}]}, 8) == []


def test_drift_by_content_with_the_reason() -> None:
    want = doc("agent:a", 9, ["x"], kid="k-old")
    cases = [
        (AgentInfo("a", online=True, pushed_hash=layer_hash([{"name": "x"}]), version=3), ""),  # same set: no drift
        (AgentInfo("a", online=False, version=3), "pending: offline"),
        (AgentInfo("a", online=True, trusted_keys=["k-new"]), "key not trusted: agent:a is signed by k-old"),
        (
            AgentInfo("a", online=True, results=[{"status": "rejected", "attempted": 9, "why": "plugin 'q'"}]),
            "rejected v9: plugin 'q'",
        ),
        (AgentInfo("a", online=True, version=8), "online, runs v8"),
    ]
    for info, why in cases:
        assess(info, want, 0)
        assert info.drift == bool(why) and info.why.startswith(why), (info.why, why)
    expired = AgentInfo("a", online=True)
    assess(expired, doc("agent:a", 9, ["x"], expires=100), 200)
    assert expired.why.startswith("expired: agent:a v9")
