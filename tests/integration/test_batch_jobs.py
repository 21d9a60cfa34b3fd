"""Batch jobs on a real gunicorn with the local runner: real stage processes, a real data directory.

The big test streams 200 MiB through ``POST /api/v1/jobs`` and checks that neither the worker nor a stage grows
with it; the others are what needs a real server: limits on streamed bodies, callbacks over a socket, a full volume,
metrics merged by the master, one trace across processes. Handler behaviour is in tests/app/batch/test_views.py.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from harness.proc import peak_kib, reset_peak
from harness.server import ROOT, Server, running_server
from service.batch import signing
from service.batch.stages import ExitCode

MiB = 1024 * 1024
SYNC_LIMIT = 10 * MiB


def _text(size: int, seed: int = 7) -> Iterator[bytes]:
    """``size`` bytes of ordinary text (a 5,000-word vocabulary), made a MiB at a time."""
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(5000)] + ["the", "and", "café", "naïve", "don't", "l’été"]
    sent = 0
    while sent < size:
        block = (" ".join(rng.choices(vocabulary, k=150_000)) + "\n").encode()
        if size - sent < len(block):  # the last block: cut at a space (never inside a character), pad to size
            block = block[: block.rfind(b" ", 0, size - sent)].ljust(size - sent, b" ")
        sent += len(block)
        yield block


def _jobs_under(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if not p.name.startswith("."))


def _incoming(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / ".incoming").iterdir())


def _wait(server: Server, job_id: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{server.url}/api/v1/jobs/{job_id}", timeout=10).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished within {timeout}s: {job}")


def _create(server: Server, body: object, query: str = "", **kwargs: object) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/jobs{query}",
        data=body,
        headers={"Content-Type": "text/plain"},
        timeout=300,
        **kwargs,  # type: ignore[arg-type]
    )


def _problem(response: requests.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    document: dict[str, object] = response.json()
    assert document["code"] == code, document
    return document


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch-data")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[Server]:
    env = {"FLASK_SVC_BATCH_DATA_DIR": str(data_dir), "FLASK_SVC_BATCH_MAX_UPLOAD_BYTES": str(256 * MiB)}
    with running_server(env) as srv:
        yield srv


def _worker(server: Server) -> psutil.Process:
    (worker,) = server.workers()
    return worker


def test_a_200_mib_upload_completes_with_bounded_memory(server: Server, data_dir: Path) -> None:
    worker = _worker(server)
    # A first small job pays the one-time costs (imports, allocator arenas) before measuring.
    warm = _create(server, b"warm up words " * 1000)
    assert _wait(server, warm.json()["id"])["state"] == "succeeded"
    reset_peak(worker.pid)
    before = peak_kib(worker.pid)
    size = 200 * MiB
    started = time.monotonic()
    response = _create(server, _text(size))  # a generator: sent chunked, never whole in this process either
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["bytes"] == size
    upload_growth_kib = peak_kib(worker.pid) - before
    done = _wait(server, job["id"], timeout=600)
    elapsed = time.monotonic() - started
    assert done["state"] == "succeeded", done
    worker_growth_kib = peak_kib(worker.pid) - before
    result = requests.get(f"{server.url}/api/v1/jobs/{job['id']}/result?limit=3", timeout=10).json()
    assert result["bytes"] == size
    assert result["unique"] == 5006
    stage_peaks = {  # every shard's map process, then the merge
        path.stem: json.loads(path.read_text())["peak_rss_kib"]
        for path in [*sorted((data_dir / job["id"]).glob("map-*.json")), data_dir / job["id"] / "merge.json"]
    }
    print(
        f"200 MiB batch job: {elapsed:.1f} s ({size / MiB / elapsed:.1f} MiB/s end to end); worker peak RSS growth "
        f"{upload_growth_kib} KiB during the upload, {worker_growth_kib} KiB overall; stage peak RSS {stage_peaks} KiB"
    )
    # The worker streams the upload to disk; each map holds a chunk and its shard's vocabulary, the merge one line
    # per shard and the totals.
    assert worker_growth_kib < 16 * 1024
    for stage, peak in stage_peaks.items():
        assert peak < 96 * 1024, f"{stage} stage peaked at {peak} KiB"


@pytest.mark.parametrize("form", ["text/plain", "multipart"])
def test_the_result_equals_the_synchronous_wordcount(server: Server, form: str) -> None:
    text = b"".join(_text(3 * MiB, seed=11)) + "Ça, c'est l’été: DON'T stop — 42!".encode()
    assert len(text) < SYNC_LIMIT
    query = "?stopwords=en&min_length=2"
    if form == "multipart":
        upload = requests.post(
            f"{server.url}/api/v1/jobs{query}", files={"file": ("t.txt", text, "text/plain")}, timeout=60
        )
        synchronous = requests.post(
            f"{server.url}/api/v1/wordcount{query}&limit=50", files={"file": ("t.txt", text, "text/plain")}, timeout=60
        )
    else:
        upload = _create(server, text, query)
        synchronous = requests.post(
            f"{server.url}/api/v1/wordcount{query}&limit=50",
            data=text,
            headers={"Content-Type": "text/plain"},
            timeout=60,
        )
    assert upload.status_code == 202, upload.text
    assert _wait(server, upload.json()["id"])["state"] == "succeeded"
    batch = requests.get(f"{server.url}/api/v1/jobs/{upload.json()['id']}/result?limit=50", timeout=10).json()
    expected = synchronous.json()
    for answer in (batch, expected):
        answer.pop("elapsed_ms")
    assert batch == expected


def test_an_oversize_upload_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    env = {"FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "FLASK_SVC_BATCH_MAX_UPLOAD_BYTES": str(MiB)}
    with running_server(env) as server:
        announced = _create(server, b"x " * (MiB // 2 + 1))  # Content-Length says too much: refused before reading
        _problem(announced, 413, "payload_too_large")
        streamed = _create(server, _text(3 * MiB))  # chunked: refused once the limit is crossed
        _problem(streamed, 413, "payload_too_large")
        exact = _create(server, b"y" * MiB)
        assert exact.status_code == 202, exact.text
        assert _jobs_under(tmp_path) == [exact.json()["id"]]
        assert _incoming(tmp_path) == []


def test_a_forged_callback_is_refused_and_changes_nothing(server: Server, data_dir: Path) -> None:
    job = _create(server, b"\xff not utf-8").json()  # fails in its stage; the forger claims success
    url = f"{server.url}/api/v1/jobs/{job['id']}/events"
    body = json.dumps({"job": job["id"], "stage": "tokenize", "ok": False, "reason": "forged"}).encode()
    headers = {"Content-Type": "application/json"}
    _problem(requests.post(url, data=body, headers=headers, timeout=10), 401, "unsigned_event")
    guessed_key = signing.job_secret(b"guessed", job["id"])
    forged = {**headers, signing.SIGNATURE_HEADER: signing.sign(guessed_key, body)}
    _problem(requests.post(url, data=body, headers=forged, timeout=10), 403, "forged_event")
    # Signed for another job with the real key: still refused (the body names this job, the secret is another's).
    real_key = (data_dir / ".callback-key").read_text().strip().encode()
    other = {**headers, signing.SIGNATURE_HEADER: signing.sign(signing.job_secret(real_key, "f" * 21), body)}
    _problem(requests.post(url, data=body, headers=other, timeout=10), 403, "forged_event")
    done = _wait(server, job["id"])
    assert done["reason"] != "forged"
    assert done["state"] == "failed"
    assert done["reason"] == "the upload is not valid UTF-8 (first bad byte at offset 0)"
    outcome = json.loads((data_dir / job["id"] / "map-00000.json").read_text())  # the one shard's map
    assert outcome["exit_code"] == ExitCode.BAD_INPUT
    failed = _problem(requests.get(f"{server.url}/api/v1/jobs/{job['id']}/result", timeout=10), 409, "job_not_finished")
    assert "not valid UTF-8" in str(failed["detail"])


def test_delete_cancels_and_removes_the_job(server: Server, data_dir: Path) -> None:
    job = _create(server, b"".join(_text(30 * MiB))).json()
    response = requests.delete(f"{server.url}/api/v1/jobs/{job['id']}", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["state"] in ("cancelled", "succeeded")
    time.sleep(1)  # a stage that outlived the cancel would write its files about now
    assert not (data_dir / job["id"]).exists()
    _problem(requests.get(f"{server.url}/api/v1/jobs/{job['id']}", timeout=10), 404, "job_not_found")
    _problem(requests.delete(f"{server.url}/api/v1/jobs/{job['id']}", timeout=10), 404, "job_not_found")
    assert not any(job["id"] in " ".join(process.cmdline()) for process in _worker(server).children(recursive=True)), (
        "a stage of the cancelled job still runs"
    )


def test_the_pipeline_is_counted_in_the_merged_metrics(server: Server) -> None:
    job = _create(server, b"metrics words").json()
    _wait(server, job["id"])
    time.sleep(6)  # one reconcile round publishes the count by state
    metrics = requests.get(server.metrics_url, timeout=10).text
    assert 'flask_svc_batch_jobs_finished_total{state="succeeded"}' in metrics
    assert 'flask_svc_batch_stage_duration_seconds_count{outcome="ok",stage="count"}' in metrics
    assert 'flask_svc_batch_processed_bytes_total{stage="tokenize"}' in metrics
    succeeded = [line for line in metrics.splitlines() if line.startswith('flask_svc_batch_jobs{state="succeeded"}')]
    assert succeeded and float(succeeded[0].split()[-1]) >= 1
    values = {line.split()[0]: float(line.split()[-1]) for line in metrics.splitlines() if not line.startswith("#")}
    assert values["flask_svc_batch_shards_counted_total"] >= 1  # the map's progress, shard by shard
    assert values["flask_svc_batch_shard_bytes_total"] >= len(b"metrics words")


def test_a_full_volume_fails_the_job_with_a_clear_reason(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    volume = tmp_path / "volume"
    volume.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(volume)], check=True)
    try:
        # A directory on it, as the chart does: the tmpfs's root is writable by everyone (1777), which is refused.
        env = {"FLASK_SVC_BATCH_DATA_DIR": str(volume / "jobs"), "FLASK_SVC_MAX_VOCABULARY": "1000000"}
        with running_server(env) as server:
            # 1.4 MiB of distinct words: the upload fits, the map's partial result (larger still) does not.
            job = _create(server, b"".join(b"w%06d " % n for n in range(180_000))).json()
            done = _wait(server, job["id"])
            assert done["state"] == "failed"
            assert done["reason"] == "the shared volume is full (no space left on device)"
            # An upload that does not fit at all is refused, and nothing of it stays behind.
            refused = _create(server, b"e " * (2 * MiB))
            _problem(refused, 507, "insufficient_storage")
            assert _incoming(volume / "jobs") == []
    finally:
        subprocess.run(["umount", "-l", str(volume)], check=False)


def test_the_default_app_does_not_import_the_kubernetes_client() -> None:
    probe = (
        "import sys; from service import create_app; create_app(); "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('kubernetes', 'urllib3')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_SVC_", "PROMETHEUS_"))}
    output = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]", output.stdout


def test_one_trace_spans_the_upload_and_both_stages(tmp_path: Path) -> None:
    from harness.otlp import otlp_receiver

    with otlp_receiver() as receiver:
        env = {
            "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with running_server(env) as server:
            job = _create(server, b"traced words in a batch job").json()
            assert _wait(server, job["id"])["state"] == "succeeded"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                names = {span.name for span in list(receiver.spans)}
                if {"POST /api/v1/jobs", "batch.map", "batch.merge"} <= names:
                    break
                time.sleep(0.1)
            spans = {span.name: span for span in list(receiver.spans)}
        logs = [r for r in server.json_logs() if r.get("job_id") == job["id"]]
    upload = spans["POST /api/v1/jobs"]
    for stage in ("batch.map", "batch.merge"):  # the tokenize stage's map (driver and shards), the count's merge
        assert spans[stage].trace_id == upload.trace_id, stage
        assert spans[stage].parent_span_id == upload.span_id, stage
    # Both stages and the coordinator log the job's id (the stages' lines go to their log files, not the server's).
    assert any(r.get("message") == "job queued" for r in logs)
    stage_log = (tmp_path / job["id"] / "tokenize.log").read_text()
    assert f'"job_id": "{job["id"]}"' in stage_log and '"trace_id": "' + upload.trace_id in stage_log
