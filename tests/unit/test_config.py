"""The settings table: defaults, parsing, and one-line errors that name the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.config import VARIABLE_ACCEPTS, ConfigError, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 8080, 9797)
    assert (settings.workers, settings.threads) == (1, 4)
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert settings.debug_endpoints is False and settings.log_format == "json"


def test_values_are_parsed() -> None:
    settings = load_settings(
        {
            "PORT": " 9000 ",
            "LOG_LEVEL": "DEBUG",
            "FLASK_SVC_DEBUG_ENDPOINTS": "yes",
            "FLASK_SVC_DELAY_MAX_SECONDS": "1.5",
        }
    )
    assert settings.port == 9000 and settings.log_level == "debug"
    assert settings.debug_endpoints is True and settings.delay_max_seconds == 1.5


def test_empty_means_default() -> None:
    assert load_settings({"PORT": ""}).port == 8080


@pytest.mark.parametrize("variable", [env for env, accepts in VARIABLE_ACCEPTS.items() if accepts != "text"])
def test_every_checked_variable_reports_itself(variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: "\x00not valid\x00"})
    message = str(error.value)
    assert message.startswith(f"{variable}=") and "expected" in message and "\n" not in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "eighty", "an integer port from 1 to 65535"),
        ("PORT", "70000", "an integer port from 1 to 65535"),
        ("METRICS_PORT", "0", "an integer port from 1 to 65535"),
        ("WEB_CONCURRENCY", "0", "an integer from 1 to 64"),
        ("GUNICORN_THREADS", "many", "an integer from 1 to 256"),
        ("GUNICORN_GRACEFUL_TIMEOUT", "1.5", "an integer number of seconds from 1 to 3600"),
        ("LOG_LEVEL", "verbose", "one of debug, info, warning, error, critical"),
        ("LOG_FORMAT", "xml", "one of json, console"),
        ("FLASK_SVC_MAX_UPLOAD_BYTES", "10MB", "an integer number of bytes from 1 to 1073741824"),
        ("FLASK_SVC_DEBUG_ENDPOINTS", "sure", "true or false"),
        ("FLASK_SVC_DELAY_MAX_SECONDS", "nan", "a number of seconds from 0 to 600"),
        ("FLASK_SVC_READ_TIMEOUT_SECONDS", "0", "a number of seconds from 0.1 to 600"),
        ("FLASK_SVC_HEADER_TIMEOUT_SECONDS", "5s", "a number of seconds from 0.1 to 600"),
        ("FLASK_SVC_LIVENESS_STALL_SECONDS", "inf", "a number of seconds from 1 to 3600"),
        ("PROMETHEUS_MULTIPROC_DIR", "relative/dir", "an absolute directory path"),
        ("HOST", "not a host!", "an IP address or host name"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "one of otlp, console, none"),
    ],
)
def test_the_message_names_the_variable_its_value_and_what_it_accepts(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: value})
    assert str(error.value) == f"{variable}={value!r} is invalid: expected {expected}"


def test_process_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUNICORN_THREADS", " 7 ")
    monkeypatch.setenv("LOG_FORMAT", "CONSOLE")
    monkeypatch.setenv("POD_NAME", "pod-1")
    settings = load_settings()
    assert (settings.threads, settings.log_format, settings.pod_name) == (7, "console", "pod-1")
    monkeypatch.setenv("GUNICORN_THREADS", "0")
    with pytest.raises(ConfigError, match=r"^GUNICORN_THREADS='0' is invalid: expected an integer from 1 to 256$"):
        load_settings()


def test_reading_the_settings_imports_no_settings_framework() -> None:
    """Every process start reads the settings: pydantic-settings (sources, dotenv) stays off that path."""
    code = "import sys, service.config as c; c.load_settings(); print('pydantic_settings' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "Console,otlp"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, None),
    ],
)
def test_exporter_selection(env: dict[str, str], expected: str | None) -> None:
    assert load_settings(env).traces_exporter == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1:8080"), ("::1", "[::1]:8080"), ("fd00::5", "[fd00::5]:8080"), ("svc.ns", "svc.ns:8080")],
)
def test_an_address_brackets_ipv6_literals_only(host: str, expected: str) -> None:
    from service.config import address

    assert address(host, 8080) == expected
