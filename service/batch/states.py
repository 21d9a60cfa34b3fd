"""The batch job's life: which state follows which, and the record kept for each job.

A job moves ``queued → tokenizing → counting → succeeded``; any live state may end in ``failed`` or ``cancelled``.
The record is plain data that round-trips through JSON: it lives on the shared volume, never in a worker's memory,
so any replica can read it and move it on.
"""

from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field
from typing import Any


class State(enum.StrEnum):
    QUEUED = "queued"
    TOKENIZING = "tokenizing"
    COUNTING = "counting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


class Stage(enum.StrEnum):
    TOKENIZE = "tokenize"
    COUNT = "count"


# What runs each stage of the API's vocabulary (``python -m service.batch <command>``): the sharded pipeline's map
# over every shard of the plan (the tokenize stage, fused with counting: measured cheaper, see docs/batch.md
# "Shards"), then the merge of the partial results (the count stage).
MAP = "map"
MERGE = "merge"
COMMAND = {Stage.TOKENIZE: MAP, Stage.COUNT: MERGE}


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
# The pipeline's forward path; failing and cancelling are allowed from every live state.
_FORWARD = {State.QUEUED: State.TOKENIZING, State.TOKENIZING: State.COUNTING, State.COUNTING: State.SUCCEEDED}
# The stage whose outcome a live state waits for.
RUNNING_STAGE = {State.TOKENIZING: Stage.TOKENIZE, State.COUNTING: Stage.COUNT}


class InvalidTransition(ValueError):
    def __init__(self, current: State, wanted: State) -> None:
        super().__init__(f"a {current} job cannot become {wanted}")
        self.current = current
        self.wanted = wanted


def allowed(current: State, wanted: State) -> bool:
    if current.terminal:
        return False
    return wanted in (State.FAILED, State.CANCELLED) or _FORWARD.get(current) == wanted


@dataclass
class StageRecord:
    job_name: str | None = None
    started: float | None = None
    finished: float | None = None


@dataclass
class JobRecord:
    id: str
    state: State
    created: float
    options: dict[str, Any]
    bytes: int = 0
    updated: float = 0.0
    reason: str | None = None
    traceparent: str | None = None
    # The authenticated username that created the job; "" when the service runs without authentication.
    owner: str = ""
    # The map stage's progress: shards in the plan, shards with their partial result, and the bytes those covered.
    shards: int = 0
    shards_done: int = 0
    bytes_done: int = 0
    stages: dict[str, StageRecord] = field(default_factory=lambda: {stage.value: StageRecord() for stage in Stage})

    def move_to(self, wanted: State, *, reason: str | None = None, now: float | None = None) -> None:
        """Change state along an allowed edge; a stage the new state runs gets its start time."""
        if not allowed(self.state, wanted):
            raise InvalidTransition(self.state, wanted)
        moment = time.time() if now is None else now
        finishing = RUNNING_STAGE.get(self.state)
        if finishing is not None and self.stages[finishing].finished is None:
            self.stages[finishing].finished = moment
        starting = RUNNING_STAGE.get(wanted)
        if starting is not None:
            self.stages[starting].started = moment
        self.state = wanted
        self.reason = reason if wanted is State.FAILED else self.reason
        self.updated = moment

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["state"] = self.state.value
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> JobRecord:
        stages = {name: StageRecord(**values) for name, values in document.get("stages", {}).items()}
        for stage in Stage:
            stages.setdefault(stage.value, StageRecord())
        return cls(
            id=str(document["id"]),
            state=State(document["state"]),
            created=float(document["created"]),
            options=dict(document.get("options") or {}),
            bytes=int(document.get("bytes", 0)),
            updated=float(document.get("updated", 0.0)),
            reason=document.get("reason"),
            traceparent=document.get("traceparent"),
            owner=str(document.get("owner") or ""),
            shards=int(document.get("shards", 0)),
            shards_done=int(document.get("shards_done", 0)),
            bytes_done=int(document.get("bytes_done", 0)),
            stages=stages,
        )
