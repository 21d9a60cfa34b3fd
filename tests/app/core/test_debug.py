"""The debug endpoints in process: only with FLASK_SVC_DEBUG_ENDPOINTS=true, each doing what it says."""

from __future__ import annotations

import os

import pytest
from flask.testing import FlaskClient

from service.names import READYZ
from service.problems import PROBLEM_JSON

DEBUG_ROUTES = [
    ("POST", "/readyz/disable"),
    ("GET", "/status/500"),
    ("GET", "/delay/1"),
    ("POST", "/fault/enable"),
    ("GET", "/burn?ms=1"),
    ("POST", "/echo"),
    ("GET", "/headers"),
    ("GET", "/env"),
    ("GET", "/panic"),
]


@pytest.mark.parametrize(("method", "path"), DEBUG_ROUTES)
def test_absent_by_default(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    assert response.status_code in (404, 405) and response.mimetype == PROBLEM_JSON
    assert client.get(READYZ).status_code == 200


def test_readiness_switch(debug_client: FlaskClient) -> None:
    assert debug_client.post("/readyz/disable").status_code == 200
    response = debug_client.get(READYZ)
    assert response.status_code == 503 and response.get_json()["status"] == "disabled"
    assert debug_client.get("/livez").status_code == 200  # liveness never follows readiness
    debug_client.post("/readyz/enable")
    assert debug_client.get(READYZ).status_code == 200


def test_status_codes(debug_client: FlaskClient) -> None:
    assert debug_client.get("/status/201").status_code == 201
    failed = debug_client.post("/status/503")
    assert failed.status_code == 503 and failed.mimetype == PROBLEM_JSON
    assert debug_client.get("/status/99").status_code == 422


def test_delay_is_capped_and_validated(debug_client: FlaskClient) -> None:
    assert debug_client.get("/delay/0.01").get_json() == {"delayed_seconds": 0.01, "capped": False}
    for bad in ("abc", "-1", "inf"):
        assert debug_client.get(f"/delay/{bad}").status_code == 422


def test_delay_and_burn_caps_come_from_the_settings() -> None:
    from tests.app.conftest import make_app

    client = make_app(
        FLASK_SVC_DEBUG_ENDPOINTS="true", FLASK_SVC_DELAY_MAX_SECONDS="0", FLASK_SVC_BURN_MAX_MS="1"
    ).test_client()
    assert client.get("/delay/5").get_json() == {"delayed_seconds": 0, "capped": True}
    burn = client.get("/burn?ms=5000").get_json()
    assert burn["burned_ms"] == 1 and burn["capped"]


def test_fault_injection_spares_probes_and_its_own_switch(debug_client: FlaskClient) -> None:
    debug_client.post("/fault/enable")
    response = debug_client.get("/version")
    assert response.status_code == 500 and response.get_json(force=True)["code"] == "fault_injected"
    assert debug_client.get(READYZ).status_code == 200
    assert debug_client.post("/fault/disable").status_code == 200
    assert debug_client.get("/version").status_code == 200


def test_burn_echo_and_headers(debug_client: FlaskClient) -> None:
    burn = debug_client.get("/burn?ms=20").get_json()
    assert burn["burned_ms"] == 20 and burn["iterations"] > 0
    echo = debug_client.put("/echo", data=b"ping", content_type="text/x-test")
    assert echo.data == b"ping" and echo.headers["Content-Type"] == "text/x-test"
    assert "sandbox" in echo.headers["Content-Security-Policy"] and echo.headers["X-Content-Type-Options"] == "nosniff"
    assert debug_client.get("/headers", headers={"X-Probe": "yes"}).get_json()["X-Probe"] == "yes"


def test_panic_is_a_500_problem_without_the_traceback(debug_client: FlaskClient) -> None:
    response = debug_client.get("/panic")
    assert response.status_code == 500 and response.mimetype == PROBLEM_JSON
    body = response.get_json(force=True)
    assert body["code"] == "internal_error" and "panic requested" not in response.text


def test_env_shows_every_name_but_only_allow_listed_values(
    debug_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets do not always look like secrets: a webhook URL, a DSN, a key under a plain name.
    monkeypatch.setenv("SLACK_WEBHOOK", "https://hooks.slack.com/services/T0/B0/s3cr3tpath")
    monkeypatch.setenv("DATABASE_URL", "postgres://app:hunter2@127.0.0.1/db")
    monkeypatch.setenv("API_TOKEN", "t0ps3cret")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Basic abc")
    body = debug_client.get("/env").get_json()
    for name in ("SLACK_WEBHOOK", "DATABASE_URL", "API_TOKEN", "OTEL_EXPORTER_OTLP_HEADERS"):
        assert body[name] == "[redacted]", name  # the name is listed, its value is not
    assert body["LOG_LEVEL"] == "debug"  # the service's own settings are shown
    assert body["PATH"] == os.environ["PATH"]
