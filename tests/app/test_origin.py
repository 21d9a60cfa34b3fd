"""Cross-site requests: a state-changing request a browser sent from another page's origin is refused (403) before
it does anything; requests without an Origin (curl, API clients, the stages' callbacks) and the page's own forms
pass. Any web page could otherwise start a batch job (a text/plain POST needs no CORS preflight) or flip the debug
switches of a developer's `make run`."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.names import JOBS_PATH, LIFECYCLE_EXTENSION, READYZ
from tests.app.analysis.test_views import assert_problem
from tests.app.conftest import make_app

FOREIGN = ("http://evil.example", "null", "http://localhost.evil.example", "http://localhost:8081", "not a url")


@pytest.fixture(scope="module")
def debug_batch_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    return make_app(
        FLASK_SVC_DEBUG_ENDPOINTS="true",
        FLASK_SVC_BATCH_DATA_DIR=str(tmp_path_factory.mktemp("origin-batch")),
        FLASK_SVC_BATCH_CALLBACK_URL="http://127.0.0.1:9",
    )


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_job_posted_from_another_origin_is_refused_and_nothing_starts(debug_batch_app: Flask, origin: str) -> None:
    client = debug_batch_app.test_client()
    response = client.post(JOBS_PATH, data=b"hello", content_type="text/plain", headers={"Origin": origin})
    assert_problem(response, 403, "cross_origin")
    assert client.get(JOBS_PATH).get_json()["jobs"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/readyz/disable"), ("POST", "/fault/enable"), ("POST", "/ui/readiness"), ("POST", "/ui/fault")],
)
def test_debug_switches_cannot_be_flipped_from_another_origin(debug_batch_app: Flask, method: str, path: str) -> None:
    client = debug_batch_app.test_client()
    state = debug_batch_app.extensions[LIFECYCLE_EXTENSION]
    form = {"ready": "off", "fault": "on"}
    response = client.open(path, method=method, data=form, headers={"Origin": "http://evil.example"})
    assert_problem(response, 403, "cross_origin")
    assert not state.manually_unready and not state.fault
    assert client.get(READYZ).status_code == 200


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_every_state_changing_method_is_checked(debug_batch_app: Flask, method: str) -> None:
    response = debug_batch_app.test_client().open("/echo", method=method, headers={"Origin": "http://evil.example"})
    assert_problem(response, 403, "cross_origin")


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://localhost", "localhost"),
        ("http://LOCALHOST:80", "localhost"),
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("https://svc.example", "svc.example"),  # TLS ends in front of the service: it sees http
        ("https://svc.example:8443", "svc.example:8443"),
        ("http://[::1]:8080", "[::1]:8080"),
    ],
)
def test_the_own_origin_and_no_origin_pass(debug_batch_app: Flask, origin: str, host: str) -> None:
    client = debug_batch_app.test_client()
    headers = {"Origin": origin, "Host": host}
    assert client.post("/echo", data=b"x", headers=headers).status_code == 200
    assert (
        client.post("/", data={"text": "a b a"}, headers=headers, content_type="multipart/form-data").status_code == 200
    )  # the page's form
    assert client.post("/echo", data=b"x").status_code == 200  # curl sends no Origin
    assert client.get("/headers", headers={"Origin": "http://evil.example"}).status_code == 200  # reads: not checked


def test_the_page_form_from_another_origin_is_refused(client: FlaskClient) -> None:
    form = {"text": "a b a"}
    response = client.post(
        "/", data=form, headers={"Origin": "http://evil.example"}, content_type="multipart/form-data"
    )
    assert response.status_code == 403
