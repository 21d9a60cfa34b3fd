"""``python -m service.batch tokenize|count <job id>``: one pipeline stage, what a runner starts.

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

from service.batch.signing import JOB_SECRET_ENV
from service.batch.stages import ExitCode, StageContext, run
from service.batch.states import Stage
from service.batch.store import JobStore, valid_id
from service.config import ConfigError, load_settings

log = logging.getLogger("service.batch.stage")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.batch", description="Run one batch pipeline stage.")
    parser.add_argument("stage", choices=[stage.value for stage in Stage])
    parser.add_argument("job_id")
    arguments = parser.parse_args(argv)
    if not valid_id(arguments.job_id):
        parser.error(f"not a job id: {arguments.job_id!r}")
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"flask-svc batch: configuration error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    from service import logs, tracing

    logs.configure(settings)
    stage = Stage(arguments.stage)
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
            traced, f"batch.{stage.value}", os.environ.get("TRACEPARENT"), {"batch.job_id": context.job_id}
        ):
            log.info("stage started", extra={"job_id": context.job_id, "stage": stage.value})
            code = run(stage, context)
            log.info("stage finished", extra={"job_id": context.job_id, "stage": stage.value, "exit_code": int(code)})
    finally:
        if traced is not None:
            traced.stop()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
