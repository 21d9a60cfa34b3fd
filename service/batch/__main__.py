"""``python -m service.batch tokenize|count|merge <job id>`` or ``map <job id> [<index>|all]``: one pipeline stage,
what a runner starts. Without an index, ``map`` takes ``JOB_COMPLETION_INDEX``, which Kubernetes sets in each pod of
an Indexed Job; ``all`` runs every shard in ``FLASK_SVC_BATCH_PARALLELISM`` processes (the local runner).

Settings come from the same environment variables as the service (data directory, vocabulary cap, log format);
the job's secret from ``FLASK_SVC_BATCH_JOB_SECRET`` and the trace to continue from ``TRACEPARENT``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from service import logs, tracing
from service.batch import shards
from service.batch.local import ALL_SHARDS, drive_map
from service.batch.signing import JOB_SECRET_ENV
from service.batch.stages import ExitCode, StageContext, run, run_map, run_merge
from service.batch.states import MAP, MERGE, Stage
from service.batch.store import JobStore, valid_id
from service.config import ConfigError, load_settings

log = logging.getLogger("service.batch.stage")
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.batch", description="Run one batch pipeline stage.")
    parser.add_argument("stage", choices=[*(stage.value for stage in Stage), MAP, MERGE])
    parser.add_argument("job_id")
    parser.add_argument("index", nargs="?", help=f"map: the shard (default: ${COMPLETION_INDEX_ENV})")
    arguments = parser.parse_args(argv)
    if not valid_id(arguments.job_id):
        parser.error(f"not a job id: {arguments.job_id!r}")
    index = arguments.index if arguments.index is not None else os.environ.get(COMPLETION_INDEX_ENV)
    if arguments.stage == MAP and (index is None or not (index.isdigit() or index == ALL_SHARDS)):
        parser.error(f"map needs a shard index (an argument or ${COMPLETION_INDEX_ENV}), got {index!r}")
    if arguments.stage != MAP and arguments.index is not None:
        parser.error(f"only map takes a shard index, not {arguments.stage}")
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"flask-svc batch: configuration error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    logs.configure(settings)
    name = arguments.stage
    context = StageContext(
        store=JobStore(Path(settings.batch_data_dir)),
        job_id=arguments.job_id,
        max_vocabulary=settings.max_vocabulary,
        callback_url=settings.batch_callback_url,
        secret=os.environ.get(JOB_SECRET_ENV, ""),
    )
    # SIGTERM (a cancel, a deleted pod) unwinds like an exception, so partial files are removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    traced = tracing.for_process(settings)
    try:
        with tracing.continued_span(
            traced, f"batch.{name}", os.environ.get("TRACEPARENT"), {"batch.job_id": context.job_id}
        ):
            log.info("stage started", extra={"job_id": context.job_id, "stage": name, "shard": index})
            if name == MAP and index == ALL_SHARDS:  # the local runner's driver over every shard
                plan = shards.load_plan(context.store.path(context.job_id))
                if plan is None:
                    code = ExitCode.NO_JOB
                else:
                    parallelism = settings.batch_parallelism or os.cpu_count() or 1
                    code = drive_map(len(plan), parallelism, lambda shard: run_map(context, shard))
            elif name == MAP:
                code = run_map(context, int(str(index)))
            elif name == MERGE:
                code = run_merge(context)
            else:
                code = run(Stage(name), context)
            log.info("stage finished", extra={"job_id": context.job_id, "stage": name, "exit_code": int(code)})
    finally:
        if traced is not None:
            traced.stop()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
