"""What the coordinator refuses, and why: each maps to one answer of the batch API (``service.batch.web.views``)."""

from __future__ import annotations

from service.batch.states import JobRecord


class NotFinished(Exception):
    def __init__(self, record: JobRecord) -> None:
        super().__init__(f"job {record.id} is {record.state.value}, not succeeded")
        self.record = record


class StorageFull(OSError):
    """The shared volume has no room for the upload."""


class OverQuota(Exception):
    """The upload would take the stored bytes past ``Limits.max_stored_bytes`` (507, nothing kept)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the jobs may keep at most {limit} bytes; delete finished jobs or wait for retention")
        self.limit = limit


class TooManyJobs(Exception):
    """The owner already has ``Limits.max_active_per_owner`` unfinished jobs (429)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} unfinished jobs per owner; wait for one to finish")
        self.limit = limit


class UnsignedEvent(Exception):
    pass


class ForgedEvent(Exception):
    pass


class MalformedEvent(ValueError):
    pass
