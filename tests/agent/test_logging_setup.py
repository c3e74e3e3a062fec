"""Logging set-up: journald priority prefixes, plain format, secret masking."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

import pytest
from edge_agent.agent.runtime import logging_setup as journal
from edge_agent.agent.runtime.logging_setup import (
    JournalFormatter,
    SecretFilter,
    journal_wanted,
    mask_secrets,
    parse_level,
    register_secret,
    setup_logging,
    syslog_priority,
)


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """Restore the root logger's handlers, level and warnings capture after setup_logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        logging.captureWarnings(False)
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


def record(msg: str, *args: object, level: int = logging.INFO, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("connect failed: password=hunter22")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("agent.mqtt", level, __file__, 1, msg, args, exc_info)


def test_syslog_priorities() -> None:
    expected = {
        logging.CRITICAL: 2,
        logging.ERROR: 3,
        logging.WARNING: 4,
        logging.INFO: 6,
        logging.DEBUG: 7,
        logging.NOTSET: 7,
    }
    assert {lvl: syslog_priority(lvl) for lvl in expected} == expected


def test_parse_level() -> None:
    assert parse_level("INFO") == logging.INFO
    assert parse_level(" warn ") == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        parse_level("loud")


def test_journal_format_prefixes_every_line() -> None:
    text = JournalFormatter().format(record("spool %s\nsecond line", "full", level=logging.ERROR))
    assert text == "<3>agent.mqtt: spool full\n<3>second line"
    assert JournalFormatter().format(record("hi", level=logging.DEBUG)) == "<7>agent.mqtt: hi"


def test_journal_wanted_matches_stream_inode() -> None:
    with tempfile.TemporaryFile("w") as f:
        st = os.fstat(f.fileno())
        assert journal_wanted({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f)
        assert not journal_wanted({"JOURNAL_STREAM": "1:2"}, f)  # stderr redirected elsewhere
        assert journal_wanted({"INVOCATION_ID": "abc"}, f)
        assert not journal_wanted({}, f)
        assert not journal_wanted({"JOURNAL_STREAM": "1:2"}, io.StringIO())


def test_setup_logging_journal(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging("debug", stream=out, env={"INVOCATION_ID": "x"})
    setup_logging("debug", stream=out, env={"INVOCATION_ID": "x"})  # idempotent: one handler
    logging.getLogger("agent.runtime").warning("broker %s unreachable", "b1")
    logging.getLogger("edge_agent.drivers.adxl345").debug("fifo=%d", 32)
    assert out.getvalue().splitlines() == [
        "<4>agent.runtime: broker b1 unreachable",
        "<7>edge_agent.drivers.adxl345: fifo=32",
    ]


def test_setup_logging_plain(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging("warning", stream=out, env={})
    logging.getLogger("agent.runtime").info("not shown")
    logging.getLogger("agent.runtime").error("spool full")
    line = out.getvalue().strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR agent\.runtime: spool full", line)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("login password=hunter22 ok", "login password=*** ok"),
        ("token = abc.def-1, next", "token = ***, next"),
        ('{"mqtt_password": "s3 cret", "user": "u"}', '{"mqtt_password": "***", "user": "u"}'),
        ("{'api_key': 'k-123'}", "{'api_key': '***'}"),
        ("connect mqtts://agent:p%40ss@broker:8883", "connect mqtts://agent:***@broker:8883"),
        ("client_secret=xyz&scope=a", "client_secret=***&scope=a"),
        ("password_file = /etc/edge-agent/mqtt.pass", "password_file = /etc/edge-agent/mqtt.pass"),
        ("mqtt://broker.plant.local:1883 up", "mqtt://broker.plant.local:1883 up"),
        ("rpm=1480 temp=71.5", "rpm=1480 temp=71.5"),
    ],
)
def test_mask_patterns(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


def test_filter_masks_registered_secret_args_and_traceback() -> None:
    f = SecretFilter()
    f.register("Tr0ub4dor&3\n")  # a password file's content, trailing newline included
    f.register("ab")  # too short to mask safely: ignored
    rec = record("auth with %s for %s", "Tr0ub4dor&3", "ab", exc=True)
    assert f.filter(rec)
    text = logging.Formatter().format(rec)
    assert "Tr0ub4dor" not in text
    assert "hunter22" not in text
    assert "auth with *** for ab" in text
    assert "password=***" in text


def test_register_secret_reaches_setup_logging(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging("info", stream=out, journal=False)
    register_secret("broker-pass-9f3")
    try:
        logging.getLogger("agent.mqtt").info("CONNACK refused for broker-pass-9f3")
    finally:
        journal._DEFAULT_FILTER.secrets = frozenset()
    assert "broker-pass-9f3" not in out.getvalue()
    assert out.getvalue().rstrip().endswith("agent.mqtt: CONNACK refused for ***")


def test_warnings_are_logged_with_a_priority(root_logger: logging.Logger) -> None:
    out = io.StringIO()
    setup_logging("info", stream=out, journal=True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("token=abcd1234 is deprecated", UserWarning, stacklevel=1)
    assert out.getvalue().startswith("<4>py.warnings: ")
    assert "abcd1234" not in out.getvalue()
