"""The debug endpoints, on only with FLASK_SVC_DEBUG_ENDPOINTS=true."""

from __future__ import annotations

import requests

from tests.support.server import Server


def test_readiness_switch(debug_server: Server) -> None:
    url = debug_server.url
    assert requests.post(url + "/readyz/disable", timeout=5).status_code == 200
    response = requests.get(url + "/readyz", timeout=5)
    assert response.status_code == 503 and response.json()["status"] == "disabled"
    assert requests.get(url + "/livez", timeout=5).status_code == 200  # liveness never follows readiness
    requests.post(url + "/readyz/enable", timeout=5)
    assert requests.get(url + "/readyz", timeout=5).status_code == 200


def test_status_codes(debug_server: Server) -> None:
    assert requests.get(debug_server.url + "/status/201", timeout=5).status_code == 201
    failed = requests.post(debug_server.url + "/status/503", timeout=5)
    assert failed.status_code == 503 and failed.headers["Content-Type"] == "application/problem+json"
    assert requests.get(debug_server.url + "/status/99", timeout=5).status_code == 422


def test_delay_is_capped_and_validated(debug_server: Server) -> None:
    body = requests.get(debug_server.url + "/delay/0.05", timeout=5).json()
    assert body == {"delayed_seconds": 0.05, "capped": False}
    assert requests.get(debug_server.url + "/delay/abc", timeout=5).status_code == 422
    assert requests.get(debug_server.url + "/delay/-1", timeout=5).status_code == 422


def test_fault_injection_spares_probes(debug_server: Server) -> None:
    url = debug_server.url
    requests.post(url + "/fault/enable", timeout=5)
    try:
        response = requests.get(url + "/version", timeout=5)
        assert response.status_code == 500 and response.json()["code"] == "fault_injected"
        assert requests.get(url + "/readyz", timeout=5).status_code == 200
    finally:
        requests.post(url + "/fault/disable", timeout=5)
    assert requests.get(url + "/version", timeout=5).status_code == 200


def test_burn_and_echo_and_headers(debug_server: Server) -> None:
    burn = requests.get(debug_server.url + "/burn?ms=20", timeout=5).json()
    assert burn["burned_ms"] == 20 and burn["iterations"] > 0
    echo = requests.put(debug_server.url + "/echo", data=b"ping", headers={"Content-Type": "text/x-test"}, timeout=5)
    assert echo.content == b"ping" and echo.headers["Content-Type"] == "text/x-test"
    headers = requests.get(debug_server.url + "/headers", headers={"X-Probe": "yes"}, timeout=5).json()
    assert headers["X-Probe"] == "yes"


def test_env_redacts_secrets() -> None:
    from tests.support.server import running_server

    env = {
        "FLASK_SVC_DEBUG_ENDPOINTS": "true",
        "API_TOKEN": "t0ps3cret",
        "DATABASE_URL": "postgres://app:hunter2@127.0.0.1/db",
        "PLAIN_SETTING": "visible",
    }
    with running_server(env) as srv:
        body = requests.get(srv.url + "/env", timeout=5).json()
    assert body["API_TOKEN"] == "[redacted]"
    assert "hunter2" not in body["DATABASE_URL"] and body["DATABASE_URL"].startswith("postgres://app:")
    assert body["PLAIN_SETTING"] == "visible"
