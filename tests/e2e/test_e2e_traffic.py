"""Traffic to one pod through the client's portforward support: app port and metrics port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.kube_support import APP_PORT, METRICS_PORT, TcpRelay, pod_port_relay

pytestmark = pytest.mark.e2e

TEXT = "the quick brown fox jumps over the lazy dog and the dog sleeps"


@pytest.fixture
def app_relay(ready_pod: Any) -> Iterator[TcpRelay]:
    with pod_port_relay(ready_pod.metadata.namespace, ready_pod.metadata.name, APP_PORT) as relay:
        yield relay
    assert not relay.errors, relay.errors


@pytest.fixture
def metrics_relay(ready_pod: Any) -> Iterator[TcpRelay]:
    with pod_port_relay(ready_pod.metadata.namespace, ready_pod.metadata.name, METRICS_PORT) as relay:
        yield relay
    assert not relay.errors, relay.errors


def test_readyz(app_relay: TcpRelay) -> None:
    response = requests.get(f"{app_relay.url}/readyz", timeout=10)
    assert response.status_code == 200, response.text


def test_analyze(app_relay: TcpRelay) -> None:
    response = requests.post(
        f"{app_relay.url}/api/v1/analyze",
        data=TEXT.encode(),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and body, body


def test_metrics_port_counts_the_traffic(app_relay: TcpRelay, metrics_relay: TcpRelay) -> None:
    for _ in range(3):
        requests.post(
            f"{app_relay.url}/api/v1/analyze", data=TEXT.encode(), headers={"Content-Type": "text/plain"}, timeout=10
        ).raise_for_status()
    response = requests.get(f"{metrics_relay.url}/metrics", timeout=10)
    assert response.status_code == 200
    text = response.text
    assert "flask_svc_build_info{" in text
    posts = [
        line
        for line in text.splitlines()
        if line.startswith("flask_http_request_total{") and 'method="POST"' in line and 'status="200"' in line
    ]
    assert posts and float(posts[0].rsplit(" ", 1)[1]) >= 3, posts
    assert "flask_svc_analyzed_bytes_total" in text
