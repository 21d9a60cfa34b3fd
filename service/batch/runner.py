"""The one small interface between the coordinator and whatever runs the stages.

A runner starts a stage for a job (idempotently: starting what already exists is not an error), says how a stage
is doing, and stops everything of a job. It keeps no state of its own that matters: the local runner's is on the
volume, the Kubernetes runner's in the Job objects.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from service.batch.states import Stage


class Phase(enum.StrEnum):
    MISSING = "missing"  # never started, or its traces are gone: start it (again)
    RUNNING = "running"  # pending or running
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class StageStatus:
    phase: Phase
    reason: str | None = None


class RunnerUnavailable(Exception):
    """The runner cannot take work now (the Kubernetes API is unreachable): try again later."""


class Runner(Protocol):
    name: str

    def check(self) -> None:
        """Raise ``RunnerUnavailable`` when a new job could not be started now."""

    def stage_name(self, job_id: str, stage: Stage) -> str:
        """The deterministic name of a job's stage (a Kubernetes Job name, a local process label)."""

    def start(self, job_id: str, stage: Stage, env: Mapping[str, str], shards: int = 1) -> str:
        """Start the stage unless it exists; returns its name. The tokenize stage maps ``shards`` shards (the plan
        is on the volume), the count stage merges them."""

    def status(self, job_id: str, stage: Stage) -> StageStatus: ...

    def active(self) -> set[str]:
        """Ids of the jobs with a stage the runner still runs by its own account (a Job not yet finished), which
        may outlast the outcome on the volume; admission counts them with the records'."""

    def cancel(self, job_id: str) -> None:
        """Stop and remove every stage of the job; what is already gone is fine."""
