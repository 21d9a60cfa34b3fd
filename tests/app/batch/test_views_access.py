"""Who may use the batch API, in process: token mode (static tokens from a file) stands for any authority, since the
handlers see only a gate's answers; the kubernetes gate against the live API server is in
tests/e2e/test_e2e_batch_access.py, and here against one that is not there (503, never allowed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kubernetes import client

from service.batch.access_kube import KubeReviews, KubernetesGate
from service.batch.web.views import BATCH_ACCESS_EXTENSION, BATCH_EXTENSION, BATCH_RECONCILER_EXTENSION
from service.names import JOBS_PATH
from tests.app.analysis.test_views import assert_problem
from tests.app.conftest import make_app
from tests.unit.batch.test_kube_runner import closed_port, refusing_api  # noqa: F401 — a fixture

TOKENS = {"alice": "alice-secret-token", "bob": "bob-secret-token", "root": "root-secret-token"}
TEXT = b"the cat and the hat " * 50


def _auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


@pytest.fixture(scope="module")
def token_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    directory = tmp_path_factory.mktemp("access")
    tokens = directory / "tokens"
    tokens.write_text(f"{TOKENS['alice']},alice\n{TOKENS['bob']},bob\n{TOKENS['root']},root,admin\n")
    app = make_app(
        FLASK_SVC_BATCH_DATA_DIR=str(directory / "data"),
        FLASK_SVC_BATCH_CALLBACK_URL="http://127.0.0.1:9",
        FLASK_SVC_BATCH_AUTH="token",
        FLASK_SVC_BATCH_AUTH_TOKENS_FILE=str(tokens),
    )
    yield app
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()


@pytest.fixture
def web(token_app: Flask) -> FlaskClient:
    return token_app.test_client()


def _nothing_kept(app: Flask) -> None:
    store = app.extensions[BATCH_EXTENSION].store
    assert store.ids() == [] and list((store.root / ".incoming").iterdir()) == []


def _create(web: FlaskClient, who: str) -> dict[str, Any]:
    response = web.post(JOBS_PATH, data=TEXT, content_type="text/plain", headers=_auth(who))
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.get_json()
    return document


def _every_route(web: FlaskClient, job_id: str, headers: dict[str, str]) -> list[Any]:
    return [
        web.post(JOBS_PATH, data=TEXT, content_type="text/plain", headers=headers),
        web.get(JOBS_PATH, headers=headers),
        web.get(f"{JOBS_PATH}/{job_id}", headers=headers),
        web.get(f"{JOBS_PATH}/{job_id}/result", headers=headers),
        web.delete(f"{JOBS_PATH}/{job_id}", headers=headers),
    ]


def test_without_a_token_every_route_is_401_and_nothing_is_kept(web: FlaskClient, token_app: Flask) -> None:
    for headers in ({}, {"Authorization": "Basic YWxpY2U6cHc="}, {"Authorization": "Bearer "}):
        for response in _every_route(web, "0" * 21, headers):
            assert_problem(response, 401, "unauthenticated")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _nothing_kept(token_app)


def test_a_forged_token_is_401_and_nothing_is_kept(web: FlaskClient, token_app: Flask) -> None:
    for forged in ("alice-secret-toke", "alice-secret-token2", "ålice", TOKENS["alice"].upper()):
        for response in _every_route(web, "0" * 21, {"Authorization": f"Bearer {forged}"}):
            assert_problem(response, 401, "invalid_token")
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    _nothing_kept(token_app)


def test_a_job_is_its_owners_alone(web: FlaskClient) -> None:
    job = _create(web, "alice")
    job_id = job["id"]
    assert job["owner"] == "alice"
    # bob: the job does not exist for him — the same 404 as for an id nobody has.
    for path in (f"{JOBS_PATH}/{job_id}", f"{JOBS_PATH}/{job_id}/result"):
        assert_problem(web.get(path, headers=_auth("bob")), 404, "job_not_found")
    assert_problem(web.delete(f"{JOBS_PATH}/{job_id}", headers=_auth("bob")), 404, "job_not_found")
    assert job_id not in [j["id"] for j in web.get(JOBS_PATH, headers=_auth("bob")).get_json()["jobs"]]
    for owner in ("*", "alice"):
        assert_problem(web.get(f"{JOBS_PATH}?owner={owner}", headers=_auth("bob")), 403, "forbidden")
    # alice sees it, in her list (by default and by name) and by id.
    for query in ("", "?owner=alice"):
        listed = web.get(JOBS_PATH + query, headers=_auth("alice")).get_json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]
    assert web.get(f"{JOBS_PATH}/{job_id}", headers=_auth("alice")).get_json()["owner"] == "alice"
    # root holds the admin grant: everyone's list, anyone's job.
    everyone = web.get(f"{JOBS_PATH}?owner=*", headers=_auth("root")).get_json()["jobs"]
    assert job_id in [j["id"] for j in everyone]
    assert web.get(f"{JOBS_PATH}?owner=alice", headers=_auth("root")).get_json()["jobs"][0]["id"] == job_id
    assert web.get(JOBS_PATH, headers=_auth("root")).get_json()["jobs"] == []  # root's own: none
    assert web.get(f"{JOBS_PATH}/{job_id}", headers=_auth("root")).status_code == 200
    # The job is untouched by bob's attempts; alice deletes it.
    assert web.delete(f"{JOBS_PATH}/{job_id}", headers=_auth("alice")).status_code == 200
    assert_problem(web.get(f"{JOBS_PATH}/{job_id}", headers=_auth("alice")), 404, "job_not_found")


def test_an_admin_may_delete_anothers_job(web: FlaskClient) -> None:
    job_id = _create(web, "bob")["id"]
    assert web.delete(f"{JOBS_PATH}/{job_id}", headers=_auth("root")).status_code == 200
    assert_problem(web.get(f"{JOBS_PATH}/{job_id}", headers=_auth("bob")), 404, "job_not_found")


def test_the_stage_callback_needs_no_bearer_token_but_its_signature(web: FlaskClient) -> None:
    job_id = _create(web, "alice")["id"]
    body = b'{"job": "%s", "stage": "tokenize", "ok": true}' % job_id.encode()
    response = web.post(f"{JOBS_PATH}/{job_id}/events", data=body, content_type="application/json")
    assert_problem(response, 401, "unsigned_event")
    web.delete(f"{JOBS_PATH}/{job_id}", headers=_auth("alice"))


def test_auto_off_loopback_refuses_jobs_but_serves_the_rest(tmp_path: Path) -> None:
    app = make_app(FLASK_SVC_BATCH_DATA_DIR=str(tmp_path), FLASK_SVC_BATCH_AUTH="", HOST="0.0.0.0")
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()
    web = app.test_client()
    for response in _every_route(web, "0" * 21, {"Authorization": "Bearer anything"}):
        problem = assert_problem(response, 403, "batch_auth_not_configured")
        assert "FLASK_SVC_BATCH_AUTH" in problem["detail"]
    _nothing_kept(app)
    assert web.get("/readyz").status_code == 200
    assert web.post("/api/v1/wordcount", data=TEXT, content_type="text/plain").status_code == 200


def test_auto_on_loopback_is_anonymous(tmp_path: Path) -> None:
    app = make_app(FLASK_SVC_BATCH_DATA_DIR=str(tmp_path), FLASK_SVC_BATCH_AUTH="auto", HOST="127.0.0.1")
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()
    response = app.test_client().post(JOBS_PATH, data=TEXT, content_type="text/plain")
    assert response.status_code == 202 and response.get_json()["owner"] == ""


@pytest.mark.parametrize("api", ["closed", "refusing"])
def test_an_api_server_that_cannot_answer_is_503_never_allowed(
    api: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    host = f"http://127.0.0.1:{closed_port()}" if api == "closed" else request.getfixturevalue("refusing_api")
    app = make_app(FLASK_SVC_BATCH_DATA_DIR=str(tmp_path))
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()
    # The kubernetes gate as a pod would have it, pointed at an API server that cannot answer.
    app.extensions[BATCH_ACCESS_EXTENSION] = KubernetesGate(KubeReviews(client.Configuration(host=host)), "ns")
    for response in _every_route(app.test_client(), "0" * 21, {"Authorization": "Bearer some-token"}):
        assert_problem(response, 503, "access_review_unavailable")
        assert response.headers["Retry-After"] == "5"
    _nothing_kept(app)
