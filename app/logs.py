"""Structured logs: one JSON object a line on stdout, each carrying the request's id.

The same configuration serves uvicorn's own loggers (``ladderback serve`` hands it to
uvicorn, so start-up and worker messages are JSON too) and the app's. Log records never
carry health data or keys: messages name classes, routes and counts, not values, and an
exception is logged by its class alone, without its message or traceback.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar
from typing import Any

__all__ = ["RequestIdFilter", "configure_logging", "current_request_id", "logging_config"]

# Set by the request middleware; tasks and thread-pool calls of the request inherit it.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request it was logged in (or null); drop
    fields meant for terminals, and exceptions' messages and tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        # uvicorn adds a copy of each message with terminal colour codes: noise in JSON.
        record.__dict__.pop("color_message", None)
        if record.exc_info and record.exc_info[0] is not None:
            # An exception's message and traceback can quote request data (a database
            # error quotes its statement's parameters): keep the class only.
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for JSON lines at ``level``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": True,
            }
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # uvicorn's messages go to the root handler; its access log is replaced by ours
            # (``ladderback.access``), which names the route, not the path with its ids.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def configure_logging(level: str) -> None:
    """JSON logging, unless the host process (a test runner, say) has set logging up."""
    if logging.getLogger().handlers:
        return
    logging.config.dictConfig(logging_config(level))
