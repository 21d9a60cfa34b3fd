"""What the coordinator reports as it moves jobs on: an ``Observer`` (the app's metrics, ``service.batch.web
.instruments``), or ``Unobserved`` (the stage processes, the tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from service.batch.formats import Outcome
from service.batch.states import JobRecord, State


class Observer(Protocol):
    """What the coordinator reports for metrics; called once per fact (under the job's lock)."""

    def stage_finished(self, outcome: Outcome) -> None: ...

    def job_finished(self, record: JobRecord) -> None: ...

    def jobs_by_state(self, counts: Mapping[State, int]) -> None: ...

    def shards_counted(self, shards: int, covered: int) -> None: ...


class Unobserved:
    def stage_finished(self, outcome: Outcome) -> None:
        pass

    def job_finished(self, record: JobRecord) -> None:
        pass

    def jobs_by_state(self, counts: Mapping[State, int]) -> None:
        pass

    def shards_counted(self, shards: int, covered: int) -> None:
        pass
