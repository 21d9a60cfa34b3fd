"""Where a job lives on the shared volume: one directory per job, named by its id.

```
<root>/<id>/job.json        the JobRecord (written by the coordinator, under the job's lock)
<root>/<id>/input.txt       the upload
<root>/<id>/tokens.txt …    the stages' outputs and outcomes (see ``formats``)
<root>/.incoming/<id>/      an upload still arriving: renamed to <root>/<id> once whole, removed otherwise
```

Ids sort by creation time (milliseconds, then random bits), so a directory listing gives the newest first without
reading any file. Every replica and every stage sees the same files; an advisory lock per job (``flock``) makes
each state change happen once even when several replicas try at the same moment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from service.batch.formats import Outcome, read_json, write_json
from service.batch.states import JobRecord, Stage
from service.privatedirs import DIRECTORY_MODE, FILE_MODE, ensure_directory

INPUT = "input.txt"
RECORD = "job.json"
_LOCK = ".lock"
_INCOMING = ".incoming"
_ADMISSION_LOCK = ".admission.lock"
_ID = re.compile(r"[0-9a-f]{21}")


class UnknownJob(LookupError):
    """No job has this id (or it was deleted)."""


def new_id() -> str:
    """11 hex digits of milliseconds since the epoch, then 40 random bits: sortable, unguessable enough to shard."""
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


def valid_id(job_id: str) -> bool:
    return _ID.fullmatch(job_id) is not None


class JobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """The data directory and its ``.incoming`` as private directories (raises ``NotPrivate`` otherwise)."""
        ensure_directory(self.root)
        ensure_directory(self.root / _INCOMING)

    def path(self, job_id: str) -> Path:
        if not valid_id(job_id):
            raise UnknownJob(job_id)
        return self.root / job_id

    def incoming(self, job_id: str) -> Path:
        directory = self.root / _INCOMING / job_id
        directory.mkdir(DIRECTORY_MODE)  # the upload and the stages' files: this service's user only
        return directory

    def commit(self, record: JobRecord) -> None:
        """Publish a whole upload with its record: before this, no listing or lookup can see the job."""
        staging = self.root / _INCOMING / record.id
        write_json(staging / RECORD, record.to_json())
        os.rename(staging, self.path(record.id))

    def discard_incoming(self, job_id: str) -> None:
        if job_id not in ("", ".", ".."):
            shutil.rmtree(self.root / _INCOMING / job_id, ignore_errors=True)

    def load(self, job_id: str) -> JobRecord | None:
        if not valid_id(job_id):
            return None
        document = read_json(self.root / job_id / RECORD)
        return JobRecord.from_json(document) if document else None

    def save(self, record: JobRecord) -> None:
        write_json(self.path(record.id) / RECORD, record.to_json())

    @contextlib.contextmanager
    def locked(self, job_id: str) -> Iterator[None]:
        """Exclusive across processes and replicas sharing the volume (flock; NFSv4 and local disks honour it)."""
        try:
            descriptor = os.open(self.path(job_id) / _LOCK, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
            handle = open(descriptor, "a")  # noqa: SIM115 — closed below; never creates the directory
        except FileNotFoundError:
            raise UnknownJob(job_id) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def admission(self) -> Iterator[None]:
        """One lock for the whole volume: held while counting running jobs and starting queued ones."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(self.root / _ADMISSION_LOCK, flags, 0o600), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def stored_bytes(self) -> int:
        """Bytes the jobs keep: every file under the root (published jobs and uploads still arriving)."""
        total = 0
        pending = [self.root]
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except OSError:  # removed while we looked
                continue
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
        return total

    def stale_incoming(self, before: float) -> list[str]:
        """Uploads in ``.incoming/`` nothing has written to since ``before`` (their worker was killed)."""
        stale = []
        try:
            names = os.listdir(self.root / _INCOMING)
        except FileNotFoundError:
            return []
        for name in names:
            directory = self.root / _INCOMING / name
            try:
                touched = max(
                    [
                        directory.lstat().st_mtime,
                        *(entry.stat(follow_symlinks=False).st_mtime for entry in os.scandir(directory)),
                    ]
                )
            except OSError:
                continue
            if touched < before:
                stale.append(name)
        return stale

    def ids(self) -> list[str]:
        """Every published job, newest first."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted((name for name in names if valid_id(name)), reverse=True)

    def outcome(self, job_id: str, stage: Stage) -> Outcome | None:
        document = read_json(self.path(job_id) / f"{stage.value}.json")
        return Outcome.from_json(document) if document else None

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.path(job_id), ignore_errors=True)
