"""The layering rule of docs/architecture.md ("Layering"), checked on every module's imports.

Imports are read with ``ast`` from the source (module level, inside functions, and under
``if TYPE_CHECKING:``), so a lazy import does not hide a wrong direction. The rule:

* no import cycle between modules (imports under ``if TYPE_CHECKING:`` do not run, so they do
  not count for cycles; they do count for the directions below);
* drivers/ imports nothing of agent/ or plugins/; plugins/ imports nothing of agent/ (errors a
  driver or plugin raises live with the contract: drivers/errors.py, drivers/contract.py);
* a plugin package imports no other plugin's package (shared code lives in plugins/common);
* production code imports no test kit (drivers/testing, plugins/testing) and nothing of tests/;
* the daemon (everything in agent/ but ops/, devtools/ and the command line) imports nothing of
  the off-device tools (agent/ops) or the developer tools (agent/devtools).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("agent", "drivers", "plugins")
TEST_KITS = ("edge_agent.drivers.testing", "edge_agent.plugins.testing")
TOOLS = ("edge_agent.agent.ops", "edge_agent.agent.devtools")
# The command line dispatches to the daemon and to the tools alike: it is neither.
ENTRY = ("edge_agent.agent", "edge_agent.agent.cli", "edge_agent.agent.__main__")
TESTS_MODULES = frozenset(p.stem for p in (ROOT / "tests").glob("*.py")) | {"tests"}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to the module it names."""

    source: str  # the importing module, e.g. edge_agent.drivers.buses.spi
    target: str  # the imported module (a submodule when ``from pkg import submodule``)
    where: str  # file:line
    type_only: bool  # under ``if TYPE_CHECKING:``: never runs


@functools.cache
def modules() -> dict[str, Path]:
    """Every module of the three code folders by its installed name (edge_agent.agent.cli...)."""
    out = {}
    for top in TOPS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(["edge_agent", *parts])] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement below ``node``, with whether it sits under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, type_only
        elif isinstance(child, ast.If) and _is_type_checking(child):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), type_only)
        else:
            yield from _walk(child, type_only)


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolve against the importing module's package
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in modules() else base


def imports_of(name: str, path: Path) -> list[Import]:
    """The imports of one module (every statement, wherever it is in the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    rel = path.relative_to(ROOT)
    return [
        Import(name, target, f"{rel}:{node.lineno}", type_only)
        for node, type_only in _walk(ast.parse(path.read_text(), str(path)))
        for target in _targets(node, package)
    ]


@functools.cache
def all_imports() -> list[Import]:
    """Every import of every module, read once per test run (on first use, not at collection)."""
    return list(dict.fromkeys(imp for name, path in modules().items() for imp in imports_of(name, path)))


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _report(bad: list[Import], rule: str, fix: str) -> str:
    lines = "\n".join(f"  {i.where}: {i.source} imports {i.target}" for i in bad)
    return f"{rule} (docs/architecture.md, Layering):\n{lines}\n{fix}"


def test_the_scan_sees_every_kind_of_import() -> None:
    """The scanner resolves relative, function-level and TYPE_CHECKING imports (else the rules below prove nothing)."""
    src = (
        "from typing import TYPE_CHECKING\nfrom . import lanes\nfrom .contract import Values\n"
        "if TYPE_CHECKING:\n    from edge_agent.agent.errors import AgentError\n"
        "def f():\n    import edge_agent.plugins.contract\n"
    )
    got = [
        (t, type_only)
        for node, type_only in _walk(ast.parse(src))
        for t in _targets(node, "edge_agent.drivers")
        if t.startswith("edge_agent")
    ]
    assert got == [
        ("edge_agent.drivers.lanes", False),
        ("edge_agent.drivers.contract", False),
        ("edge_agent.agent.errors", True),
        ("edge_agent.plugins.contract", False),
    ]
    assert len(modules()) > 150 and len(all_imports()) > 500


def test_drivers_import_nothing_of_the_agent_or_the_plugins() -> None:
    bad = [
        i
        for i in all_imports()
        if _under(i.source, "edge_agent.drivers") and _under(i.target, "edge_agent.agent", "edge_agent.plugins")
    ]
    assert not bad, _report(
        bad,
        "drivers/ must not import agent/ or plugins/",
        "Move what the driver needs into drivers/ (errors into drivers/errors.py or drivers/contract.py).",
    )


def test_plugins_import_nothing_of_the_agent() -> None:
    bad = [i for i in all_imports() if _under(i.source, "edge_agent.plugins") and _under(i.target, "edge_agent.agent")]
    assert not bad, _report(
        bad,
        "plugins/ must not import agent/",
        "What a plugin needs from the agent comes through its PluginContext; interfaces live in plugins/contract.py.",
    )


def _plugin_package(module: str) -> str | None:
    """``vibration`` for edge_agent.plugins.vibration.features; None outside a plugin's own package."""
    parts = module.split(".")
    shared = ("contract", "common", "testing")
    return parts[2] if len(parts) > 2 and parts[1] == "plugins" and parts[2] not in shared else None


def test_a_plugin_imports_no_other_plugins_code() -> None:
    bad = [
        i
        for i in all_imports()
        if _plugin_package(i.source) and _plugin_package(i.target) not in (None, _plugin_package(i.source))
    ]
    assert not bad, _report(
        bad,
        "a plugin package must not import another plugin's package",
        "Move the shared code into plugins/common/ and import it from there in both.",
    )


def test_production_code_imports_no_test_kit() -> None:
    bad = [
        i
        for i in all_imports()
        if not _under(i.source, *TEST_KITS)
        and (_under(i.target, *TEST_KITS) or i.target.split(".")[0] in TESTS_MODULES)
    ]
    assert not bad, _report(
        bad,
        "production code must not import drivers/testing, plugins/testing or tests/",
        "Move what production needs out of the kit (emulated buses live in drivers/buses/emulated.py); "
        "the kit may re-export it.",
    )


def _in_daemon(module: str) -> bool:
    return _under(module, "edge_agent.agent") and module not in ENTRY and not _under(module, *TOOLS)


def test_the_daemon_imports_no_off_device_or_developer_tool() -> None:
    bad = [i for i in all_imports() if _in_daemon(i.source) and _under(i.target, *TOOLS)]
    assert not bad, _report(
        bad,
        "the daemon (everything in agent/ but ops/, devtools/ and the command line: runtime, config, messaging, "
        "remote, sparkplug, maintenance, history, alarms...) must not import agent/ops or agent/devtools",
        "Move the shared piece into the daemon's package that owns it, and let the tool import it from there.",
    )


def test_the_contracts_import_no_agent_errors() -> None:
    """Errors a driver or plugin raises live with the contract (ContractError, drivers/errors.py)."""
    bad = [
        i
        for i in all_imports()
        if i.source in ("edge_agent.drivers.contract", "edge_agent.plugins.contract")
        and _under(i.target, "edge_agent.agent")
    ]
    assert not bad, _report(bad, "a contract must not import agent/", "Define the error beside the contract.")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    edges: dict[str, set[str]] = {}
    for i in all_imports():
        if not i.type_only and i.target in modules() and i.target != i.source:
            edges.setdefault(i.source, set()).add(i.target)
    cycles = _cycles(edges)
    detail = "\n".join(
        f"  {' <-> '.join(c)}:\n"
        + "\n".join(f"    {i.where}: imports {i.target}" for i in all_imports() if i.source in c and i.target in c)
        for c in cycles
    )
    assert not cycles, (
        f"import cycles (docs/architecture.md, Layering):\n{detail}\n"
        "Break each: move the shared piece into a module both import, or pass it in (a Protocol); "
        "an import only for annotations goes under `if TYPE_CHECKING:`."
    )
