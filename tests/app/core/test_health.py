"""Probes in process: readiness and startup through Flask, liveness through the shortcut in front of it."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.testing import FlaskClient

from service.names import LIFECYCLE_EXTENSION, LIVENESS_PATHS, READYZ, STARTUPZ
from service.problems import PROBLEM_JSON
from tests.app.conftest import make_app


def test_liveness_answers_get_and_head_and_refuses_the_rest(client: FlaskClient) -> None:
    for path in LIVENESS_PATHS:
        response = client.get(path)
        assert response.status_code == 200 and response.get_json() == {"status": "ok"}
        head = client.head(path)
        assert head.status_code == 200 and head.data == b""
        refused = client.post(path)
        assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"
        assert refused.mimetype == PROBLEM_JSON and refused.get_json(force=True)["code"] == "method_not_allowed"


def test_ready_and_started_once_built(client: FlaskClient) -> None:
    assert client.get(READYZ).get_json() == {"status": "ok"}
    assert client.get(STARTUPZ).status_code == 200


def test_readiness_follows_the_lifecycle() -> None:
    app = make_app()
    client = app.test_client()
    state = app.extensions[LIFECYCLE_EXTENSION]
    state.begin_drain()
    response = client.get(READYZ)
    assert response.status_code == 503
    assert response.get_json() == {"status": "draining", "reason": "shutdown in progress"}
    assert client.get(STARTUPZ).status_code == 200  # started stays started
    assert client.get(LIVENESS_PATHS[0]).status_code == 200  # liveness never follows readiness


def test_not_started_is_503_on_both(app: Flask) -> None:
    state = app.extensions[LIFECYCLE_EXTENSION]
    state.started = False
    try:
        client = app.test_client()
        for path in (READYZ, STARTUPZ):
            response = client.get(path)
            assert response.status_code == 503 and response.get_json()["status"] == "starting"
    finally:
        state.started = True


def test_liveness_is_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in LIVENESS_PATHS:
        assert set(paths[path]) == {"get"} and paths[path]["get"]["tags"] == ["health"]


def test_readiness_documents_are_what_jsonify_writes_for_each_state() -> None:
    app = make_app()
    client = app.test_client()
    state = app.extensions[LIFECYCLE_EXTENSION]
    for change in (lambda: None, state.begin_drain):
        change()
        ready, status, reason = state.readiness()
        response = client.get(READYZ)
        with app.app_context():
            expected = jsonify({"status": status, **({"reason": reason} if reason else {})})
        assert response.data == expected.data and response.mimetype == expected.mimetype
        assert response.status_code == (200 if ready else 503)
