"""The access line, written without a LogRecord (``GunicornLogger.access`` with JSON logs), is the line the logging
path writes for the same request: the same fields, values and order, request and trace ids included."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from gunicorn.config import Config
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from service.config import load_settings
from service.logs import REQUEST_ID, GunicornLogger, gunicorn_logger
from service.names import ACCESS_ENVIRON_KEY, ANALYZE_PATH, LIVEZ

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


class _Response:
    def __init__(self, status: int, sent: int | None) -> None:
        self.status_code, self.sent = status, sent


@pytest.fixture
def access_logger() -> Iterator[tuple[GunicornLogger, io.StringIO]]:
    logger: GunicornLogger = gunicorn_logger(load_settings({"LOG_FORMAT": "json", "LOG_LEVEL": "debug"}))(Config())
    assert logger.json_handler is not None
    out = io.StringIO()
    previous = logger.json_handler.setStream(out)
    try:
        yield logger, out
    finally:
        logger.json_handler.setStream(previous)


def _both(logger: GunicornLogger, out: io.StringIO, environ: dict[str, Any], status: int = 200) -> list[Any]:
    """The line written straight, then the line written through a LogRecord (the handler set aside)."""
    lines = []
    for straight in (True, False):
        handler = logger.json_handler
        if not straight:
            logger.json_handler = None
        try:
            logger.access(_Response(status, 42), None, environ, timedelta(microseconds=1500))
        finally:
            logger.json_handler = handler
        line = json.loads(out.getvalue().splitlines()[-1])
        lines.append(list(line.items())[1:])  # all but the timestamp, which is taken at the moment
        assert line["timestamp"].endswith("Z")
    return lines


REQUEST = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": ANALYZE_PATH,
    "QUERY_STRING": "top=3",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_USER_AGENT": "curl/8",
}


@pytest.mark.parametrize(
    "environ",
    [
        {**REQUEST, ACCESS_ENVIRON_KEY: {"route": ANALYZE_PATH, "request_id": "r-1", "trace_id": None}},
        {
            **REQUEST,
            ACCESS_ENVIRON_KEY: {"route": ANALYZE_PATH, "request_id": "r-2", "trace_id": "ab", "span_id": "cd"},
        },
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/nowhere", "REMOTE_ADDR": "::1"},  # refused before the app
        {"REQUEST_METHOD": "GET", "PATH_INFO": LIVEZ},  # a probe: debug
    ],
)
def test_the_line_written_straight_is_the_records_line(
    access_logger: tuple[GunicornLogger, io.StringIO], environ: dict[str, Any]
) -> None:
    straight, through_a_record = _both(*access_logger, environ)
    assert straight == through_a_record
    assert ("logger", "gunicorn.access") in straight and ("duration_ms", 1.5) in straight


def test_ids_from_the_context_land_where_the_context_filter_puts_them(
    access_logger: tuple[GunicornLogger, io.StringIO],
) -> None:
    token = REQUEST_ID.set("from-context")
    context = SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    try:
        with trace.use_span(NonRecordingSpan(context)):
            straight, through_a_record = _both(*access_logger, dict(REQUEST), status=413)
    finally:
        REQUEST_ID.reset(token)
    assert straight == through_a_record
    assert straight[-3:] == [
        ("request_id", "from-context"),
        ("trace_id", f"{TRACE_ID:032x}"),
        ("span_id", f"{SPAN_ID:016x}"),
    ]


def test_console_lines_still_go_through_logging(caplog: pytest.LogCaptureFixture) -> None:
    logger = gunicorn_logger(load_settings({"LOG_FORMAT": "console"}))(Config())
    assert logger.json_handler is None
    logger.access_log.addHandler(caplog.handler)
    try:
        logger.access(_Response(200, 1), None, dict(REQUEST), timedelta(milliseconds=2))
    finally:
        logger.access_log.removeHandler(caplog.handler)
    (record,) = [r for r in caplog.records if r.name == "gunicorn.access"]
    assert record.getMessage() == f"POST {ANALYZE_PATH} 200"
    assert logging.getLevelName(record.levelno) == "INFO"
