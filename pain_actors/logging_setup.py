"""structlog set-up: readable lines on a terminal, JSON lines for log collectors."""

from __future__ import annotations

import logging
import sys

import structlog

SECRET_KEYS = ("token", "password", "secret", "authorization", "cookie")


def _redact_secrets(_logger, _method, event_dict: dict) -> dict:
    """Replace the values of keys that name a secret (token, password, cookie...) with a marker."""
    for key in list(event_dict):
        if any(word in key.lower() for word in SECRET_KEYS):
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(format: str = "auto", level: str = "info", stream=None) -> None:
    """Configure structlog and the standard logging module for this process."""
    stream = stream or sys.stderr
    use_json = format == "json" or (format == "auto" and not stream.isatty())
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)

    numeric_level = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric_level, stream=stream, format="%(levelname)s %(name)s %(message)s")
    # basicConfig leaves the level alone where a handler exists already, as in an actor process
    # forked from a Thespian admin that set up its own logging.
    logging.getLogger().setLevel(numeric_level)
    # faiss reports at INFO which of its CPU builds it tried; that is noise in service logs.
    logging.getLogger("faiss.loader").setLevel(max(numeric_level, logging.WARNING))
