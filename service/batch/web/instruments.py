"""The batch pipeline's metrics, added to the app through ``service.metrics.feature_instruments``, and the observer
that turns the coordinator's facts into them."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.batch.formats import Outcome
from service.batch.states import TERMINAL, JobRecord, Stage, State
from service.metrics import declare_series

# Batch stages run for seconds to many minutes.
BATCH_STAGE_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
BATCH_OUTCOMES = ("ok", "failed")


@dataclass(frozen=True)
class BatchInstruments:
    batch_jobs: Gauge
    batch_jobs_finished: Counter
    batch_stage_duration: Histogram
    batch_bytes: Counter
    batch_shards: Counter
    batch_shard_bytes: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BatchInstruments:
        made = cls(
            # Every worker counts the same volume, so the latest count is the count.
            batch_jobs=Gauge(
                "flask_svc_batch_jobs",
                "Batch jobs on the shared volume, by state",
                ["state"],
                multiprocess_mode="mostrecent",
                registry=registry,
            ),
            batch_jobs_finished=Counter(
                "flask_svc_batch_jobs_finished", "Batch jobs that reached an end state", ["state"], registry=registry
            ),
            batch_stage_duration=Histogram(
                "flask_svc_batch_stage_duration_seconds",
                "Time a batch stage ran, from its process's start to its outcome",
                ["stage", "outcome"],
                buckets=BATCH_STAGE_BUCKETS,
                registry=registry,
            ),
            batch_bytes=Counter(
                "flask_svc_batch_processed_bytes",
                "Bytes of text that went through a batch stage",
                ["stage"],
                registry=registry,
            ),
            # Progress inside the map stage, counted as each shard's partial result lands (the stage's own bytes
            # above arrive only when its last shard does).
            batch_shards=Counter("flask_svc_batch_shards_counted", "Map shards counted", registry=registry),
            batch_shard_bytes=Counter(
                "flask_svc_batch_shard_bytes",
                "Bytes of uploads covered by the map shards counted",
                registry=registry,
            ),
        )
        stages = [stage.value for stage in Stage]
        declare_series(made.batch_jobs, [(state.value,) for state in State])
        declare_series(made.batch_jobs_finished, [(state.value,) for state in State if state in TERMINAL])
        declare_series(made.batch_bytes, [(stage,) for stage in stages])
        declare_series(made.batch_stage_duration, list(itertools.product(stages, BATCH_OUTCOMES)))
        return made


class MetricsObserver:
    """The coordinator's facts as the app's metrics (called from request threads and the reconcile thread)."""

    def __init__(self, instruments: BatchInstruments) -> None:
        self.instruments = instruments

    def stage_finished(self, outcome: Outcome) -> None:
        metrics = self.instruments
        result = "ok" if outcome.ok else "failed"
        metrics.batch_stage_duration.labels(outcome.stage, result).observe(max(0.0, outcome.finished - outcome.started))
        if outcome.ok:
            metrics.batch_bytes.labels(outcome.stage).inc(outcome.bytes)

    def job_finished(self, record: JobRecord) -> None:
        self.instruments.batch_jobs_finished.labels(record.state.value).inc()

    def jobs_by_state(self, counts: Mapping[State, int]) -> None:
        for state, count in counts.items():
            self.instruments.batch_jobs.labels(state.value).set(count)

    def shards_counted(self, shards: int, covered: int) -> None:
        self.instruments.batch_shards.inc(shards)
        self.instruments.batch_shard_bytes.inc(covered)
