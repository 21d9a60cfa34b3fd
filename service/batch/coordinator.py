"""The coordinator: accepts uploads, answers what a job has become, applies callbacks, cancels, reconciles (what moves
a job on is ``service.batch.progress``).

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.batch import formats, signing
from service.batch.errors import (
    ForgedEvent,
    NotFinished,
    OverQuota,
    StorageFull,
    TooManyJobs,
    UnsignedEvent,
)
from service.batch.events import parse_event
from service.batch.observer import Observer
from service.batch.progress import Limits, Progress
from service.batch.runner import Runner, RunnerUnavailable
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


@dataclass
class Coordinator(Progress):
    """The batch API's side: uploads in, jobs read, callbacks applied, jobs cancelled, the periodic round."""

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
