"""Directories only this user may use: created 0700, or refused when another user may have made them.

The agent's state directory and plantsim's control and simulated-device directories hold what
decides what the agent runs and reads (a stored pushed layer, a socket answering status, a FIFO
feeding samples). In a world-writable place such as /tmp another local user can create them first;
so a directory is used only when it is this user's, is a real directory (not a symlink), and no
one else may write it. The agent and plantsim share this one rule (bottom layer: imports nothing of ours).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotPrivate(OSError):
    """A directory this user must not trust; the message says whose it is and what to do."""


def check(path: str | os.PathLike[str]) -> None:
    """NotPrivate unless ``path`` is this user's real directory (or socket/file) that no one else
    may write: what a client checks before it trusts a socket found there."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise NotPrivate(f"{path} is a symlink: not trusted")
    if st.st_uid != os.geteuid():
        raise NotPrivate(f"{path} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}): not trusted")
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise NotPrivate(f"{path} may be written by others (mode {stat.S_IMODE(st.st_mode):o}): not trusted")


def claim(path: str | os.PathLike[str]) -> str:
    """Make ``path`` a directory only this user can use: ``created`` (fresh, 0700), ``kept`` (ours,
    already private) or ``tightened`` (ours, group/other bits removed). NotPrivate otherwise."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(p, 0o700)
        os.chmod(p, 0o700)  # mkdir's mode passes through the umask; this one does not
        return "created"
    except FileExistsError:
        pass
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise NotPrivate(f"{p} exists and is not a directory (a symlink or a file): not used; remove it")
    if st.st_uid != os.geteuid():
        raise NotPrivate(
            f"{p} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}): another user may have "
            "created it to plant files or take over its sockets; not used (remove it, or choose another path)"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(p, 0o700)
        return "tightened"
    return "kept"


def exposed_root(path: str | os.PathLike[str]) -> Path | None:
    """The topmost directory of ``path`` that sits in a world-writable directory (``/tmp/x`` for
    ``/tmp/x/sys/bus``), or None when no parent is world-writable."""
    p = Path(os.path.abspath(path))
    for top in reversed([p, *p.parents]):
        parent = top.parent
        if parent == top:
            continue
        try:
            mode = os.stat(parent).st_mode
        except OSError:
            return None  # the rest does not exist yet: its first existing parent was not world-writable
        if mode & stat.S_IWOTH:
            return top
    return None


def private_files(directory: str | os.PathLike[str]) -> int:
    """Remove group/other bits from this user's files and directories in ``directory`` (and one
    level below): state written by an older version under umask 022. Returns how many changed."""
    changed = 0
    base = Path(directory)
    for entry in [
        base,
        *base.iterdir(),
        *(c for d in base.iterdir() if d.is_dir() and not d.is_symlink() for c in d.iterdir()),
    ]:
        try:
            st = os.lstat(entry)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or not stat.S_IMODE(st.st_mode) & 0o077:
            continue
        os.chmod(entry, 0o700 if stat.S_ISDIR(st.st_mode) else 0o600)
        changed += 1
    return changed


__all__ = ["NotPrivate", "check", "claim", "exposed_root", "private_files"]
