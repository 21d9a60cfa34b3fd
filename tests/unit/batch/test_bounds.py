"""The pipeline's bounds: a queue behind the running-stage cap, the per-owner cap, the stored-bytes cap, retention.

Most tests hold stages in a runner of their own (``HeldRunner``: a stage runs until the test finishes it) so what
is running at each moment is decided by the test, not by timing; one runs real stage processes under the cap.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from service.batch.coordinator import Coordinator
from service.batch.errors import OverQuota, TooManyJobs
from service.batch.local import LocalRunner
from service.batch.observer import Unobserved
from service.batch.progress import Limits
from service.batch.runner import Phase, StageStatus
from service.batch.states import RUNNING_STAGE, Stage, State


class HeldRunner:
    """Stages that run until ``finish`` is called; what is cancelled is remembered."""

    name = "held"

    def __init__(self) -> None:
        self.started: list[tuple[str, Stage]] = []
        self.finished: set[tuple[str, Stage]] = set()
        self.cancelled: list[str] = []
        self.lingering: set[str] = set()  # jobs whose stage Job has not finished though its outcome is written

    def check(self) -> None:
        return None

    def stage_name(self, job_id: str, stage: Stage) -> str:
        return f"held-{job_id}-{stage.value}"

    def start(self, job_id: str, stage: Stage, env: Mapping[str, str], shards: int = 1) -> str:
        if (job_id, stage) not in self.started:
            self.started.append((job_id, stage))
        return self.stage_name(job_id, stage)

    def status(self, job_id: str, stage: Stage) -> StageStatus:
        if (job_id, stage) not in self.started:
            return StageStatus(Phase.MISSING)
        if (job_id, stage) in self.finished:
            return StageStatus(Phase.FAILED, "finished by the test")
        return StageStatus(Phase.RUNNING)

    def finish(self, job_id: str) -> None:
        self.finished.update((job_id, stage) for stage in Stage)

    def active(self) -> set[str]:
        return set(self.lingering)

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


def held(tmp_path: Path, **limits: float) -> Coordinator:
    return Coordinator.open(tmp_path, HeldRunner(), "", {}, observer=Unobserved(), limits=Limits(**limits))  # type: ignore[arg-type]


def _runner(coordinator: Coordinator) -> HeldRunner:
    assert isinstance(coordinator.runner, HeldRunner)
    return coordinator.runner


def _states(coordinator: Coordinator, ids: list[str]) -> list[State]:
    return [coordinator.store.load(job_id).state for job_id in ids]  # type: ignore[union-attr]


def _nothing_kept(coordinator: Coordinator, before: int) -> None:
    assert len(coordinator.store.ids()) == before
    assert list((coordinator.store.root / ".incoming").iterdir()) == []


def test_jobs_beyond_the_cap_wait_queued_and_start_in_submission_order(tmp_path: Path) -> None:
    coordinator = held(tmp_path, max_running_stages=2)
    ids = [coordinator.create([b"words"], {}, traceparent=None).id for _ in range(4)]
    assert _states(coordinator, ids) == [State.TOKENIZING, State.TOKENIZING, State.QUEUED, State.QUEUED]
    coordinator.reconcile()  # nothing finished: nothing more starts
    assert _states(coordinator, ids)[2:] == [State.QUEUED, State.QUEUED]
    # A read of a queued job does not jump the queue either.
    assert coordinator.get(ids[3]).state is State.QUEUED
    _runner(coordinator).finish(ids[1])
    coordinator.reconcile()
    assert _states(coordinator, ids) == [State.TOKENIZING, State.FAILED, State.TOKENIZING, State.QUEUED]
    _runner(coordinator).finish(ids[0])
    coordinator.get(ids[0])  # a job that ends frees its slot at once, without waiting for the reconciler
    assert _states(coordinator, ids)[3] is State.TOKENIZING
    assert [job_id for job_id, _ in _runner(coordinator).started] == ids


def test_a_stage_the_runner_still_runs_holds_its_slot(tmp_path: Path) -> None:
    coordinator = held(tmp_path, max_running_stages=1)
    _runner(coordinator).lingering = {"0" * 21}  # a finished job whose pod is still exiting
    job = coordinator.create([b"w"], {}, traceparent=None)
    assert job.state is State.QUEUED
    _runner(coordinator).lingering.clear()
    coordinator.reconcile()
    assert _states(coordinator, [job.id]) == [State.TOKENIZING]


def test_cancelling_a_running_job_starts_the_next(tmp_path: Path) -> None:
    coordinator = held(tmp_path, max_running_stages=1)
    first, second = (coordinator.create([b"w"], {}, traceparent=None).id for _ in range(2))
    assert _states(coordinator, [first, second]) == [State.TOKENIZING, State.QUEUED]
    coordinator.cancel(first)
    assert _states(coordinator, [second]) == [State.TOKENIZING]


def test_the_owner_cap_refuses_before_reading_and_keeps_nothing(tmp_path: Path) -> None:
    coordinator = held(tmp_path, max_active_per_owner=2)
    alice = [coordinator.create([b"w"], {}, traceparent=None, owner="alice").id for _ in range(2)]
    with pytest.raises(TooManyJobs) as refused:
        coordinator.create(_unread(), {}, traceparent=None, owner="alice")
    assert refused.value.limit == 2 and "2 unfinished jobs" in str(refused.value)
    _nothing_kept(coordinator, 2)
    coordinator.create([b"w"], {}, traceparent=None, owner="bob")  # another owner is not held back
    _runner(coordinator).finish(alice[0])
    coordinator.reconcile()
    coordinator.create([b"w"], {}, traceparent=None, owner="alice")  # a finished job no longer counts


def test_the_stored_bytes_cap_refuses_an_announced_length_before_reading(tmp_path: Path) -> None:
    coordinator = held(tmp_path, max_stored_bytes=10_000)
    with pytest.raises(OverQuota) as refused:
        coordinator.create(_unread(), {}, traceparent=None, declared=10_001)
    assert refused.value.limit == 10_000 and "10000 bytes" in str(refused.value)
    _nothing_kept(coordinator, 0)


def test_the_stored_bytes_cap_stops_a_stream_and_keeps_nothing(tmp_path: Path) -> None:
    coordinator = held(tmp_path, max_stored_bytes=10_000)
    kept = coordinator.create([b"x" * 4000], {}, traceparent=None)
    with pytest.raises(OverQuota):
        coordinator.create((b"y" * 1000 for _ in range(7)), {}, traceparent=None)  # no length announced
    _nothing_kept(coordinator, 1)
    coordinator.cancel(kept.id)  # room again
    coordinator.create((b"y" * 1000 for _ in range(7)), {}, traceparent=None)


def test_retention_removes_finished_jobs_and_their_stages_only(tmp_path: Path) -> None:
    coordinator = held(tmp_path, retention_seconds=60)
    done, running = (coordinator.create([b"w"], {}, traceparent=None).id for _ in range(2))
    _runner(coordinator).finish(done)
    coordinator.reconcile()
    finished_at = coordinator.store.load(done).updated  # type: ignore[union-attr]
    coordinator.reconcile(now=finished_at + 59)
    assert coordinator.store.load(done) is not None
    coordinator.reconcile(now=finished_at + 61)
    assert coordinator.store.load(done) is None and not (tmp_path / done).exists()
    assert _runner(coordinator).cancelled == [done]
    assert coordinator.store.load(running) is not None  # unfinished jobs are never expired


def test_leftovers_of_a_killed_upload_are_removed_once_stale(tmp_path: Path) -> None:
    coordinator = held(tmp_path, incoming_retention_seconds=600)
    stale, fresh = tmp_path / ".incoming" / "a", tmp_path / ".incoming" / "b"
    for directory in (stale, fresh):
        directory.mkdir()
        (directory / "input.txt").write_bytes(b"half an upload")
    now = time.time()
    for path in (stale, stale / "input.txt"):
        os.utime(path, (now - 601, now - 601))
    coordinator.reconcile(now=now)
    assert not stale.exists() and fresh.exists()


def test_real_stages_never_exceed_the_cap_and_all_succeed(tmp_path: Path) -> None:
    env = {"FLASK_SVC_BATCH_DATA_DIR": str(tmp_path), "FLASK_SVC_MAX_VOCABULARY": "1000", "LOG_FORMAT": "json"}
    coordinator = Coordinator.open(
        tmp_path, LocalRunner(tmp_path), "", env, observer=Unobserved(), limits=Limits(max_running_stages=2)
    )
    ids = [coordinator.create([b"the cat and the hat " * 50], {}, traceparent=None).id for _ in range(5)]
    most = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        coordinator.reconcile()
        records = [coordinator.store.load(job_id) for job_id in ids]
        most = max(most, sum(1 for record in records if record and record.state in RUNNING_STAGE))
        if all(record and record.state.terminal for record in records):
            break
        time.sleep(0.05)
    assert most == 2
    assert _states(coordinator, ids) == [State.SUCCEEDED] * 5


def _unread() -> Iterator[bytes]:
    raise AssertionError("the body was read")
    yield b""  # pragma: no cover
