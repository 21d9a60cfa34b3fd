"""The API's request and response models.

The same pydantic models validate requests (flask-openapi3 for query strings, the handlers for JSON bodies) and
generate ``/openapi.json``, so the document and the behaviour cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_SCHEMAS: dict[tuple[Any, ...], dict[str, Any]] = {}


class QueryModel(BaseModel):
    """A query-string model. flask-openapi3 asks for the JSON schema on every request to read the field types; a
    class's schema never changes, so it is built once (this was a quarter of the CPU of a small analyze request)."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _SCHEMAS:
            _SCHEMAS[key] = super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(_SCHEMAS[key])


class TextOptions(QueryModel):
    lowercase: bool = Field(True, description="Fold words to lower case before counting.")
    min_length: int = Field(1, ge=1, le=100, description="Ignore words shorter than this many characters.")
    stopwords: Literal["none", "en"] = Field("none", description="Drop common words of this language.")


class AnalyzeQuery(TextOptions):
    top: int = Field(10, ge=0, le=1000, description="How many of the most frequent words to return.")


class TokenizeQuery(TextOptions):
    limit: int = Field(100, ge=1, le=10000, description="How many tokens to return, from the start of the text.")


class WordcountQuery(TextOptions):
    limit: int = Field(10000, ge=1, le=100000, description="How many word counts to return, most frequent first.")


class TextBody(BaseModel):
    """The ``application/json`` form of a text upload."""

    text: str = Field(description="The text to analyse.")


class WordFrequency(BaseModel):
    word: str
    count: int = Field(ge=1)


class AnalyzeResult(BaseModel):
    bytes: int = Field(ge=0, description="Size of the text in UTF-8 bytes.")
    tokens: int = Field(ge=0, description="Words counted (after the filters).")
    unique: int = Field(ge=0, description="Distinct words.")
    top: list[WordFrequency]
    elapsed_ms: float = Field(ge=0)


class TokenizeResult(BaseModel):
    bytes: int = Field(ge=0)
    total: int = Field(ge=0, description="All words in the text.")
    tokens: list[str] = Field(description="The first `limit` words, in order.")
    truncated: bool = Field(description="True when the text had more words than returned.")
    elapsed_ms: float = Field(ge=0)


class WordcountResult(BaseModel):
    bytes: int = Field(ge=0)
    tokens: int = Field(ge=0)
    unique: int = Field(ge=0)
    counts: list[WordFrequency] = Field(description="Most frequent first, ties alphabetical.")
    truncated: bool = Field(description="True when there were more distinct words than `limit`.")
    elapsed_ms: float = Field(ge=0)


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="Stable machine-readable reason.")
    instance: str | None = None


class ModelIdentity(BaseModel):
    """The model a replica serves (FLASK_SVC_MODEL_PATH)."""

    name: str
    version: str
    sha256: str


class Health(BaseModel):
    status: Literal["ok", "starting", "draining", "disabled"]
    reason: str | None = None
    model: ModelIdentity | None = Field(None, description="The model loaded, when the service serves one.")


class Version(BaseModel):
    version: str
    commit: str
    build_date: str
    model: ModelIdentity | None = Field(None, description="The model served, when there is one.")


class Info(BaseModel):
    # KServe's V1 liveness check reads this member of GET / (its client's is_server_live).
    status: Literal["alive"] = Field(default="alive", description="Always alive: the process answers.")
    hostname: str
    pod: str
    namespace: str | None
    node: str | None
    python: str
    workers: int
    threads: int
    pid: int
    uptime_seconds: float
    # The build, as podinfo's / shows it, and the model served: /version's facts, so one call tells what runs where.
    version: str
    commit: str
    model: ModelIdentity | None = Field(None, description="The model served, when there is one.")


def problem_responses(*statuses: int) -> dict[str | int, Any]:
    """OpenAPI response entries for error statuses, all answered as problem+json."""
    schema = ProblemDetail.model_json_schema()
    return {
        status: {
            "description": "Problem details (RFC 9457)",
            "content": {"application/problem+json": {"schema": schema}},
        }
        for status in statuses
    }


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
    state: Literal["queued", "tokenizing", "counting", "succeeded", "failed", "cancelled"]
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
