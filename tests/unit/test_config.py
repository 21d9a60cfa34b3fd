"""The settings table: defaults, parsing, and one-line errors that name the variable."""

from __future__ import annotations

import pytest

from service.config import VARIABLES, ConfigError, load_settings


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


@pytest.mark.parametrize("variable", [v.env for v in VARIABLES if v.accepts != "text"])
def test_every_checked_variable_reports_itself(variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: "\x00not valid\x00"})
    message = str(error.value)
    assert message.startswith(f"{variable}=") and "expected" in message and "\n" not in message


def test_every_variable_is_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [v.env for v in VARIABLES if f"`{v.env}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
