"""The chart page's user flow (docs/chart.md, "Deploy it with Helm") with a port-forward, run exactly as written
there: forward the Service's port 8080 to the host, then /readyz and /api/v1/analyze from the host, as a person would
with curl."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.kube_support import CONTEXT_ENV, Settings

pytestmark = pytest.mark.e2e

CHART_PAGE = Path(__file__).resolve().parents[2] / "docs" / "chart.md"
FORWARD = "kubectl -n flask-svc port-forward service/flask-svc 8080:8080"
TEXT = "the cat and the hat and the bat"


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def readme_port_forward(settings: Settings) -> Iterator[None]:
    assert FORWARD in CHART_PAGE.read_text(encoding="utf-8"), f"docs/chart.md no longer says `{FORWARD}`"
    assert (settings.namespace, settings.release) == ("flask-svc", "flask-svc"), "docs/chart.md names flask-svc"
    assert not port_answers(8080), "something already listens on 127.0.0.1:8080"
    argv = FORWARD.split()
    context = os.environ.get(CONTEXT_ENV)
    if context:
        argv += ["--context", context]
    forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_answers(8080):
            assert forward.poll() is None, f"port-forward exited: {forward.communicate()}"
            assert time.monotonic() < deadline, "port-forward did not listen on 8080 within 30 s"
            time.sleep(0.2)
        yield
    finally:
        forward.terminate()
        forward.wait(timeout=10)


@pytest.mark.timeout(120)
def test_port_forwarded_service_answers_readyz_and_analyze(readme_port_forward: None) -> None:
    ready = requests.get("http://127.0.0.1:8080/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    analyzed = requests.post(
        "http://127.0.0.1:8080/api/v1/analyze",
        data=TEXT.encode(),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert analyzed.status_code == 200, analyzed.text
    body = analyzed.json()
    assert body["tokens"] == 8 and body["top"][0] == {"word": "the", "count": 3}, body
