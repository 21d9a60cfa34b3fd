"""A stage's outcome as the volume holds it: the merge's one file, or the map's per-shard files taken together."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from service.batch import formats, shards
from service.batch.formats import Outcome
from service.batch.stages import PERMANENT_EXIT_CODES, map_outcome_name
from service.batch.states import COMMAND, JobRecord, Stage


def stage_outcome(directory: Path, record: JobRecord, stage: Stage) -> Outcome | None:
    """The stage's outcome once it is over, under the API's name (``tokenize``: every shard's map; ``count``:
    the merge); None while it runs. The map is over at its first permanent failure — the lowest such index's
    reason — or when every shard succeeded (a failure worth a retry waits for the runner's rerun or verdict).
    Reading it refreshes the job's progress."""
    if stage is Stage.COUNT:
        document = formats.read_json(directory / f"{COMMAND[stage]}.json")
        return dataclasses.replace(Outcome.from_json(document), stage=stage.value) if document else None
    plan = shards.load_plan(directory)
    if plan is None:
        return None
    record.shards = len(plan)
    record.shards_done, record.bytes_done = shards.progress(directory, plan)
    maps = []
    for shard in plan:  # in index order: the lowest shard that failed for good gives the reason
        document = formats.read_json(directory / map_outcome_name(shard.index))
        outcome = Outcome.from_json(document) if document else None
        if outcome is not None and not outcome.ok and outcome.exit_code in PERMANENT_EXIT_CODES:
            return dataclasses.replace(outcome, stage=stage.value)  # its reason names the upload's offset
        maps.append(outcome)
    if not all(outcome is not None and outcome.ok for outcome in maps):
        return None
    done = [outcome for outcome in maps if outcome is not None]
    return Outcome(
        stage=stage.value,
        ok=True,
        exit_code=0,
        bytes=sum(outcome.bytes for outcome in done),
        tokens=sum(outcome.tokens for outcome in done),
        unique=max((outcome.unique for outcome in done), default=0),  # the merge knows the whole's
        started=min((outcome.started for outcome in done), default=0.0),
        finished=max((outcome.finished for outcome in done), default=0.0),
        peak_rss_kib=max((outcome.peak_rss_kib for outcome in done), default=0),
    )
