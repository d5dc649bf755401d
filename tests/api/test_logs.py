"""The JSON log lines: one object a line, with the request id, and no exception text."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest

from app.logs import current_request_id, logging_config


@pytest.fixture
def json_log() -> tuple[logging.Logger, io.StringIO]:
    """A logger writing through the service's own handler configuration into a buffer."""
    config = logging_config("INFO")
    handler_config = config["handlers"]["stdout"]
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(
        logging.config.DictConfigurator(config).configure_formatter(config["formatters"]["json"])
    )
    for name in handler_config["filters"]:
        handler.addFilter(config["filters"][name]["()"]())
    logger = logging.getLogger("ladderback.test.json")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, buffer


def test_a_crash_is_logged_by_its_class_with_the_request_id_and_nothing_of_its_text(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = json_log
    token = current_request_id.set("req-123")
    try:
        raise ValueError("patient Jane Doe, pain 9 at 2026-11-23")
    except ValueError:
        logger.exception("Exception in ASGI application")
    finally:
        current_request_id.reset(token)
    (line,) = buffer.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "Exception in ASGI application (ValueError)"
    assert record["request_id"] == "req-123"
    assert "Jane" not in line
    assert "Traceback" not in line
    assert "exc_info" not in record


def test_uvicorn_colour_copies_are_dropped(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = json_log
    logger.info("Started server process [%d]", 7, extra={"color_message": "\x1b[1m7\x1b[0m"})
    record = json.loads(buffer.getvalue())
    assert record["message"] == "Started server process [7]"
    assert "color_message" not in record
    assert record["request_id"] is None
