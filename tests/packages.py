"""Install third-party packages (scaffolded ones, examples/) the way an integrator does, and run
their own tests: into a throw-away target directory, offline when the build tools are installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from support import scaled

NO_ISOLATION = importlib.util.find_spec("setuptools") is not None and importlib.util.find_spec("wheel") is not None


def pip_install(packages: list[Path], target: Path) -> dict[str, str]:
    """pip-install (not editable, no dependencies) into ``target``; return the env that sees them."""
    args = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check"]
    args += ["--no-build-isolation"] if NO_ISOLATION else []
    proc = subprocess.run([*args, "--target", str(target), *map(str, packages)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {**os.environ, "PYTHONPATH": str(target)}


def run_package_tests(package: Path, env: dict[str, str]) -> None:
    """The package's own tests, as its author runs them (``pytest`` in its folder)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=package, capture_output=True, text=True, env=env, timeout=scaled(300))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
