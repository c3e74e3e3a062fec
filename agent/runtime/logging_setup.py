"""Logging set-up: journald-friendly under systemd, timestamped lines elsewhere, secrets masked.

Under systemd (``JOURNAL_STREAM`` names our stderr, or ``INVOCATION_ID`` is set) each line is
``<N>logger: message`` where ``<N>`` is the syslog priority (journald turns it into the entry's
PRIORITY and adds its own timestamp). Elsewhere: ``2026-11-25 18:54:48,123 INFO logger: message``.
Every record passes a :class:`SecretFilter` that masks ``password=...``-style values, credentials
in URLs and any value registered with :func:`register_secret` (e.g. the MQTT password file's content).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import TextIO

MASK = "***"
MIN_SECRET_LEN = 4  # shorter registered values would mask ordinary words in every line

# syslog priorities (RFC 5424): 2 crit, 3 err, 4 warning, 5 notice, 6 info, 7 debug
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
_KEY_VALUE = re.compile(
    r"""(?P<key>\b[\w.-]*(?:password|passwd|passphrase|token|secret|api[_-]?key)[\w.-]*)"""
    r"""(?P<sep>\s*=\s*|["']\s*:\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;&"'}\]]+)""",
    re.IGNORECASE,
)
_NOT_SECRET_SUFFIXES = ("_file", "-file", "_path", "-path")
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s/:@]+:)(?P<pw>[^\s/@]+)(?=@)", re.I)


def syslog_priority(levelno: int) -> int:
    """Map a logging level number onto a syslog priority (2..7)."""
    for threshold, priority in _PRIORITIES:
        if levelno >= threshold:
            return priority
    return 7


def parse_level(level: str) -> int:
    """Return the logging level for a name like ``info`` (ValueError on unknown names)."""
    try:
        return _LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}") from None


def mask_secrets(text: str, secrets: frozenset[str] = frozenset()) -> str:
    """Mask registered secret values, ``key=value`` secrets and URL passwords in ``text``."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: m["head"] + MASK, text)
    return _KEY_VALUE.sub(_mask_value, text)


def _mask_value(m: re.Match[str]) -> str:
    if m["key"].lower().endswith(_NOT_SECRET_SUFFIXES):
        return m[0]  # password_file = /etc/edge-agent/mqtt.pass names a file, it is no secret
    value = m["value"]
    quote = value[0] if value[:1] in {'"', "'"} else ""
    return f"{m['key']}{m['sep']}{quote}{MASK}{quote}"


class SecretFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with secrets masked; never drops a record."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()

    def register(self, value: str) -> None:
        """Mask this exact value (and its stripped form) from now on."""
        found = {v for v in (value, value.strip()) if len(v) >= MIN_SECRET_LEN}
        self.secrets = self.secrets | found

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the formatted message and any exception text in place."""
        record.msg = mask_secrets(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info, self.secrets)
        return True


_DEFAULT_FILTER = SecretFilter()


def register_secret(value: str) -> None:
    """Mask ``value`` in every log line of handlers installed by :func:`setup_logging`."""
    _DEFAULT_FILTER.register(value)


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``, the priority repeated on every line of a multi-line record."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Format the record with a syslog priority prefix on each line."""
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def journal_wanted(env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> bool:
    """True when ``stream`` is connected to journald (``JOURNAL_STREAM``) or we run under systemd."""
    env = os.environ if env is None else env
    stream = sys.stderr if stream is None else stream
    if env.get("JOURNAL_STREAM"):
        try:
            st = os.fstat(stream.fileno())
        except (OSError, ValueError, AttributeError):
            st = None
        if st is not None and env["JOURNAL_STREAM"] == f"{st.st_dev}:{st.st_ino}":
            return True
    return bool(env.get("INVOCATION_ID"))


def setup_logging(
    level: str = "info",
    *,
    journal: bool | None = None,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Configure the root logger once (idempotent): journald or plain format, secrets masked."""
    stream = sys.stderr if stream is None else stream
    use_journal = journal_wanted(env, stream) if journal is None else journal
    handler = logging.StreamHandler(stream)
    handler.set_name("edge-agent")
    if use_journal:
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DEFAULT_FILTER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "edge-agent"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(parse_level(level))
    logging.captureWarnings(True)  # warnings.warn() output gets a priority and the secret filter too
