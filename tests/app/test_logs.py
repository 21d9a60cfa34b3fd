"""service.logs in process: the factory routes the app's loggers to one stdout handler in the configured format,
whoever runs it (gunicorn, `flask run`, a test), and records made inside a request carry its id."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from service.logs import ServiceHandler
from tests.app.conftest import make_app


@pytest.fixture(autouse=True)
def _fresh_root() -> Iterator[None]:
    """Each test starts without the service's handler (an earlier one holds an earlier test's stdout) and leaves
    the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers[:] = [h for h in handlers if not isinstance(h, ServiceHandler)]
    yield
    root.handlers[:], root.level = handlers, level


def _service_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if isinstance(h, ServiceHandler)]


def test_app_records_are_json_lines_with_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(LOG_LEVEL="info")

    def _log() -> str:
        app.logger.warning("inside %s", "a request", extra={"route": "/log"})
        return "ok"

    app.add_url_rule("/log", view_func=_log)
    capsys.readouterr()
    app.test_client().get("/log", headers={"X-Request-ID": "log-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [record for record in lines if record["message"] == "inside a request"]
    assert line["level"] == "warning" and line["logger"] == "service.app" and line["request_id"] == "log-1"
    assert line["route"] == "/log" and line["timestamp"].endswith("Z") and "trace_id" not in line


def test_one_handler_whatever_the_number_of_apps_and_the_format_follows_the_settings() -> None:
    make_app()
    make_app()
    assert len(_service_handlers()) == 1
    make_app(LOG_FORMAT="console", LOG_LEVEL="warning")
    (handler,) = _service_handlers()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "plain %s", ("words",), None)
    assert handler.format(record).endswith("WARNING x: plain words")
    assert logging.getLogger().level == logging.WARNING


def test_handlers_others_installed_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    make_app()
    assert caplog.handler in logging.getLogger().handlers


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%s %s", ("GET", "/x"), None)
    record.created = 1_764_500_000.123  # the same instant for every record compared
    record.__dict__.update(extra)
    return record


def test_a_plain_record_is_formatted_exactly_as_python_json_logger_formats_it() -> None:
    make_app(LOG_LEVEL="info")
    (handler,) = _service_handlers()
    formatter = handler.formatter
    assert formatter is not None
    fields = {"route": "/x", "request_id": "r-1", "trace_id": None, "span_id": None, "status": 200, "bytes": None}
    fast = formatter.format(_record(**fields))
    # The library's own path, for the same record: the reference the one-pass path must match byte for byte.
    library = super(type(formatter), formatter).format(_record(**fields))
    assert fast == library
    line = json.loads(fast)
    assert list(line)[:4] == ["timestamp", "level", "logger", "message"]
    assert line["message"] == "GET /x" and line["bytes"] is None and "trace_id" not in line


def test_records_with_an_exception_or_a_dict_message_still_take_the_librarys_path() -> None:
    make_app(LOG_LEVEL="info")
    (handler,) = _service_handlers()
    assert handler.formatter is not None
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(handler.formatter.format(record))
    assert line["message"] == "failed" and "ValueError: boom" in line["exc_info"]
    as_dict = logging.LogRecord("x", logging.INFO, __file__, 1, {"event": "started", "port": 8080}, None, None)
    assert json.loads(handler.formatter.format(as_dict))["port"] == 8080
