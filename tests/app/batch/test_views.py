"""The batch API in process: the real app and its local runner (stage processes are real), driven through the test
client — answers, bad input, callbacks, pages, the OpenAPI document. What needs a real server process (memory of a
200 MiB upload, a full volume, callbacks over a socket, one trace across processes) is in tests/integration."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.batch import signing
from service.batch.coordinator import Coordinator
from service.batch.web.views import BATCH_EXTENSION, BATCH_RECONCILER_EXTENSION
from service.names import API_PREFIX, JOBS_PATH, WORDCOUNT
from tests.app.analysis.test_views import assert_problem
from tests.app.conftest import make_app

TEXT = ("The cat and the hat. The CAT sat; don't stop rock-n-roll 42 42 42. Café, l’été! " * 200).encode()


@pytest.fixture(scope="module")
def batch_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # No server listens at the callback URL: jobs advance on reads, as after a lost callback.
    app = make_app(
        FLASK_SVC_BATCH_DATA_DIR=str(tmp_path_factory.mktemp("batch")),
        FLASK_SVC_BATCH_MAX_UPLOAD_BYTES=str(64 * 1024),
        FLASK_SVC_BATCH_CALLBACK_URL="http://127.0.0.1:9",
    )
    yield app
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()


@pytest.fixture
def batch(batch_app: Flask) -> FlaskClient:
    return batch_app.test_client()


def _create(client: FlaskClient, body: bytes = TEXT, query: str = "") -> dict[str, Any]:
    response = client.post(JOBS_PATH + query, data=body, content_type="text/plain")
    assert response.status_code == 202, response.text
    document: dict[str, Any] = response.get_json()
    assert response.headers["Location"] == f"{JOBS_PATH}/{document['id']}"
    return document


def _finished(client: FlaskClient, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document: dict[str, Any] = client.get(f"{JOBS_PATH}/{job_id}").get_json()
        if document["state"] in ("succeeded", "failed", "cancelled"):
            return document
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not finished: {document}")


def test_a_job_answers_what_wordcount_answers(batch: FlaskClient) -> None:
    created = _create(batch, query="?stopwords=en&min_length=2")
    assert created["state"] == "tokenizing" and created["options"]["stopwords"] == "en"
    assert created["stages"]["tokenize"]["job_name"].startswith("local-")
    done = _finished(batch, created["id"])
    assert done["state"] == "succeeded" and done["reason"] is None
    assert done["stages"]["count"]["finished"] >= done["stages"]["tokenize"]["finished"]
    assert created["progress"]["shards"] == 1  # planned when the first stage started (64 MiB shards by default)
    assert done["progress"] == {"shards": 1, "shards_done": 1, "bytes_done": len(TEXT)}
    result = batch.get(f"{JOBS_PATH}/{created['id']}/result?limit=5").get_json()
    synchronous = batch.post(
        f"{API_PREFIX}/{WORDCOUNT}?stopwords=en&min_length=2&limit=5", data=TEXT, content_type="text/plain"
    ).get_json()
    for answer in (result, synchronous):
        answer.pop("elapsed_ms")
    assert result == synchronous


def test_multipart_uploads_are_jobs_too(batch: FlaskClient) -> None:
    response = batch.post(JOBS_PATH, data={"file": (io.BytesIO(TEXT), "t.txt", "text/plain")})
    assert response.status_code == 202, response.text
    assert _finished(batch, response.get_json()["id"])["state"] == "succeeded"


def test_unknown_jobs_are_404(batch: FlaskClient) -> None:
    for job_id in ("0" * 21, "no-such-job", "x" * 64):
        assert_problem(batch.get(f"{JOBS_PATH}/{job_id}"), 404, "job_not_found")
        assert_problem(batch.get(f"{JOBS_PATH}/{job_id}/result"), 404, "job_not_found")
        assert_problem(batch.delete(f"{JOBS_PATH}/{job_id}"), 404, "job_not_found")
    assert_problem(batch.get(f"{JOBS_PATH}/{'x' * 65}"), 422, "unprocessable")


def test_a_result_before_the_end_is_409_with_the_state(batch: FlaskClient) -> None:
    job = _create(batch)
    early = assert_problem(batch.get(f"{JOBS_PATH}/{job['id']}/result"), 409, "job_not_finished")
    assert early["state"] in ("tokenizing", "counting")
    _finished(batch, job["id"])


def test_bad_uploads(batch: FlaskClient, batch_app: Flask) -> None:
    store = batch_app.extensions[BATCH_EXTENSION].store
    before = store.ids()
    assert_problem(batch.post(JOBS_PATH, json={"text": "words"}), 415, "unsupported_media_type")
    too_big = batch.post(JOBS_PATH, data=b"x " * 40_000, content_type="text/plain")  # over the 64 KiB limit
    assert_problem(too_big, 413, "payload_too_large")
    assert_problem(batch.post(JOBS_PATH + "?min_length=0", data=b"w", content_type="text/plain"), 422, "unprocessable")
    assert store.ids() == before
    assert list((store.root / ".incoming").iterdir()) == []


def test_invalid_utf8_fails_the_job_with_the_reason(batch: FlaskClient) -> None:
    job = _create(batch, b"fine words \xff then")
    done = _finished(batch, job["id"])
    assert (done["state"], done["reason"]) == ("failed", "the upload is not valid UTF-8 (first bad byte at offset 11)")
    failed = assert_problem(batch.get(f"{JOBS_PATH}/{job['id']}/result"), 409, "job_not_finished")
    assert "not valid UTF-8" in failed["detail"] and failed["state"] == "failed"


def test_callbacks_must_be_signed_by_the_job(batch: FlaskClient, batch_app: Flask) -> None:
    coordinator: Coordinator = batch_app.extensions[BATCH_EXTENSION]
    job = _create(batch)
    url = f"{JOBS_PATH}/{job['id']}/events"
    body = json.dumps({"job": job["id"], "stage": "tokenize", "ok": False, "reason": "forged"}).encode()

    def post(signature: str | None) -> Any:
        headers = {signing.SIGNATURE_HEADER: signature} if signature else {}
        return batch.post(url, data=body, content_type="application/json", headers=headers)

    assert_problem(post(None), 401, "unsigned_event")
    assert_problem(post(signing.sign(signing.job_secret(b"guessed", job["id"]), body)), 403, "forged_event")
    another_job = signing.job_secret(coordinator.key, "f" * 21)
    assert_problem(post(signing.sign(another_job, body)), 403, "forged_event")
    assert_problem(batch.post(url, data=b"x" * 5000, content_type="application/json"), 413, "payload_too_large")
    done = _finished(batch, job["id"])
    assert done["state"] == "succeeded" and done["reason"] is None  # none of it changed anything
    # The job's own signature on a malformed event: 400, and still nothing changed.
    secret = signing.job_secret(coordinator.key, job["id"])
    garbage = b'{"job": "other"}'
    response = batch.post(
        url,
        data=garbage,
        content_type="application/json",
        headers={signing.SIGNATURE_HEADER: signing.sign(secret, garbage)},
    )
    assert_problem(response, 400, "malformed_event")
    # A genuine, late report is acknowledged with the job's state and changes nothing.
    assert post(signing.sign(secret, body)).get_json() == {"state": "succeeded"}
    assert batch.get(f"{JOBS_PATH}/{job['id']}").get_json() == done
    # A map stage's report names its shard: accepted, not malformed (the seed's coordinator answered 400).
    shard = json.dumps({"job": job["id"], "stage": "map", "index": 0, "ok": True, "reason": None}).encode()
    response = batch.post(
        url,
        data=shard,
        content_type="application/json",
        headers={signing.SIGNATURE_HEADER: signing.sign(secret, shard)},
    )
    assert response.status_code == 200 and response.get_json() == {"state": "succeeded"}


def test_a_signature_that_is_not_ascii_is_403_not_500(batch: FlaskClient) -> None:
    # Any client can send one; a 500 would burn the error budget the SLO alerts page on.
    job = _create(batch)
    body = json.dumps({"job": job["id"], "stage": "tokenize", "ok": False, "reason": "forged"}).encode()
    for signature in ("sha256=\u00e9t\u00e9", "\u00ff" * 71, "sha256=" + "\u00e9" * 64):
        response = batch.post(
            f"{JOBS_PATH}/{job['id']}/events",
            data=body,
            content_type="application/json",
            headers={signing.SIGNATURE_HEADER: signature},
        )
        assert_problem(response, 403, "forged_event")


def test_delete_answers_the_last_state_then_the_job_is_gone(batch: FlaskClient) -> None:
    job = _create(batch)
    deleted = batch.delete(f"{JOBS_PATH}/{job['id']}")
    assert deleted.status_code == 200 and deleted.get_json()["state"] in ("cancelled", "succeeded")
    assert_problem(batch.get(f"{JOBS_PATH}/{job['id']}"), 404, "job_not_found")


def test_jobs_are_listed_newest_first_in_pages(batch: FlaskClient) -> None:
    created = [_create(batch, f"page {n}".encode())["id"] for n in range(3)]
    first = batch.get(f"{JOBS_PATH}?limit=2").get_json()
    assert [job["id"] for job in first["jobs"]] == created[::-1][:2]
    second = batch.get(f"{JOBS_PATH}?limit=2&after={first['next']}").get_json()
    assert second["jobs"][0]["id"] == created[0]
    assert_problem(batch.get(f"{JOBS_PATH}?limit=0"), 422, "unprocessable")
    assert_problem(batch.get(f"{JOBS_PATH}?after=../x"), 422, "unprocessable")
    for job_id in created:
        _finished(batch, job_id)


def test_the_api_is_in_the_openapi_document(batch: FlaskClient) -> None:
    paths = batch.get("/openapi.json").get_json()["paths"]
    assert set(paths[JOBS_PATH]) == {"get", "post"}
    assert set(paths[f"{JOBS_PATH}/{{job_id}}"]) == {"get", "delete"}
    assert set(paths[f"{JOBS_PATH}/{{job_id}}/result"]) == {"get"}
    assert set(paths[f"{JOBS_PATH}/{{job_id}}/events"]) == {"post"}
    assert set(paths[JOBS_PATH]["post"]["requestBody"]["content"]) == {"text/plain", "multipart/form-data"}
    assert {"413", "503", "507"} <= set(paths[JOBS_PATH]["post"]["responses"])


def test_with_the_runner_off_there_is_no_jobs_api() -> None:
    app = make_app(FLASK_SVC_BATCH_RUNNER="off")
    assert BATCH_EXTENSION not in app.extensions
    assert_problem(app.test_client().post(JOBS_PATH, data=b"w", content_type="text/plain"), 404, "not_found")
    assert JOBS_PATH not in app.test_client().get("/openapi.json").get_json()["paths"]


def test_the_api_answers_503_problem_json_and_keeps_nothing(tmp_path: Path) -> None:
    from tests.unit.batch.test_kube_runner import closed_port, kubernetes_runner

    app = make_app(FLASK_SVC_BATCH_DATA_DIR=str(tmp_path))
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()
    # The Kubernetes runner as a pod would have it, pointed at an API server that is not there.
    app.extensions[BATCH_EXTENSION].runner = kubernetes_runner(f"http://127.0.0.1:{closed_port()}")
    response = app.test_client().post(JOBS_PATH, data=b"some words", content_type="text/plain")
    assert_problem(response, 503, "runner_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert app.extensions[BATCH_EXTENSION].store.ids() == []


def test_stages_get_the_tracing_settings_but_no_collector_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kubernetes runner writes the stage environment into the Job object, readable by anyone who can read Jobs.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer secret")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=secret")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=this-pod")
    app = make_app(FLASK_SVC_BATCH_DATA_DIR=str(tmp_path), HOST="::", PORT="8081")
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()
    env = app.extensions[BATCH_EXTENSION].stage_env
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    withheld = {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_RESOURCE_ATTRIBUTES"}
    assert not withheld & set(env)
    assert env["FLASK_SVC_BATCH_CALLBACK_URL"] == "http://[::1]:8081"  # a wildcard IPv6 bind, reached on loopback
