"""The batch API's request and response models (``/api/v1/jobs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from service.analysis.web.schemas import TextOptions
from service.batch.states import State
from service.core.schemas import QueryModel

if TYPE_CHECKING:
    StateName = str
else:  # the document lists the states as an enum of strings, from the one definition
    StateName = Literal[tuple(state.value for state in State)]


class JobPath(BaseModel):
    job_id: str = Field(max_length=64, description="The job's id, as `POST /api/v1/jobs` returned it.")


class JobListQuery(QueryModel):
    limit: int = Field(20, ge=1, le=100, description="How many jobs to return, newest first.")
    after: str | None = Field(
        None, pattern=r"^[0-9a-f]{21}$", description="Continue after this job id (the previous page's `next`)."
    )
    owner: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="Whose jobs: a username, or `*` for everyone's; another's needs the admin grant (`list` on "
        "`analysisjobs/all`). Unset: the caller's own.",
    )


class JobResultQuery(QueryModel):
    limit: int = Field(10000, ge=1, le=100000, description="How many word counts to return, most frequent first.")


class JobStage(BaseModel):
    job_name: str | None = Field(description="The stage's Job (or local process) name, once started.")
    started: str | None = Field(description="RFC 3339, when the pipeline entered this stage.")
    finished: str | None = Field(description="RFC 3339, when the pipeline left it.")


class JobProgress(BaseModel):
    shards: int = Field(ge=0, description="Shards of the upload's plan (0 until its first stage starts).")
    shards_done: int = Field(ge=0, description="Shards counted so far (their partial results written).")
    bytes_done: int = Field(ge=0, description="Bytes of the upload those shards covered.")


class JobDocument(BaseModel):
    id: str
    state: StateName
    owner: str = Field(description="Who created the job (the authenticated username; empty without authentication).")
    created: str = Field(description="RFC 3339.")
    updated: str = Field(description="RFC 3339.")
    bytes: int = Field(ge=0, description="Size of the upload.")
    options: TextOptions
    reason: str | None = Field(description="Why the job failed.")
    stages: dict[str, JobStage] = Field(description="`tokenize` and `count`.")
    result: str = Field(description="Where the result will be.")
    progress: JobProgress = Field(description="The tokenize stage's shards: how many, how many done, bytes covered.")


class JobList(BaseModel):
    jobs: list[JobDocument]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last one.")


class JobEventReceipt(BaseModel):
    state: str
