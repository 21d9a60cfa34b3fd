"""service.logs in process: the factory routes the app's loggers to one stdout handler in the configured format,
whoever runs it (gunicorn, `flask run`, a test), and records made inside a request carry its id."""

from __future__ import annotations

import json
import logging
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
