"""deploy/install.sh and deploy/build-wheelhouse.sh against a throw-away root (--root), offline.

The package installed is a tiny stand-in wheel named ``edge-agent`` whose console script answers
``--version`` and ``check-config`` (and can be built to reject the config): it has no dependencies,
so the installer's real steps (fresh venv per release, pip install, checks, symlink switch,
roll-back, pruning, config kept, unit and group drop-in) run offline in seconds. The real CLI is
checked against the example config separately.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
BUILD = REPO / "deploy" / "build-wheelhouse.sh"
EXAMPLE = REPO / "deploy" / "edge-agent.example.toml"
PYTHON = sys.executable  # the interpreter install() hands the installer (see lent_pip_python)

FAKE_CLI = '''"""Stand-in for the edge-agent CLI, used by the installer tests."""
import sys

import importlib.util

VERSION = "{version}"
CHECK_RC = {check_rc}
DEVICE_GROUPS = {device_groups}


def main():
    args = sys.argv[1:]
    if args == ["--version"]:
        print("edge-agent " + VERSION)
        return 0
    if args[:1] == ["check-config"] and len(args) == 2:
        with open(args[1]) as f:
            f.read()
        print(args[1] + (": instances[0].plugin: unknown plugin" if CHECK_RC else ": ok"))
        return CHECK_RC
    if args[:1] == ["device-groups"] and DEVICE_GROUPS:
        # like the real command: the groups the installed drivers declare (here: the stand-in
        # third-party I2C driver, when it is installed in this venv)
        if importlib.util.find_spec("sht3x_standin") is not None:
            print("i2c")
        return 0
    return 2
'''


def make_wheel(directory: Path, version: str, *, check_rc: int = 0, device_groups: bool = False) -> Path:
    """Write a minimal valid wheel for a distribution named edge-agent."""
    cli = FAKE_CLI.format(version=version, check_rc=check_rc, device_groups=device_groups)
    entry_points = "[console_scripts]\nedge-agent = edge_agent_standin:main\n"
    return write_wheel(directory, "edge-agent", version, {"edge_agent_standin.py": cli}, entry_points)


def write_wheel(directory: Path, dist: str, version: str, modules: dict[str, str], entry_points: str) -> Path:
    """Write a minimal valid pure-Python wheel."""
    stem = f"{dist.replace('-', '_')}-{version}"
    dist_info = f"{stem}.dist-info"
    files = {
        **modules,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": entry_points,
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


VENV_WITHOUT_ENSUREPIP = """#!/usr/bin/env bash
# {real} with one difference: `-m venv DIR` makes DIR without ensurepip (5 s of CPU per venv) and
# lends it this test run's pip through a .pth, so DIR/bin/python -m pip installs into DIR as before.
if [[ "$1 $2" == "-m venv" ]]; then
    "{real}" -m venv --without-pip "${{@:3}}" || exit
    for site in "${{@: -1}}"/lib/python3*/site-packages; do echo "{lent}" > "$site/_lent_pip.pth"; done
    exit 0
fi
exec "{real}" "$@"
"""


@pytest.fixture(scope="module", autouse=True)
def lent_pip_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """install() runs the installer with an interpreter whose venvs skip ensurepip (see above).

    Every step of the installer still runs (fresh venv per release, pip install, checks, switch);
    test_offline_bundle_from_wheelhouse keeps the real interpreter, so ensurepip is covered once.
    """
    global PYTHON
    tmp = tmp_path_factory.mktemp("python")
    lent = tmp / "lent"
    lent.mkdir()
    spec = importlib.util.find_spec("pip")
    assert spec is not None and spec.submodule_search_locations
    (lent / "pip").symlink_to(spec.submodule_search_locations[0])
    wrapper = tmp / "python3"
    wrapper.write_text(VENV_WITHOUT_ENSUREPIP.format(real=sys.executable, lent=lent))
    wrapper.chmod(0o755)
    PYTHON = str(wrapper)
    try:
        yield
    finally:
        PYTHON = sys.executable


def sh(script: Path, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env["PIP_NO_INDEX"] = "1"  # offline, whatever the installer is asked to do
    proc = subprocess.run(["bash", str(script), *map(str, args)], capture_output=True, text=True, timeout=120, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def install(root: Path, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(INSTALL, "--root", root, "--python", PYTHON, "--extras", "", *args, check=check)


def releases(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "opt/edge-agent/releases").iterdir())


def current(root: Path) -> str:
    link = root / "opt/edge-agent/venv"
    assert link.is_symlink()
    return os.readlink(link)


def version_of(root: Path) -> str:
    out = subprocess.run(
        [str(root / "opt/edge-agent/venv/bin/edge-agent"), "--version"], capture_output=True, text=True
    )
    return out.stdout.strip()


def groups_drop_in(root: Path) -> list[str]:
    text = (root / "etc/systemd/system/edge-agent.service.d/10-groups.conf").read_text()
    return [line for line in text.splitlines() if line.startswith("SupplementaryGroups")]


@pytest.mark.slow
def test_dry_run_prints_and_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = install(root, "--dry-run", "--enable-spi")
    assert not root.exists()
    out = proc.stdout
    assert "- skipped (--root): useradd --system" in out
    assert "- skipped (--root): raspi-config nonint do_spi 0" in out
    assert "- skipped (--root): systemctl enable edge-agent.service" in out
    assert f"+ install -m 0640 {EXAMPLE} {root}/etc/edge-agent/config.toml" in out
    assert "bin/edge-agent check-config" in out


@pytest.mark.slow
def test_bad_options_are_rejected(tmp_path: Path) -> None:
    assert "unknown option: --frobnicate" in install(tmp_path, "--frobnicate", check=False).stderr
    assert "no such wheel" in install(tmp_path, "--wheel", tmp_path / "x.whl", check=False).stderr
    assert "--purge only goes with --uninstall" in install(tmp_path, "--purge", check=False).stderr


@pytest.mark.slow
def test_install_upgrade_roll_back_uninstall(tmp_path: Path) -> None:
    root, wheels = tmp_path / "root", tmp_path / "wheels"
    (root / "etc").mkdir(parents=True)
    (root / "etc/group").write_text("root:x:0:\ndialout:x:20:\nspi:x:999:\n")
    config = root / "etc/edge-agent/config.toml"

    # Fresh install: example config, a release behind the venv symlink, unit, empty group list.
    out = install(root, "--wheel", make_wheel(wheels, "1.0.0")).stdout
    assert config.read_text() == EXAMPLE.read_text()
    assert (root / "etc/edge-agent/config.toml.example").read_text() == EXAMPLE.read_text()
    assert version_of(root) == "edge-agent 1.0.0"
    first = releases(root)
    assert len(first) == 1
    assert current(root) == f"releases/{first[0]}"
    unit = root / "etc/systemd/system/edge-agent.service"
    assert unit.read_text() == (REPO / "systemd/edge-agent.service").read_text()
    assert groups_drop_in(root) == ["SupplementaryGroups=", "SupplementaryGroups="]
    assert "- skipped (--root): systemctl restart edge-agent.service" in out

    # Same version again: idempotent, the operator's config edit survives.
    config.write_text(config.read_text() + "# edited by the operator\n")
    edited = config.read_text()
    out = install(root, "--wheel", make_wheel(wheels, "1.0.0"), "--groups", "dialout,i2c").stdout
    assert "version 1.0.0 is already installed" in out
    assert (releases(root), config.read_text()) == (first, edited)
    assert "group i2c does not exist on this host" in out  # explicit groups, still only existing ones
    assert groups_drop_in(root) == ["SupplementaryGroups=", "SupplementaryGroups=dialout"]

    # Upgrade: hardware in the config selects groups that exist in <root>/etc/group.
    config.write_text(
        edited
        + '# driver = { device = "/dev/i2c-1" }  (a comment: ignored)\n'
        + '[[instances]]\nname = "acc"\nplugin = "vibration"\n'
        + 'driver = { type = "adxl345", bus = "spi", device = "/dev/spidev0.0" }\n'
        + '[[instances]]\nname = "rtu"\nplugin = "plc"\ndriver = { type = "modbus", port = "/dev/ttyUSB0" }\n'
        + '[[instances]]\nname = "tacho"\nplugin = "gpio"\n'
    )
    (root / "opt/edge-agent/releases/20000101T000000Z").mkdir()  # an old release to prune
    out = install(root, "--wheel", make_wheel(wheels, "2.0.0")).stdout
    assert version_of(root) == "edge-agent 2.0.0"
    assert len(releases(root)) == 2 and first[0] in releases(root)  # previous kept for roll-back
    assert "group gpio does not exist on this host" in out
    assert groups_drop_in(root) == ["SupplementaryGroups=", "SupplementaryGroups=spi dialout"]
    good = current(root)

    # A release that rejects the config is discarded; the running one is untouched.
    proc = install(root, "--wheel", make_wheel(wheels, "3.0.0", check_rc=1), check=False)
    assert proc.returncode == 1
    assert "rejects" in proc.stderr and "untouched" in proc.stderr
    assert current(root) == good and len(releases(root)) == 2
    assert version_of(root) == "edge-agent 2.0.0"

    # Uninstall keeps config and state; purge removes them.
    install(root, "--uninstall")
    assert not (root / "opt/edge-agent").exists() and not unit.exists()
    assert config.read_text().endswith('plugin = "gpio"\n')
    assert (root / "var/lib/edge-agent").is_dir()
    install(root, "--uninstall", "--purge")
    assert not (root / "etc/edge-agent").exists() and not (root / "var/lib/edge-agent").exists()


@pytest.mark.slow
def test_offline_bundle_from_wheelhouse(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "1.2.3")
    out = tmp_path / "dist"
    sh(BUILD, "--wheel", wheel, "--extras", "", "--python", sys.executable, "--out", out)
    bundle = out / f"edge-agent-1.2.3-{os.uname().machine}"
    assert (out / f"{bundle.name}.tar.gz").is_file()
    assert sorted(p.name for p in bundle.iterdir()) == [
        "deployment.md",
        "edge-agent-panel.service",
        "edge-agent.example.toml",
        "edge-agent.service",
        "install.sh",
        "wheelhouse",
    ]
    root = tmp_path / "root"
    args = ("--root", root, "--python", sys.executable, "--extras", "", "--wheelhouse", bundle / "wheelhouse")
    sh(bundle / "install.sh", *args)
    assert version_of(root) == "edge-agent 1.2.3"
    assert (root / "etc/systemd/system/edge-agent.service").is_file()


@pytest.mark.slow
def test_example_config_passes_the_real_check_config() -> None:
    cli = shutil.which("edge-agent", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("the edge-agent CLI is not installed in this environment")
    proc = subprocess.run([cli, "check-config", str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


ANSIBLE = REPO / "deploy" / "ansible"
ROLE = ANSIBLE / "roles" / "edge_agent"


def test_ansible_role_parses_and_is_consistent() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    docs = {p.relative_to(ANSIBLE): yaml.safe_load(p.read_text()) for p in ANSIBLE.rglob("*.yml")}
    play = docs[Path("site.yml")][0]
    assert play["hosts"] == "edge_agents" and play["roles"][0]["role"] == "edge_agent"
    assert play["max_fail_percentage"] == 0
    defaults = set(docs[Path("roles/edge_agent/defaults/main.yml")])
    tasks = [t for p, d in docs.items() if p.parts[:3] == ("roles", "edge_agent", "tasks") for t in d]
    produced = {t["register"] for t in tasks if "register" in t}
    for t in tasks:
        produced |= set(t.get("ansible.builtin.set_fact", {})) | set(t.get("vars", {}))
        if "ansible.builtin.template" in t:
            assert (ROLE / "templates" / t["ansible.builtin.template"]["src"]).is_file()
        if "ansible.builtin.include_tasks" in t:
            assert (ROLE / "tasks" / t["ansible.builtin.include_tasks"]).is_file()
    handlers = {h["name"] for h in docs[Path("roles/edge_agent/handlers/main.yml")]}
    assert {t["notify"] for t in tasks if "notify" in t} <= handlers
    texts = [p.read_text() for p in ROLE.rglob("*") if p.is_file() and p.suffix in {".yml", ".j2"}]
    used = set(re.findall(r"\bedge_agent_\w+", "\n".join(texts)))
    assert used - defaults - produced == set()
    inventory = (ANSIBLE / "inventory.example.ini").read_text()
    assert set(re.findall(r"\bedge_agent_\w+", inventory)) <= defaults


def sht3x_wheel(directory: Path) -> Path:
    """A stand-in third-party driver package (what `--with` installs)."""
    return write_wheel(
        directory,
        "edge-sht3x",
        "0.3.0",
        {"sht3x_standin.py": "SPEC = None\n"},
        '[edge_agent.drivers]\nsht3x = "sht3x_standin:SPEC"\n',
    )


def imports(root: Path, module: str) -> bool:
    python = root / "opt/edge-agent/venv/bin/python"
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_third_party_packages_are_installed_remembered_and_give_groups(tmp_path: Path) -> None:
    root, wheels = tmp_path / "root", tmp_path / "wheels"
    (root / "etc").mkdir(parents=True)
    (root / "etc/group").write_text("root:x:0:\ni2c:x:998:\n")
    plug = sht3x_wheel(tmp_path / "vendor")
    extra = root / "etc/edge-agent/extra-packages.txt"

    # --with a wheel: installed beside edge-agent, remembered (a copy of the wheel is kept), and
    # its driver's device access (declared, not guessed from the config) becomes the unit's group
    out = install(root, "--wheel", make_wheel(wheels, "1.0.0", device_groups=True), "--with", plug).stdout
    kept = root / "opt/edge-agent/packages" / plug.name
    assert kept.is_file() and str(kept) in extra.read_text().splitlines()
    assert imports(root, "sht3x_standin")
    assert "third-party packages:" in out
    assert groups_drop_in(root) == ["SupplementaryGroups=", "SupplementaryGroups=i2c"]

    # an upgrade without --with keeps it (the release venv is new: it was reinstalled)
    plug.unlink()
    install(root, "--wheel", make_wheel(wheels, "2.0.0", device_groups=True))
    assert version_of(root) == "edge-agent 2.0.0" and imports(root, "sht3x_standin")

    # --without drops it (same version: still a new release, as the package set changed)
    install(root, "--wheel", make_wheel(wheels, "2.0.0", device_groups=True), "--without", "edge_sht3x")
    assert not imports(root, "sht3x_standin")
    assert str(kept) not in extra.read_text()
    assert groups_drop_in(root) == ["SupplementaryGroups=", "SupplementaryGroups="]


@pytest.mark.slow
def test_offline_bundle_carries_third_party_packages(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "1.2.3", device_groups=True)
    plug = sht3x_wheel(tmp_path / "vendor")
    out = tmp_path / "dist"
    sh(BUILD, "--wheel", wheel, "--with", plug, "--extras", "", "--python", PYTHON, "--out", out)
    bundle = out / f"edge-agent-1.2.3-{os.uname().machine}"
    assert (bundle / "extra-packages.txt").read_text().split() == ["edge_sht3x"]
    assert (bundle / "wheelhouse" / plug.name).is_file()
    root = tmp_path / "root"
    args = ("--root", root, "--python", PYTHON, "--extras", "", "--wheelhouse", bundle / "wheelhouse")
    sh(bundle / "install.sh", *args)
    assert imports(root, "sht3x_standin")
    assert "edge_sht3x" in (root / "etc/edge-agent/extra-packages.txt").read_text().split()


@pytest.mark.slow
def test_panel_is_installed_only_when_asked_and_removed_with_the_agent(tmp_path: Path) -> None:
    root, wheels = tmp_path / "root", tmp_path / "wheels"
    panel_unit = root / "etc/systemd/system/edge-agent-panel.service"
    install(root, "--wheel", make_wheel(wheels, "1.0.0"))
    assert not panel_unit.exists() and not (root / "etc/edge-agent-panel").exists()

    out = install(root, "--wheel", make_wheel(wheels, "1.0.0"), "--panel").stdout
    assert panel_unit.read_text() == (REPO / "systemd/edge-agent-panel.service").read_text()
    assert (root / "etc/edge-agent-panel").is_dir()
    assert "- skipped (--root): useradd --system --user-group" in out
    assert "- skipped (--root): systemctl enable edge-agent-panel.service" in out
    assert "write " in out and "edge-agent-panel/panel.toml" in out  # no config yet: not started

    install(root, "--uninstall")
    assert not panel_unit.exists() and (root / "etc/edge-agent-panel").is_dir()
    install(root, "--uninstall", "--purge")
    assert not (root / "etc/edge-agent-panel").exists()
