"""The batch API's views: uploads become jobs run as separate stages (``service.batch``), polled for their result."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, url_for
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag

from service import tracing, uploads
from service.analysis.web.schemas import TextOptions, WordcountResult
from service.batch import access
from service.batch.access import Gate, User, Verb
from service.batch.coordinator import Coordinator
from service.batch.errors import (
    ForgedEvent,
    MalformedEvent,
    NotFinished,
    OverQuota,
    StorageFull,
    TooManyJobs,
    UnsignedEvent,
)
from service.batch.runner import RunnerUnavailable
from service.batch.signing import EVENTS, SIGNATURE_HEADER
from service.batch.states import JobRecord, State
from service.batch.store import UnknownJob
from service.batch.web.schemas import JobDocument, JobEventReceipt, JobList, JobListQuery, JobPath, JobResultQuery
from service.core.current import current_settings
from service.core.schemas import problem_responses
from service.logs import rfc3339
from service.names import JOBS_PATH
from service.problems import Problem

# What batch's init_app keeps on ``app.extensions`` (none of them when FLASK_SVC_BATCH_RUNNER=off).
BATCH_EXTENSION = "flask_svc.batch"  # the Coordinator
BATCH_RECONCILER_EXTENSION = "flask_svc.batch_reconciler"
BATCH_ACCESS_EXTENSION = "flask_svc.batch_access"  # the access Gate (service.batch.access)
_EVENT_MAX_BYTES = 4096
_RETRY_AFTER_SECONDS = "5"
_RETRY_AFTER_BUSY_SECONDS = "30"  # an owner's jobs take about this long to make room
# An upload is only copied to the volume, so it is read a MiB at a time: gunicorn's body reader copies what it holds
# beyond each read on every read, so 16 KiB reads of a 64 MiB body cost the worker 0.4 CPU-s of copying alone.
_UPLOAD_READ_BYTES = 1024 * 1024

bp = APIBlueprint(
    "batch",
    __name__,
    url_prefix=JOBS_PATH,
    abp_tags=[Tag(name="batch", description="Analysis of large uploads as a pipeline of separate stages")],
)


def _coordinator() -> Coordinator:
    coordinator: Coordinator = current_app.extensions[BATCH_EXTENSION]
    return coordinator


# --- access: every route but the stages' callback (signed per job) is authenticated, then authorised ------------


def _gate() -> Gate:
    gate: Gate = current_app.extensions[BATCH_ACCESS_EXTENSION]
    return gate


def _access_problem(error: access.AccessError) -> Problem:
    if isinstance(error, access.MissingToken):
        return Problem(401, "unauthenticated", str(error), headers={"WWW-Authenticate": 'Bearer realm="flask-svc"'})
    if isinstance(error, access.RejectedToken):
        header = 'Bearer realm="flask-svc", error="invalid_token"'
        return Problem(401, "invalid_token", str(error), headers={"WWW-Authenticate": header})
    if isinstance(error, access.NotConfigured):
        return Problem(403, "batch_auth_not_configured", str(error))
    if isinstance(error, access.ReviewUnavailable):
        detail = f"access cannot be checked now: {error}"
        return Problem(503, "access_review_unavailable", detail, headers={"Retry-After": _RETRY_AFTER_SECONDS})
    return Problem(403, "forbidden", str(error))


def _caller(verb: Verb, *, everyone: bool = False) -> User:
    """The request's user, allowed to ``verb`` (on everyone's jobs with ``everyone``); a problem otherwise."""
    gate = _gate()
    try:
        user = gate.authenticate(request.headers.get("Authorization"))
        access.require(gate, user, verb, everyone=everyone)
    except access.AccessError as error:
        raise _access_problem(error) from None
    return user


def _owned(job_id: str, user: User, verb: Verb) -> None:
    """404 for a job that is not there or not ``user``'s — unless ``user`` may ``verb`` everyone's jobs, asked only
    then. The same answer either way, so ids of others' jobs cannot be probed."""
    record = _coordinator().store.load(job_id)
    if record is None:
        raise _unknown(job_id)
    if record.owner == user.name:
        return
    try:
        admin = _gate().allowed(user, verb, everyone=True)
    except access.AccessError as error:
        raise _access_problem(error) from None
    if not admin:
        raise _unknown(job_id)


def _time(moment: float | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def _document(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "state": record.state.value,
        "owner": record.owner,
        "created": _time(record.created),
        "updated": _time(record.updated or record.created),
        "bytes": record.bytes,
        "options": record.options,
        "reason": record.reason,
        "stages": {
            name: {"job_name": stage.job_name, "started": _time(stage.started), "finished": _time(stage.finished)}
            for name, stage in record.stages.items()
        },
        "result": url_for("batch.result", job_id=record.id),
        "progress": {"shards": record.shards, "shards_done": record.shards_done, "bytes_done": record.bytes_done},
    }


def _unknown(job_id: str) -> Problem:
    return Problem(404, "job_not_found", f"there is no job {job_id}")


def _unavailable(error: RunnerUnavailable) -> Problem:
    return Problem(
        503,
        "runner_unavailable",
        f"batch stages cannot be started now: {error}",
        headers={"Retry-After": _RETRY_AFTER_SECONDS},
    )


@bp.post(
    "",
    responses={202: JobDocument, **problem_responses(400, 401, 403, 408, 413, 415, 422, 429, 503, 507)},
    summary="Upload a text and analyse it as a batch job",
)
def create(query: TextOptions) -> Response:
    user = _caller(Verb.CREATE)  # before a byte of the body is read
    if request.mimetype not in ("text/plain", "multipart/form-data"):
        raise Problem(
            415,
            "unsupported_media_type",
            f"send the text as text/plain or multipart/form-data; got {request.mimetype or 'no content type'}",
        )
    # 413 on Content-Length, before a byte is read
    chunks = uploads.text_chunks(current_settings().batch_max_upload_bytes, _UPLOAD_READ_BYTES)
    try:
        record = _coordinator().create(
            chunks,
            query.model_dump(),
            tracing.current_traceparent(),
            owner=user.name,
            declared=request.content_length,
        )
    except RunnerUnavailable as error:
        raise _unavailable(error) from None
    except StorageFull:
        raise Problem(507, "insufficient_storage", "the shared volume has no room for this upload") from None
    except OverQuota as error:
        raise Problem(507, "storage_quota_exceeded", str(error), limit=error.limit) from None
    except TooManyJobs as error:
        raise Problem(
            429, "too_many_jobs", str(error), limit=error.limit, headers={"Retry-After": _RETRY_AFTER_BUSY_SECONDS}
        ) from None
    response = jsonify(_document(record))
    response.status_code = 202
    response.headers["Location"] = url_for("batch.get", job_id=record.id)
    return response


@bp.get("", responses={200: JobList, **problem_responses(401, 403, 503)}, summary="Batch jobs, newest first")
def index(query: JobListQuery) -> Response:
    user = _caller(Verb.LIST)
    owner = user.name if query.owner is None else query.owner
    if owner != user.name:  # someone else's, or everyone's (`*`): the admin grant
        _caller(Verb.LIST, everyone=True)
    page = _coordinator().page(query.limit, query.after, None if owner == "*" else owner)
    return jsonify(jobs=[_document(record) for record in page.jobs], next=page.next_after)


@bp.get(
    "/<job_id>", responses={200: JobDocument, **problem_responses(401, 403, 404, 503)}, summary="A batch job's state"
)
def get(path: JobPath) -> Response:
    _owned(path.job_id, _caller(Verb.GET), Verb.GET)
    try:
        return jsonify(_document(_coordinator().get(path.job_id)))
    except UnknownJob:
        raise _unknown(path.job_id) from None


@bp.get(
    "/<job_id>/result",
    responses={200: WordcountResult, **problem_responses(401, 403, 404, 409, 503)},
    summary="A finished job's word counts (the shape of /api/v1/wordcount)",
)
def result(path: JobPath, query: JobResultQuery) -> Response:
    _owned(path.job_id, _caller(Verb.GET), Verb.GET)
    try:
        outcome = _coordinator().result(path.job_id, query.limit)
    except UnknownJob:
        raise _unknown(path.job_id) from None
    except NotFinished as error:
        state = error.record.state
        detail = f"job {path.job_id} is {state.value}" + (
            f": {error.record.reason}" if state is State.FAILED else "; ask again when it has succeeded"
        )
        raise Problem(409, "job_not_finished", detail, state=state.value) from None
    return jsonify(
        bytes=outcome.bytes,
        tokens=outcome.tokens,
        unique=outcome.unique,
        counts=[{"word": word, "count": count} for word, count in outcome.counts],
        truncated=outcome.truncated,
        elapsed_ms=outcome.elapsed_ms,
    )


@bp.delete(
    "/<job_id>",
    responses={200: JobDocument, **problem_responses(401, 403, 404, 503)},
    summary="Cancel a job's stages and remove it with its files (the answer is its last state)",
)
def cancel(path: JobPath) -> Response:
    _owned(path.job_id, _caller(Verb.DELETE), Verb.DELETE)
    try:
        return jsonify(_document(_coordinator().cancel(path.job_id)))
    except UnknownJob:
        raise _unknown(path.job_id) from None
    except RunnerUnavailable as error:
        raise _unavailable(error) from None


@bp.post(
    f"/<job_id>/{EVENTS}",
    responses={200: JobEventReceipt, **problem_responses(400, 401, 403, 404, 411, 413)},
    summary="A stage reports its outcome (signed with its job's secret)",
)
def events(path: JobPath) -> Response:
    if request.content_length is None:
        raise Problem(411, "length_required", "send the event with a Content-Length")
    if request.content_length > _EVENT_MAX_BYTES:
        raise Problem(413, "payload_too_large", f"an event is at most {_EVENT_MAX_BYTES} bytes")
    body = request.get_data(cache=False)
    try:
        record = _coordinator().report(path.job_id, body, request.headers.get(SIGNATURE_HEADER))
    except UnknownJob:
        raise _unknown(path.job_id) from None
    except UnsignedEvent:
        raise Problem(
            401,
            "unsigned_event",
            f"sign the event with the job's secret ({SIGNATURE_HEADER})",
            headers={"WWW-Authenticate": SIGNATURE_HEADER},
        ) from None
    except ForgedEvent:
        raise Problem(403, "forged_event", "the signature does not match this job's secret") from None
    except MalformedEvent as error:
        raise Problem(400, "malformed_event", f"the event is not understood: {error}") from None
    return jsonify(state=record.state.value)
