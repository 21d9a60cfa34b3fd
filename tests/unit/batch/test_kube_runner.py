"""The Kubernetes runner against API servers that are not there or refuse: the coordinator must say 503, keep
nothing, and leave an accepted job to resume later."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from service.batch.coordinator import Coordinator
from service.batch.kube import JOB_ID_LABEL, STAGE_LABEL, KubernetesRunner
from service.batch.observer import Unobserved
from service.batch.runner import RunnerUnavailable
from service.batch.states import Stage, State
from service.config import load_settings

TEMPLATE = {
    "metadata": {"name": "rel-flask-svc", "labels": {"app.kubernetes.io/component": "batch-stage"}},
    "spec": {
        "backoffLimit": 2,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": "batch-stage"}},
            "spec": {"containers": [{"name": "stage", "env": [{"name": "KEEP", "value": "1"}]}]},
        },
    },
}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kubernetes_runner(host: str, parallelism: int = 0) -> KubernetesRunner:
    settings = load_settings(
        {
            "FLASK_SVC_BATCH_PARALLELISM": str(parallelism),
            "FLASK_SVC_BATCH_RUNNER": "kubernetes",
            "FLASK_SVC_BATCH_JOB_TEMPLATE": json.dumps(TEMPLATE),
            "FLASK_SVC_BATCH_CALLBACK_URL": "http://svc.ns.svc:8080",
            "POD_NAMESPACE": "ns",
        }
    )
    return KubernetesRunner(settings, client.Configuration(host=host))


@pytest.fixture
def refusing_api() -> Iterator[str]:
    """An HTTP server answering every request 503, as an API server behind a failing load balancer does."""

    class Handler(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"kind":"Status","status":"Failure","code":503}')

        do_GET = do_POST = do_DELETE = _refuse

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_manifest_names_labels_and_arguments_each_stage() -> None:
    runner = kubernetes_runner("http://127.0.0.1:1")
    job = runner.manifest("a" * 21, Stage.COUNT, {"FLASK_SVC_BATCH_JOB_SECRET": "s", "TRACEPARENT": "t"})
    assert job["metadata"]["name"] == f"rel-flask-svc-{'a' * 21}-count"
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[JOB_ID_LABEL] == "a" * 21 and labels[STAGE_LABEL] == "count"
    stage = job["spec"]["template"]["spec"]["containers"][0]
    assert stage["args"] == ["merge", "a" * 21]  # the count stage merges the shards' partial results
    assert "completionMode" not in job["spec"] and job["spec"]["backoffLimit"] == 2
    assert stage["env"] == [
        {"name": "KEEP", "value": "1"},
        {"name": "FLASK_SVC_BATCH_JOB_SECRET", "value": "s"},
        {"name": "TRACEPARENT", "value": "t"},
    ]
    assert TEMPLATE["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "KEEP", "value": "1"}]  # type: ignore[index]


@pytest.mark.parametrize(("shards", "parallelism"), [(16, 2), (1, 2), (3, 0)])
def test_the_tokenize_stage_is_one_indexed_job_over_the_shards(shards: int, parallelism: int) -> None:
    runner = kubernetes_runner("http://127.0.0.1:1", parallelism)
    job = runner.manifest("a" * 21, Stage.TOKENIZE, {}, shards)
    assert job["metadata"]["name"] == f"rel-flask-svc-{'a' * 21}-tokenize"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["map", "a" * 21]  # index: JOB_COMPLETION_INDEX
    spec = {key: value for key, value in job["spec"].items() if key != "template"}
    assert spec == {
        "completionMode": "Indexed",
        "completions": shards,
        "parallelism": min(shards, parallelism or 1),  # never more pods than shards; unset: one
        "backoffLimitPerIndex": 2,  # the chart's backoffLimit, per shard: one shard's retries are its own
        "maxFailedIndexes": 0,  # a shard out of retries fails the job without waiting for the others
    }
    assert TEMPLATE["spec"]["backoffLimit"] == 2  # type: ignore[index]


@pytest.mark.parametrize("api", ["unreachable", "refusing"])
def test_an_api_that_cannot_answer_refuses_new_jobs_and_keeps_nothing(
    api: str, refusing_api: str, tmp_path: Path
) -> None:
    host = f"http://127.0.0.1:{closed_port()}" if api == "unreachable" else refusing_api
    runner = kubernetes_runner(host)
    with pytest.raises(RunnerUnavailable, match="Kubernetes API"):
        runner.check()
    coordinator = Coordinator.open(tmp_path, runner, "", {}, observer=Unobserved())
    with pytest.raises(RunnerUnavailable):
        coordinator.create([b"never read"], {}, traceparent=None)
    assert coordinator.store.ids() == []
    assert list((tmp_path / ".incoming").iterdir()) == []


def test_a_job_accepted_before_the_api_went_away_waits_and_resumes(refusing_api: str, tmp_path: Path) -> None:
    from service.batch.local import LocalRunner

    accepting = Coordinator.open(tmp_path, LocalRunner(tmp_path), "", {}, observer=Unobserved())
    accepting.runner = kubernetes_runner(refusing_api)  # the API goes away after the upload was checked
    accepting.runner.check = lambda: None  # type: ignore[method-assign]
    record = accepting.create([b"some words"], {}, traceparent=None)
    assert record.state is State.QUEUED  # not failed: the stage could not be started yet
    accepting.reconcile()
    assert accepting.get(record.id).state is State.QUEUED
    accepting.runner = LocalRunner(tmp_path)  # the API is back: the next round starts it
    accepting.reconcile()
    assert accepting.get(record.id).state in (State.TOKENIZING, State.COUNTING, State.SUCCEEDED)


def test_active_names_the_jobs_whose_stage_jobs_have_not_finished() -> None:
    def job(name: str, job_id: str, condition: str | None) -> dict[str, object]:
        conditions = [{"type": condition, "status": "True"}] if condition else []
        return {
            "metadata": {"name": name, "labels": {JOB_ID_LABEL: job_id, STAGE_LABEL: "tokenize"}},
            "status": {"conditions": conditions},
        }

    listing = {
        "kind": "JobList",
        "apiVersion": "batch/v1",
        "metadata": {},
        "items": [
            job(f"rel-flask-svc-{'a' * 21}-tokenize", "a" * 21, None),  # running
            job(f"rel-flask-svc-{'b' * 21}-tokenize", "b" * 21, "Complete"),
            job(f"rel-flask-svc-{'c' * 21}-count", "c" * 21, "Failed"),
            job(f"rel-flask-svc-{'d' * 21}-count", "d" * 21, "SuccessCriteriaMet"),  # pod still exiting
            job(f"other-release-{'e' * 21}-count", "e" * 21, None),  # another release's
        ],
    }
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runner = kubernetes_runner(f"http://127.0.0.1:{server.server_address[1]}")
        assert runner.active() == {"a" * 21, "d" * 21}
    finally:
        server.shutdown()
    assert asked[0].startswith("/apis/batch/v1/namespaces/ns/jobs?labelSelector=flask-svc.dev")
