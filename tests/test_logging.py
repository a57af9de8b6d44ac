"""Log set-up: structlog lines and other libraries' records end up in one format."""

import io
import json
import logging
import warnings

import pytest
import structlog

from pain_actors.logging_setup import configure_logging


@pytest.fixture
def json_log():
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []  # basicConfig only configures a root logger without handlers
    configure_logging("json", "info", stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers, root.level = saved_handlers, saved_level
    logging.captureWarnings(False)
    structlog.reset_defaults()


def test_stdlib_record_is_json(json_log):
    logging.getLogger("thespian.test").warning("actor %s exited", "coordinator")

    [record] = json_log()
    assert record["event"] == "actor coordinator exited"
    assert record["logger"] == "thespian.test"
    assert record["level"] == "warning"
    assert "timestamp" in record


def test_stdlib_exception_is_rendered(json_log):
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logging.getLogger("aiohttp.server").exception("handler failed")

    [record] = json_log()
    assert record["level"] == "error"
    assert "ZeroDivisionError: division by zero" in record["exception"]


def test_python_warning_is_a_record(json_log):
    warnings.warn("old option", DeprecationWarning, stacklevel=1)

    [record] = json_log()
    assert record["logger"] == "py.warnings"
    assert "DeprecationWarning: old option" in record["event"]


def test_secret_keys_are_redacted(json_log):
    structlog.get_logger("test").info("login", password="hunter2", museum="museum-1")

    [record] = json_log()
    assert record["password"] == "[redacted]"
    assert record["museum"] == "museum-1"
