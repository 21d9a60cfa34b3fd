"""The coordinator and the stages together, with the local runner: real stage processes on a temporary volume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.analysis import AnalysisOptions, analyze_chunks
from service.batch import formats, signing
from service.batch.coordinator import Coordinator
from service.batch.errors import ForgedEvent, NotFinished, UnsignedEvent
from service.batch.local import LocalRunner
from service.batch.stages import ExitCode, event_body, map_outcome_name
from service.batch.states import JobRecord, State
from service.batch.store import JobStore, UnknownJob, new_id

OPTIONS = {"lowercase": True, "min_length": 1, "stopwords": "none"}


@pytest.fixture
def coordinator(tmp_path: Path) -> Coordinator:
    env = {"FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "FLASK_SVC_MAX_VOCABULARY": "1000", "LOG_FORMAT": "json"}
    return Coordinator.open(tmp_path, LocalRunner(tmp_path), "", env, observer=Recorder())


class Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, bool]] = []
        self.finished: list[State] = []

    def stage_finished(self, outcome: formats.Outcome) -> None:
        self.stages.append((outcome.stage, outcome.ok))

    def job_finished(self, record: JobRecord) -> None:
        self.finished.append(record.state)

    def jobs_by_state(self, counts: object) -> None:
        pass

    def shards_counted(self, shards: int, covered: int) -> None:
        pass


def _chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _until_done(coordinator: Coordinator, job_id: str, timeout: float = 30) -> JobRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = coordinator.get(job_id)  # advancing on read: nobody calls back in these tests
        if record.state.terminal:
            return record
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {record.state} after {timeout}s")


def test_a_job_runs_both_stages_and_matches_the_synchronous_count(coordinator: Coordinator) -> None:
    text = ("The cat and the hat. Don't stop! Café naïve l’été 42 " * 300).encode()
    record = coordinator.create(_chunks(text), OPTIONS, traceparent=None)
    assert record.state is State.TOKENIZING
    with pytest.raises(NotFinished):
        coordinator.result(record.id, 10)  # too early (the stage takes a few hundred ms to start)
    done = _until_done(coordinator, record.id)
    assert done.state is State.SUCCEEDED, done.reason
    assert done.stages["count"].finished is not None
    expected = analyze_chunks([text], AnalysisOptions(**OPTIONS)).counts
    result = coordinator.result(record.id, 5)
    assert (result.bytes, result.tokens, result.unique) == (len(text), expected.total, expected.unique)
    assert result.counts == expected.most_common(5)
    assert result.truncated
    assert coordinator.observer.stages == [("tokenize", True), ("count", True)]  # type: ignore[attr-defined]
    assert coordinator.observer.finished == [State.SUCCEEDED]  # type: ignore[attr-defined]
    # Looking again changes nothing: each fact is observed once.
    coordinator.reconcile()
    assert coordinator.observer.finished == [State.SUCCEEDED]  # type: ignore[attr-defined]


def test_a_stage_outcome_is_counted_once_while_the_next_stage_cannot_start(coordinator: Coordinator) -> None:
    from service.batch.runner import RunnerUnavailable

    record = coordinator.create(_chunks(b"some words to count " * 50), OPTIONS, traceparent=None)
    deadline = time.monotonic() + 30
    while not (coordinator.store.path(record.id) / map_outcome_name(0)).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    runner = coordinator.runner
    real_start = runner.start

    def unavailable(*_args: object) -> str:
        raise RunnerUnavailable("the API server is away")

    runner.start = unavailable  # type: ignore[method-assign]  # the count stage cannot be started for a while
    for _ in range(3):
        assert coordinator.get(record.id).state is State.TOKENIZING
    assert coordinator.observer.stages == []  # type: ignore[attr-defined]
    runner.start = real_start  # type: ignore[method-assign]  # back
    assert _until_done(coordinator, record.id).state is State.SUCCEEDED
    assert coordinator.observer.stages == [("tokenize", True), ("count", True)]  # type: ignore[attr-defined]


def test_invalid_utf8_fails_the_job_with_the_stage_reason(coordinator: Coordinator) -> None:
    record = coordinator.create([b"fine words \xff\xfe then"], OPTIONS, traceparent=None)
    done = _until_done(coordinator, record.id)
    assert done.state is State.FAILED
    assert done.reason == "the upload is not valid UTF-8 (first bad byte at offset 11)"
    outcome = formats.read_json(coordinator.store.path(record.id) / map_outcome_name(0))
    assert outcome is not None and outcome["exit_code"] == ExitCode.BAD_INPUT


def test_the_vocabulary_cap_applies_to_the_count_stage(coordinator: Coordinator) -> None:
    text = " ".join(f"w{n}" for n in range(1500)).encode()  # the fixture caps the vocabulary at 1000
    done = _until_done(coordinator, coordinator.create([text], OPTIONS, traceparent=None).id)
    assert done.state is State.FAILED
    assert done.reason == "the text has more than 1000 distinct words"


def test_a_stage_process_that_dies_fails_the_job_instead_of_hanging(coordinator: Coordinator, tmp_path: Path) -> None:
    record = coordinator.create([b"words " * 10], OPTIONS, traceparent=None)
    (tmp_path / record.id / "input.txt").unlink()  # the stage finds no input and exits NO_JOB
    done = _until_done(coordinator, record.id)
    assert done.state is State.FAILED
    assert "the upload or its shard plan is gone" in (done.reason or "")


def test_cancel_stops_the_stage_and_removes_the_job(coordinator: Coordinator, tmp_path: Path) -> None:
    record = coordinator.create([b"words " * 10], OPTIONS, traceparent=None)
    cancelled = coordinator.cancel(record.id)
    assert cancelled.state is State.CANCELLED
    assert coordinator.observer.finished == [State.CANCELLED]  # type: ignore[attr-defined]
    time.sleep(0.5)  # a stage that outlived the cancel would write its files about now
    assert not (tmp_path / record.id).exists()
    with pytest.raises(UnknownJob):
        coordinator.get(record.id)


def test_events_need_the_job_secret_and_apply_once(coordinator: Coordinator, tmp_path: Path) -> None:
    record = coordinator.create([b"some words"], OPTIONS, traceparent=None)
    body = event_body(record.id, formats.Outcome(stage="tokenize", ok=False, exit_code=4, reason="volume full"))
    with pytest.raises(UnsignedEvent):
        coordinator.report(record.id, body, None)
    other_secret = signing.job_secret(coordinator.key, "f" * 21)
    with pytest.raises(ForgedEvent):
        coordinator.report(record.id, body, signing.sign(other_secret, body))
    with pytest.raises(UnknownJob):
        coordinator.report("0" * 21, body, "sha256=00")
    # Neither changed anything.
    state = coordinator.store.load(record.id)
    assert state is not None and state.state is State.TOKENIZING and state.reason is None
    # A genuine report about a stage the job has left is acknowledged and changes nothing, however often it comes.
    done = _until_done(coordinator, record.id)
    secret = signing.job_secret(coordinator.key, record.id)
    for _ in range(2):
        again = coordinator.report(record.id, body, signing.sign(secret, body))
        assert (again.state, again.updated, again.reason) == (State.SUCCEEDED, done.updated, None)


def test_a_stage_stopped_by_sigterm_leaves_no_partial_file(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    store.ensure()
    job_id = new_id()
    (store.incoming(job_id) / "input.txt").write_bytes(b"many words here " * 3_000_000)  # 48 MB: seconds of work
    store.commit(JobRecord(id=job_id, state=State.TOKENIZING, created=0, options=OPTIONS))
    env = {**os.environ, "FLASK_SVC_BATCH_DATA_DIR": str(tmp_path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stage = subprocess.Popen([sys.executable, "-m", "service.batch", "tokenize", job_id], env=env)
    partial = tmp_path / job_id / f".tokens.txt.{stage.pid}.tmp"
    deadline = time.monotonic() + 30
    while not partial.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert partial.exists(), "the stage never started writing"
    stage.send_signal(signal.SIGTERM)
    assert stage.wait(30) == 128 + signal.SIGTERM
    assert sorted(p.name for p in (tmp_path / job_id).iterdir()) == ["input.txt", "job.json"]
