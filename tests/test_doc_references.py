"""Code and docs point only to documents that ship in this repository (issue 20 item 11)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Planning documents of the team that never ship with the repository.
OUTSIDE = re.compile(r"ENV-FACTS|DESIGN\.md|STYLE\.md|PREAMBLE\.md")
DOC_LINK = re.compile(r"\bdocs/([\w.-]+\.md)")


def _sources() -> list[Path]:
    files = [p for d in ("agent", "drivers", "plugins", "bench", "deploy", "docs") for p in (ROOT / d).rglob("*")]
    files += [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    return [p for p in files if p.is_file() and p.suffix in {".py", ".md", ".toml", ".sh", ""} and p.name != "results"]


def test_no_reference_to_documents_outside_the_repository() -> None:
    found = [
        f"{p.relative_to(ROOT)}:{n}" for p in _sources() for n, line in enumerate(_lines(p), 1) if OUTSIDE.search(line)
    ]
    assert not found, f"points to a document that is not in the repository: {found}"


def test_every_docs_link_in_the_code_exists() -> None:
    missing = [
        f"{p.relative_to(ROOT)}: docs/{m}"
        for p in _sources()
        for m in DOC_LINK.findall("\n".join(_lines(p)))
        if not (ROOT / "docs" / m).exists()
    ]
    assert not missing, missing


def _lines(p: Path) -> list[str]:
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return []


CODE_PATH = re.compile(r"`((?:agent|drivers|plugins|bench|tests|examples|deploy|systemd)/[\w/.-]*\w)`")


def _exists(path: str) -> bool:
    """A file or folder, or ``module.name`` of a module that exists (``agent/state_files.connect``)."""
    module = path.rsplit(".", 1)[0]
    return any((ROOT / p).exists() for p in (path, f"{path}.py", f"{module}.py"))


def test_every_code_path_the_docs_name_exists() -> None:
    """Files move (architecture v2 moved most of them): a doc that names a path must follow."""
    docs = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *ROOT.glob("drivers/*/README.md")]
    docs += ROOT.glob("plugins/*/README.md")
    missing = [
        f"{p.relative_to(ROOT)}:{n}: {m}"
        for p in docs
        for n, line in enumerate(_lines(p), 1)
        for m in CODE_PATH.findall(line)
        if not _exists(m) and "formerly" not in line and "NAME" not in m  # history, and placeholders
    ]
    assert not missing, missing
