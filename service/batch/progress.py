"""What moves a batch job on: its stage outcomes read from the volume, its next stage started, queued jobs admitted
while fewer than the cap run. Every decision is made under the job's lock from what the volume and the runner say,
so any replica can advance any job."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from service.batch import shards, signing
from service.batch.formats import Outcome
from service.batch.observer import Observer, Unobserved
from service.batch.outcomes import stage_outcome
from service.batch.runner import Phase, Runner, RunnerUnavailable
from service.batch.states import RUNNING_STAGE, JobRecord, Stage, State
from service.batch.store import INPUT, JobStore, UnknownJob

log = logging.getLogger("service.batch.coordinator")  # its lines keep the logger they always had


@dataclass(frozen=True)
class Limits:
    """What the pipeline may hold and run (the ``FLASK_SVC_BATCH_*`` settings of the same names)."""

    max_running_stages: int = 4
    max_active_per_owner: int = 20
    max_stored_bytes: int = 8 << 30
    retention_seconds: float = 86_400
    incoming_retention_seconds: float = 3600
    shard_bytes: int = shards.DEFAULT_SHARD_BYTES  # FLASK_SVC_BATCH_SHARD_BYTES
    max_shards: int = shards.DEFAULT_MAX_SHARDS  # FLASK_SVC_BATCH_MAX_SHARDS


@dataclass
class Progress:
    """Moves a job along the pipeline from what the volume and the runner say, under the job's lock; starts queued
    jobs while stage slots are free. ``Coordinator`` adds what the API asks of it."""

    store: JobStore
    runner: Runner
    key: bytes
    stage_env: Mapping[str, str]  # what every stage needs besides its job's secret and trace
    observer: Observer = field(default_factory=Unobserved)
    limits: Limits = field(default_factory=Limits)

    # --- moving on -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, job_id: str) -> Iterator[JobRecord]:
        """The job's record, read under its lock (held for the block); ``UnknownJob`` when there is none."""
        if self.store.load(job_id) is None:  # before touching its directory: an unknown id creates nothing
            raise UnknownJob(job_id)
        with self.store.locked(job_id):  # UnknownJob too when it was deleted between the look and the lock
            record = self.store.load(job_id)
            if record is None:
                raise UnknownJob(job_id)
            yield record

    def advance(self, job_id: str) -> JobRecord:
        freed = False
        with self._locked(job_id) as record:
            if not record.state.terminal:
                before = record.to_json()
                done, covered = record.shards_done, record.bytes_done
                try:
                    self._advance(record)
                except RunnerUnavailable as error:
                    log.warning("runner unavailable; will retry", extra={"job_id": job_id, "error": str(error)})
                if record.to_json() != before:
                    self.store.save(record)
                    # Counted against the saved progress, so a shard is counted once whichever pass sees it.
                    if record.shards_done > done:
                        self.observer.shards_counted(record.shards_done - done, max(0, record.bytes_done - covered))
                    if record.state.terminal:
                        self.observer.job_finished(record)
                        freed = True
        if freed:  # its stage slot is free: the next queued job need not wait for the reconciler
            self.admit()
        return record

    def _advance(self, record: JobRecord) -> None:
        while not record.state.terminal:
            if record.state is State.QUEUED:
                return  # ``admit`` starts it when a stage slot is free
            stage = RUNNING_STAGE[record.state]
            outcome = self._outcome(record, stage)
            if outcome is None:
                status = self.runner.status(record.id, stage)
                if status.phase is Phase.RUNNING:
                    return
                if status.phase is Phase.MISSING:  # never created (runner was down) or removed under us
                    self._start(record, stage)
                    return
                outcome = self._outcome(record, stage)  # it may have landed since the first look
                if outcome is None:
                    reason = status.reason or f"the {stage.value} stage finished without writing its outcome"
                    self._fail(record, reason)
                    return
            if not outcome.ok:
                self._fail(record, outcome.reason or f"the {stage.value} stage failed")
            elif stage is Stage.TOKENIZE:
                self._start(record, Stage.COUNT)  # RunnerUnavailable: no move, so a later pass counts the outcome
                record.move_to(State.COUNTING)
            else:
                record.move_to(State.SUCCEEDED)
                log.info("job succeeded", extra={"job_id": record.id})
            # Counted once: only on the pass that moves the job past this stage.
            self.observer.stage_finished(outcome)
            if not outcome.ok:
                return

    def _outcome(self, record: JobRecord, stage: Stage) -> Outcome | None:
        return stage_outcome(self.store.path(record.id), record, stage)

    def _plan(self, record: JobRecord) -> int:
        """The job's shards, planned once (a restarted first stage keeps the plan its partial results follow)."""
        directory = self.store.path(record.id)
        plan = shards.load_plan(directory)
        if plan is None:
            plan = shards.plan(directory / INPUT, self.limits.shard_bytes, self.limits.max_shards)
            shards.save_plan(directory, plan)
        record.shards = len(plan)
        return len(plan)

    def _fail(self, record: JobRecord, reason: str) -> None:
        record.move_to(State.FAILED, reason=reason)
        log.warning("job failed", extra={"job_id": record.id, "reason": reason})

    def _start(self, record: JobRecord, stage: Stage) -> None:
        env = dict(self.stage_env)
        env[signing.JOB_SECRET_ENV] = signing.job_secret(self.key, record.id)
        if record.traceparent:
            env["TRACEPARENT"] = record.traceparent
        try:
            count = self._plan(record) if stage is Stage.TOKENIZE else 1
            name = self.runner.start(record.id, stage, env, count)
        except OSError as error:  # the local runner could not even spawn it (or the plan could not be written)
            raise RunnerUnavailable(str(error)) from error
        record.stages[stage.value].job_name = name
        log.info("stage started", extra={"job_id": record.id, "stage": stage.value, "stage_job": name})

    def admit(self) -> None:
        """Start queued jobs, oldest first, while fewer than ``max_running_stages`` jobs run a stage. A job holds
        its slot from its first stage to its end; the count is read from the records on the shared volume under
        one lock there, so every worker and replica together keep to the cap. Lock order: this one, then a job's."""
        with self.store.admission():
            records = [record for job_id in self.store.ids() if (record := self.store.load(job_id)) is not None]
            try:
                busy = self.runner.active()
            except RunnerUnavailable as error:
                log.warning("runner unavailable; queued jobs wait", extra={"error": str(error)})
                return
            running = len(busy | {record.id for record in records if record.state in RUNNING_STAGE})
            for record in reversed(records):  # ids sort newest first
                if running >= self.limits.max_running_stages:
                    return
                if record.state is not State.QUEUED:
                    continue
                try:
                    with self._locked(record.id) as current:
                        if current.state is not State.QUEUED:
                            continue
                        self._start(current, Stage.TOKENIZE)
                        current.move_to(State.TOKENIZING)
                        self.store.save(current)
                except UnknownJob:
                    continue
                except RunnerUnavailable as error:
                    log.warning("runner unavailable; queued jobs wait", extra={"error": str(error)})
                    return
                running += 1
