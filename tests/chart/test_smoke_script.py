"""The `helm test` script (charts/flask-svc/files/tests/smoke.py) against the real service, started with the
environment the chart renders — so the chart's settings are ones the service accepts — and against a broken one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from harness.server import running_server
from tests.chart.conftest import CHART, RELEASE, Helm, one

SCRIPT = CHART / "files" / "tests" / "smoke.py"
# Chart settings that only make sense in a pod; the test server needs loopback, free ports and its own temp dir.
POD_ONLY = {"HOST", "PORT", "METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR"}


def run_smoke(check: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT)],
        env={"SMOKE_CHECK": check, "SMOKE_URL": url, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def chart_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = one(docs, "ConfigMap", RELEASE)["data"]
    return {k: v for k, v in data.items() if k not in POD_ONLY}


@pytest.mark.parametrize("scenario", ["default", "keda"])
def test_smoke_passes_against_the_service_configured_by_the_chart(chart: Helm, scenario: str) -> None:
    env = chart_env(chart.scenario(scenario))
    if "OTEL_EXPORTER_OTLP_ENDPOINT" in env:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens; export failures must not matter
    with running_server(env) as server:
        for check, url in (("api", server.url), ("metrics", f"http://127.0.0.1:{server.metrics_port}")):
            result = run_smoke(check, url)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "ok  " in result.stdout


class _Broken(BaseHTTPRequestHandler):
    """Healthy probes, but an analyzer that miscounts."""

    def do_GET(self) -> None:
        self._reply(b'{"version": "0.1.0"}' if self.path == "/version" else b"ok")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(b'{"bytes": 1, "tokens": 0, "unique": 0, "top": []}')

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def broken_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_smoke_fails_on_a_wrong_answer() -> None:
    with broken_server() as url:
        result = run_smoke("api", url)
    assert result.returncode == 1
    assert "FAIL api" in result.stderr and "bytes" in result.stderr


def test_smoke_fails_on_metrics_without_the_service_metrics() -> None:
    with broken_server() as url:
        result = run_smoke("metrics", url)
    assert result.returncode == 1
    assert "FAIL metrics" in result.stderr


def test_smoke_gives_up_when_nothing_listens() -> None:
    # Retries without the one-second pauses: time.sleep is stubbed before the script runs.
    stub = f"import runpy, time; time.sleep = lambda s: None; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
    result = subprocess.run(
        [sys.executable, "-c", stub],
        env={"SMOKE_CHECK": "api", "SMOKE_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "no answer after" in result.stderr
