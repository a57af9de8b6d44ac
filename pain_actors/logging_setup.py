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


def _common_processors() -> list:
    """Return the steps that structlog's own events and other libraries' records share."""
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
        structlog.processors.format_exc_info,
    ]


def _renderer(format: str, stream):
    use_json = format == "json" or (format == "auto" and not stream.isatty())
    return structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)


def stdlib_formatter(format: str = "auto", stream=None) -> logging.Formatter:
    """Build a formatter that renders other libraries' records (Thespian, aiohttp) as structlog lines.

    `format` is `logging.format` of the configuration. Thespian's log process builds one through
    its logging definitions, so its lines match the actors' own.
    """
    return structlog.stdlib.ProcessorFormatter(
        processor=_renderer(format, stream or sys.stderr),
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_common_processors()],
    )


def configure_logging(format: str = "auto", level: str = "info", stream=None) -> None:
    """Configure structlog and the standard logging module for this process."""
    stream = stream or sys.stderr
    renderer = _renderer(format, stream)

    numeric_level = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *_common_processors(), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(stdlib_formatter(format, stream))
    logging.basicConfig(level=numeric_level, handlers=[handler])
    # Python's warnings (deprecations in a library, say) would otherwise go to stderr as bare text.
    logging.captureWarnings(True)
    # basicConfig leaves the level alone where a handler exists already, as in an actor process
    # forked from a Thespian admin that set up its own logging.
    logging.getLogger().setLevel(numeric_level)
    # faiss reports at INFO which of its CPU builds it tried; that is noise in service logs.
    logging.getLogger("faiss.loader").setLevel(max(numeric_level, logging.WARNING))
