"""The batch API's bounds over HTTP: 429 past the per-owner cap, 507 past the stored-bytes cap, nothing kept.

The stages are held by the test's runner (``HeldRunner``), so a job stays active as long as the test needs."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Flask

from service.batch.web.views import BATCH_EXTENSION, BATCH_RECONCILER_EXTENSION
from service.names import JOBS_PATH
from tests.app.analysis.test_views import assert_problem
from tests.app.conftest import make_app
from tests.unit.batch.test_bounds import HeldRunner


def _app(tmp_path: Path, **env: str) -> Flask:
    app = make_app(FLASK_SVC_BATCH_DATA_DIR=str(tmp_path), **env)
    app.extensions[BATCH_RECONCILER_EXTENSION].stop()
    app.extensions[BATCH_EXTENSION].runner = HeldRunner()
    return app


def _kept(app: Flask) -> int:
    store = app.extensions[BATCH_EXTENSION].store
    assert list((store.root / ".incoming").iterdir()) == []
    return len(store.ids())


def test_past_the_owner_cap_a_429_names_the_limit_and_when_to_retry(tmp_path: Path) -> None:
    client = _app(tmp_path, FLASK_SVC_BATCH_MAX_ACTIVE_JOBS_PER_OWNER="1").test_client()
    assert client.post(JOBS_PATH, data=b"words", content_type="text/plain").status_code == 202
    response = client.post(JOBS_PATH, data=b"more words", content_type="text/plain")
    body = assert_problem(response, 429, "too_many_jobs")
    assert body["limit"] == 1 and "at most 1 unfinished" in body["detail"]
    assert int(response.headers["Retry-After"]) > 0
    assert _kept(client.application) == 1


def test_past_the_stored_bytes_cap_a_507_names_the_limit_and_keeps_nothing(tmp_path: Path) -> None:
    app = _app(tmp_path, FLASK_SVC_BATCH_MAX_STORED_BYTES="5000")
    client = app.test_client()
    announced = client.post(JOBS_PATH, data=b"x" * 6000, content_type="text/plain")
    body = assert_problem(announced, 507, "storage_quota_exceeded")
    assert body["limit"] == 5000 and "5000 bytes" in body["detail"]
    # No Content-Length: refused while streaming, once the bytes pass the cap.
    streamed = client.post(JOBS_PATH, input_stream=io.BytesIO(b"x" * 6000), content_type="text/plain")
    assert_problem(streamed, 507, "storage_quota_exceeded")
    assert _kept(app) == 0
    assert client.post(JOBS_PATH, data=b"x" * 1000, content_type="text/plain").status_code == 202


def test_a_job_over_the_running_cap_is_accepted_queued(tmp_path: Path) -> None:
    client = _app(tmp_path, FLASK_SVC_BATCH_MAX_RUNNING_STAGES="1").test_client()
    states = [client.post(JOBS_PATH, data=b"w", content_type="text/plain").get_json()["state"] for _ in range(2)]
    assert states == ["tokenizing", "queued"]


def test_the_caps_are_in_the_openapi_document(tmp_path: Path) -> None:
    document = _app(tmp_path).test_client().get("/openapi.json").get_json()
    assert {"429", "507"} <= set(document["paths"][JOBS_PATH]["post"]["responses"])
