"""The coordinator: accepts uploads, moves jobs along the pipeline, answers what a job has become.

Every decision is made from what the volume and the runner say, under the job's lock, so any replica (or several
at once) can advance any job and a lost callback or a restarted coordinator changes nothing: the next look — a
request about the job, a stage's callback, or the periodic reconcile — finds the stage's outcome and moves on.
Stage names are deterministic, so a stage started twice is started once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.batch import formats, shards, signing
from service.batch.errors import (
    ForgedEvent,
    NotFinished,
    OverQuota,
    StorageFull,
    TooManyJobs,
    UnsignedEvent,
)
from service.batch.events import parse_event
from service.batch.formats import Outcome
from service.batch.observer import Observer, Unobserved
from service.batch.outcomes import stage_outcome
from service.batch.runner import Phase, Runner, RunnerUnavailable
from service.batch.stages import map_outcome_name
from service.batch.states import COMMAND, RUNNING_STAGE, JobRecord, Stage, State
from service.batch.store import INPUT, JobStore, UnknownJob, new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    record: JobRecord
    bytes: int
    tokens: int
    unique: int
    counts: list[tuple[str, int]]
    truncated: bool
    elapsed_ms: float


@dataclass(frozen=True)
class Page:
    jobs: list[JobRecord]
    next_after: str | None


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
class Coordinator:
    store: JobStore
    runner: Runner
    key: bytes
    stage_env: Mapping[str, str]  # what every stage needs besides its job's secret and trace
    observer: Observer = field(default_factory=Unobserved)
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def open(
        cls,
        root: Path,
        runner: Runner,
        key_file: str,
        stage_env: Mapping[str, str],
        observer: Observer,
        limits: Limits | None = None,
    ) -> Coordinator:
        store = JobStore(root)
        store.ensure()
        return cls(store, runner, signing.load_key(root, key_file), stage_env, observer, limits or Limits())

    # --- creating -------------------------------------------------------------------------------------------------

    def create(
        self,
        chunks: Iterable[bytes],
        options: Mapping[str, Any],
        traceparent: str | None,
        owner: str = "",
        declared: int | None = None,
    ) -> JobRecord:
        """Keep the upload and queue its job; it starts when a stage slot is free (``admit``). Any error while the
        body arrives (too large, cut short, no room, over the stored-bytes cap) removes what was written and
        propagates: nothing of a refused upload is kept. ``declared`` is the body's announced length, checked
        against the cap before a byte is read."""
        self.runner.check()  # refuse before reading a byte when no stage could start
        self._check_owner(owner)
        room = self.limits.max_stored_bytes - self.store.stored_bytes()
        if declared is not None and declared > room:
            raise OverQuota(self.limits.max_stored_bytes)
        job_id = new_id()
        size = 0
        try:
            directory = self.store.incoming(job_id)
            with formats.atomic_writer(directory / INPUT, binary=True) as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > room:  # concurrent uploads each see the others' bytes written so far
                        raise OverQuota(self.limits.max_stored_bytes)
                    out.write(chunk)
            now = time.time()
            record = JobRecord(
                id=job_id,
                state=State.QUEUED,
                created=now,
                updated=now,
                options=dict(options),
                bytes=size,
                owner=owner,
            )
            record.traceparent = traceparent
            self.store.commit(record)
        except OSError as error:
            self.store.discard_incoming(job_id)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull(error.errno, "the shared volume is full") from None
            raise
        except BaseException:
            self.store.discard_incoming(job_id)
            raise
        log.info("job queued", extra={"job_id": job_id, "bytes": size})
        self.admit()
        return self.advance(job_id)

    def _check_owner(self, owner: str) -> None:
        active = 0
        for job_id in self.store.ids():
            record = self.store.load(job_id)
            if record is not None and record.owner == owner and not record.state.terminal:
                active += 1
                if active >= self.limits.max_active_per_owner:
                    raise TooManyJobs(self.limits.max_active_per_owner)

    # --- reading --------------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        """The job as it is now: advanced first (a queued one admitted if there is room), so a lost callback never
        leaves a reader waiting."""
        record = self.advance(job_id)
        if record.state is State.QUEUED:
            self.admit()
            record = self.advance(job_id)
        return record

    def page(self, limit: int, after: str | None = None, owner: str | None = None) -> Page:
        """Jobs newest first; only ``owner``'s when one is given (None: everyone's)."""
        ids = self.store.ids()
        if after:
            ids = [job_id for job_id in ids if job_id < after]
        jobs: list[JobRecord] = []
        for job_id in ids:
            record = self.store.load(job_id)
            if record is None or (owner is not None and record.owner != owner):
                continue
            if len(jobs) == limit:
                return Page(jobs, jobs[-1].id)
            jobs.append(record)
        return Page(jobs, None)

    def result(self, job_id: str, limit: int) -> Result:
        record = self.get(job_id)
        if record.state is not State.SUCCEEDED:
            raise NotFinished(record)
        tokenized = self._outcome(record, Stage.TOKENIZE)
        counted = self._outcome(record, Stage.COUNT)
        if tokenized is None or counted is None:
            raise NotFinished(record)
        busy = sum(outcome.finished - outcome.started for outcome in (tokenized, counted))
        ranked = formats.read_counts(self.store.path(job_id) / formats.COUNTS, limit)
        return Result(
            record=record,
            bytes=counted.bytes,
            tokens=counted.tokens,
            unique=counted.unique,
            counts=ranked,
            truncated=counted.unique > limit,
            elapsed_ms=round(busy * 1000, 3),
        )

    # --- changing -------------------------------------------------------------------------------------------------

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

    def report(self, job_id: str, body: bytes, signature: str | None) -> JobRecord:
        """A stage's callback: authenticated by its job's secret, applied at most once, then the job advanced."""
        if self.store.load(job_id) is None:
            raise UnknownJob(job_id)
        if not signature:
            raise UnsignedEvent(job_id)
        if not signing.verify(signing.job_secret(self.key, job_id), body, signature):
            raise ForgedEvent(job_id)
        stage, ok, reason, index = parse_event(body, job_id)
        written = map_outcome_name(index) if index is not None else f"{COMMAND[stage]}.json"
        with self._locked(job_id) as record:
            # A failure the stage could not write down (a full volume) is known only from its report.
            if RUNNING_STAGE.get(record.state) is stage and not ok and not (self.store.path(job_id) / written).exists():
                self._fail(record, str(reason or f"the {stage.value} stage failed"))
                self.store.save(record)
                self.observer.job_finished(record)
                return record
        return self.advance(job_id)

    def cancel(self, job_id: str) -> JobRecord:
        """Stop the job's stages and remove the job, files and record; returns its last state (``cancelled`` when
        it was still running). Afterwards the job is unknown, as a deleted resource should be."""
        with self._locked(job_id) as record:
            self.runner.cancel(job_id)
            if not record.state.terminal:
                record.move_to(State.CANCELLED)
                self.observer.job_finished(record)
            self.store.remove(job_id)
            log.info("job deleted", extra={"job_id": job_id, "state": record.state.value})
        self.admit()
        return record

    # --- reconciling ----------------------------------------------------------------------------------------------

    def reconcile(self, now: float | None = None) -> None:
        """Advance every unfinished job, start queued ones, remove what retention says is old, and publish the
        count by state."""
        moment = time.time() if now is None else now
        for job_id in self.store.ids():
            record = self.store.load(job_id)
            if record is not None and not record.state.terminal:
                with contextlib.suppress(UnknownJob):
                    self.advance(job_id)
        self.admit()
        counts = dict.fromkeys(State, 0)
        for job_id in self.store.ids():
            record = self.store.load(job_id)
            if record is None:
                continue
            if record.state.terminal and moment - (record.updated or record.created) > self.limits.retention_seconds:
                self._expire(job_id)
                continue
            counts[record.state] += 1
        for job_id in self.store.stale_incoming(moment - self.limits.incoming_retention_seconds):
            self.store.discard_incoming(job_id)
            log.info("abandoned upload removed", extra={"job_id": job_id})
        self.observer.jobs_by_state(counts)

    def _expire(self, job_id: str) -> None:
        try:
            with self._locked(job_id) as record:
                if not record.state.terminal:
                    return
                self.runner.cancel(job_id)  # its finished stage Jobs too, so they stop counting against a quota
                self.store.remove(job_id)
        except (UnknownJob, RunnerUnavailable):
            return  # gone already, or the next round tries again
        log.info("finished job removed (retention)", extra={"job_id": job_id, "state": record.state.value})
