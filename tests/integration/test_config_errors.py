"""Bad configuration stops the process before it binds, with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.net import free_port
from harness.server import ROOT


# One case per kind of check; every variable's message is proven in tests/unit/test_config.py without a process.
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "eighty", "an integer port from 1 to 65535"),
        ("LOG_LEVEL", "verbose", "one of debug, info, warning, error, critical"),
        ("FLASK_SVC_DEBUG_ENDPOINTS", "sure", "true or false"),
        ("HOST", "not a host!", "an IP address or host name"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "one of otlp, console, none"),
        ("FLASK_SVC_MODEL_PATH", "models/iris.skops", "an absolute file path"),
        ("FLASK_SVC_MODEL_NAME", "iris model", "letters, digits"),
        ("FLASK_SVC_MODEL_ALLOW_PICKLE", "maybe", "true or false"),
        ("FLASK_SVC_MODEL_TRUSTED_TYPES", "Halver", "comma-separated dotted type names"),
        ("FLASK_SVC_MODEL_MAX_INSTANCES", "0", "an integer from 1 to 100000"),
    ],
)
def test_bad_variable_exits_before_binding(variable: str, value: str, expected: str) -> None:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": str(free_port()), variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines  # one line, no traceback
    assert variable in lines[0] and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_ipv6_loopback_binds() -> None:
    import requests

    from harness.net import process_gone, wait_until_ready
    from harness.server import running_server

    with running_server({"HOST": "::1"}, ready=False) as server:
        wait_until_ready(server.port, host="::1", gone=process_gone(server.process))
        assert requests.get(f"http://[::1]:{server.port}/livez", timeout=5).ok


@pytest.mark.parametrize("variable", ["PROMETHEUS_MULTIPROC_DIR", "FLASK_SVC_BATCH_DATA_DIR"])
def test_a_planted_directory_stops_start_and_is_left_alone(variable: str, tmp_path: Path) -> None:
    # A symbolic link planted where the service keeps its files: start-up would have emptied (metrics) or written
    # into (batch) the directory it points to.
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("not yours")
    (tmp_path / "planted").symlink_to(precious)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path / "batch"),
        variable: str(tmp_path / "planted"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "service"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"flask-svc: configuration error: {variable}: ") and "symbolic link" in lines[0]
    assert sorted(p.name for p in precious.iterdir()) == ["keep.txt"]
