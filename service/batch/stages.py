"""The stages, run as their own processes (``python -m service.batch tokenize|count|map|merge <id> [<index>]``).

Each reads its input from the job's directory and streams it through ``service.analysis`` with bounded memory:
tokenize holds one chunk and the tokenizer's carry, count holds one batch of words and the vocabulary (capped by
``FLASK_SVC_MAX_VOCABULARY``). Outputs are written atomically, then the outcome file, then the stage reports to
the coordinator's callback (best effort: the coordinator also reconciles from the files and the runner).

``map`` and ``merge`` are the sharded pipeline (``shards``): map counts one shard of the plan in ``shards.json``
(written by whoever planned it) into its partial result, outcome ``map-<index>.json``; merge combines every
shard's partial result into ``counts.tsv``, outcome ``merge.json``.
"""

from __future__ import annotations

import enum
import errno
import json
import logging
import resource
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from service.analysis import AnalysisOptions, VocabularyTooLarge, WordCount
from service.analysis.pipeline import InvalidText, stream_words
from service.batch import formats, shards
from service.batch.formats import Outcome
from service.batch.signing import SIGNATURE_HEADER, event_url, sign
from service.batch.states import MAP, MERGE, Stage
from service.batch.store import INPUT, JobStore

log = logging.getLogger("service.batch.stage")
_CALLBACK_ATTEMPTS = 3


class ExitCode(enum.IntEnum):
    """What a stage's exit status means; the runners fail a job for good on the permanent ones."""

    OK = 0
    UNEXPECTED = 1  # a bug or a transient fault: worth a retry
    USAGE = 2
    BAD_INPUT = 3  # not UTF-8, too many distinct words: a retry would fail the same way
    STORAGE = 4  # the volume refused a write (full, read-only)
    NO_JOB = 5  # the job or its input is gone (cancelled or removed)


PERMANENT_EXIT_CODES = (ExitCode.BAD_INPUT, ExitCode.STORAGE, ExitCode.NO_JOB)


class StageFailed(Exception):
    def __init__(self, code: ExitCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class StageContext:
    store: JobStore
    job_id: str
    max_vocabulary: int
    callback_url: str  # the service's base URL; empty: no callback
    secret: str


Work = Callable[[Path, AnalysisOptions, StageContext, Outcome], None]


def run(stage: Stage, context: StageContext) -> ExitCode:
    """Run one stage and record its outcome; never raises."""
    return _run(stage.value, f"{stage.value}.json", _tokenize if stage is Stage.TOKENIZE else _count, context)


def run_map(context: StageContext, index: int) -> ExitCode:
    """Count shard ``index`` of the job's plan into its partial result; never raises."""
    return _run(MAP, map_outcome_name(index), partial(_map, index), context, index)


def run_merge(context: StageContext) -> ExitCode:
    """Merge every shard's partial result into ``counts.tsv``; never raises."""
    return _run(MERGE, f"{MERGE}.json", _merge, context)


def map_outcome_name(index: int) -> str:
    return f"{MAP}-{index:05d}.json"


def _run(name: str, outcome_name: str, work: Work, context: StageContext, index: int | None = None) -> ExitCode:
    started = time.time()
    directory = context.store.path(context.job_id)
    outcome = Outcome(stage=name, ok=False, exit_code=ExitCode.UNEXPECTED, started=started)
    try:
        record = context.store.load(context.job_id)
        if record is None:
            raise StageFailed(ExitCode.NO_JOB, f"job {context.job_id} does not exist")
        options = AnalysisOptions(**record.options)
        work(directory, options, context, outcome)
        outcome.ok, outcome.exit_code = True, ExitCode.OK
    except StageFailed as failure:
        outcome.exit_code, outcome.reason = failure.code, failure.reason
    except OSError as error:
        outcome.exit_code, outcome.reason = ExitCode.STORAGE, _storage_reason(error)
    except Exception as error:  # report it rather than die silently: the job must end, not hang
        log.exception("stage crashed", extra={"job_id": context.job_id, "stage": name})
        outcome.reason = f"{name} stage crashed: {type(error).__name__}: {error}"
    outcome.finished = time.time()
    outcome.peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    _record(directory / outcome_name, outcome, context)
    _report(outcome, context, index)
    return ExitCode(outcome.exit_code)


def _storage_reason(error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the shared volume is full (no space left on device)"
    if error.errno == errno.ELOOP:  # O_NOFOLLOW: something planted a symbolic link among the job's files
        return f"{error.filename or 'a file of the job'} is a symbolic link: a stage reads only the job's own files"
    if error.errno == errno.ENOENT:
        return f"a file of the job is gone: {error.filename}"
    return f"the shared volume refused a write: {error.strerror or error}"


def _tokenize(directory: Path, options: AnalysisOptions, context: StageContext, outcome: Outcome) -> None:
    source = directory / INPUT
    if not source.exists():
        raise StageFailed(ExitCode.NO_JOB, "the upload is gone (job cancelled?)")
    with formats.atomic_writer(directory / formats.TOKENS) as out:

        def consume(words: list[str]) -> None:
            outcome.tokens += len(words)
            formats.write_words(out, words)

        try:
            stats = stream_words(formats.read_chunks(source), options.tokenizer(), consume)
        except InvalidText as error:
            raise _not_utf8(error) from None
    outcome.bytes = stats.bytes


def _not_utf8(error: InvalidText) -> StageFailed:
    return StageFailed(ExitCode.BAD_INPUT, f"the upload is not valid UTF-8 (first bad byte at offset {error.offset})")


def _count(directory: Path, options: AnalysisOptions, context: StageContext, outcome: Outcome) -> None:
    source = directory / formats.TOKENS
    if not source.exists():
        raise StageFailed(ExitCode.NO_JOB, "the tokenize stage's output is gone (job cancelled?)")
    counts = WordCount(context.max_vocabulary)
    try:
        for batch in formats.read_word_batches(source):
            counts.add(batch)
    except VocabularyTooLarge as error:
        raise StageFailed(ExitCode.BAD_INPUT, str(error)) from None
    with formats.atomic_writer(directory / formats.COUNTS) as out:
        formats.write_counts(out, counts.most_common())
    tokenized = context.store.outcome(context.job_id, Stage.TOKENIZE)
    outcome.bytes = tokenized.bytes if tokenized else 0
    outcome.tokens, outcome.unique = counts.total, counts.unique


def _map(index: int, directory: Path, options: AnalysisOptions, context: StageContext, outcome: Outcome) -> None:
    source = directory / INPUT
    plan = shards.load_plan(directory)
    if plan is None or not source.exists():
        raise StageFailed(ExitCode.NO_JOB, "the upload or its shard plan is gone (job cancelled?)")
    if not 0 <= index < len(plan):
        raise StageFailed(ExitCode.USAGE, f"no shard {index}: the plan has {len(plan)}")
    try:
        done = shards.map_shard(source, directory, plan[index], options, context.max_vocabulary)
    except InvalidText as error:
        raise _not_utf8(error) from None
    except VocabularyTooLarge as error:
        raise StageFailed(ExitCode.BAD_INPUT, str(error)) from None
    outcome.bytes, outcome.tokens, outcome.unique = done.bytes, done.words, done.unique


def _merge(directory: Path, options: AnalysisOptions, context: StageContext, outcome: Outcome) -> None:
    plan = shards.load_plan(directory)
    if plan is None:
        raise StageFailed(ExitCode.NO_JOB, "the shard plan is gone (job cancelled?)")
    missing = [shard.index for shard in plan if not shards.partial_path(directory, shard.index).exists()]
    if missing:
        raise StageFailed(ExitCode.UNEXPECTED, f"shards without a partial result yet: {missing[:10]}")
    try:
        merged = shards.merge(directory, plan, context.max_vocabulary)
    except VocabularyTooLarge as error:
        raise StageFailed(ExitCode.BAD_INPUT, str(error)) from None
    except shards.StalePartial as error:
        raise StageFailed(ExitCode.UNEXPECTED, str(error)) from None  # its map must run again
    outcome.bytes, outcome.tokens, outcome.unique = merged.bytes, merged.words, merged.unique


def _record(path: Path, outcome: Outcome, context: StageContext) -> None:
    try:
        formats.write_json(path, outcome.to_json())
    except OSError as error:  # a full volume may refuse even this; the callback still carries the reason
        log.warning("could not write the outcome", extra={"job_id": context.job_id, "error": str(error)})


def event_body(job_id: str, outcome: Outcome, index: int | None = None) -> bytes:
    """The callback's JSON; a map stage's names its shard (``index``)."""
    event: dict[str, object] = {"job": job_id, "stage": outcome.stage, "ok": outcome.ok, "reason": outcome.reason}
    if index is not None:
        event["index"] = index
    return json.dumps(event, separators=(",", ":")).encode()


def _report(
    outcome: Outcome, context: StageContext, index: int | None = None, sleep: Callable[[float], None] = time.sleep
) -> None:
    if not context.callback_url:
        return
    body = event_body(context.job_id, outcome, index)
    url = event_url(context.callback_url, context.job_id)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(context.secret, body)}
    for attempt in range(_CALLBACK_ATTEMPTS):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10):  # noqa: S310
                return
        except urllib.error.HTTPError as error:
            if error.code < 500:  # refused for good; reconciliation still sees the outcome file
                log.warning("callback refused", extra={"job_id": context.job_id, "status": error.code})
                return
        except OSError as error:
            log.warning("callback failed", extra={"job_id": context.job_id, "error": str(error)})
        sleep(0.5 * 2**attempt)
