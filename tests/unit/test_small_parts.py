"""Small pure pieces: secret redaction, exporter selection, log formatting, problem documents."""

from __future__ import annotations

import json
import logging

import pytest

from service.config import load_settings
from service.core.debug import REDACTED, redact
from service.logs import make_handler, rfc3339


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AWS_SECRET_ACCESS_KEY", "abc", REDACTED),
        ("GITHUB_TOKEN", "abc", REDACTED),
        ("DB_PASSWORD", "abc", REDACTED),
        ("DATABASE_URL", "postgres://u:pw@h/db", REDACTED),  # not on the allow-list
        ("SLACK_WEBHOOK", "https://hooks.example/T0/s3cr3t", REDACTED),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Basic abc", REDACTED),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://u:pw@collector:4318", f"https://u:{REDACTED}@collector:4318"),
        ("HOME", "/root", "/root"),
        ("LOG_LEVEL", "info", "info"),
    ],
)
def test_redact(name: str, value: str, expected: str) -> None:
    assert redact(name, value) == expected


def test_json_log_line_shape(capsys: pytest.CaptureFixture[str]) -> None:
    handler = make_handler(load_settings({}))
    logger = logging.getLogger("flask-svc-test-json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning("hello %s", "there", extra={"route": "/x"})
    line = json.loads(capsys.readouterr().out)
    assert line["message"] == "hello there" and line["level"] == "warning" and line["route"] == "/x"
    assert line["logger"] == "flask-svc-test-json" and line["timestamp"].endswith("Z")
    assert "trace_id" not in line  # absent outside a span, rather than null


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
